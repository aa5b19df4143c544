"""Marketplace pages through HTTP: admin review in Django admin, creator and subscriber pages,
nothing of a subscribe-only strategy's logic in any HTML a subscriber receives, and flat
query counts."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from marketplace.models import Listing, ListingEvent, Rating, Subscription
from marketplace.performance import listing_track_records
from marketplace.workflow import ListingState
from tests.marketplace.conftest import client_for
from tests.marketplace.factories import ListingFactory, PaperAccountFactory, StrategyFactory
from tests.marketplace.security_helpers import executed_run_for
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def test_creator_publishes_and_admin_approves_in_django_admin(admin_client_user, mailoutbox):
    admin, _ = admin_client_user
    strategy = StrategyFactory()
    creator = client_for(strategy.owner)
    response = creator.post(
        reverse("marketplace:listing-new"),
        {
            "strategy": strategy.pk,
            "title": "Black-box straddle",
            "description": "Hidden logic.",
            "tags": "straddle",
            "risk_level": "high",
            "capital_required": "250000",
            "min_multiplier": "1",
            "visibility": "subscribe_only",
            "sebi_ra_number": "INH000098765",
            "plan_kind": "share",
            "monthly_fee": "0",
            "profit_share_percent": "25",
        },
    )
    listing = Listing.objects.get()
    assert response.status_code == 302
    creator.post(reverse("marketplace:listing-action", args=[listing.pk, "submit"]))
    changelist = reverse("admin:marketplace_listing_changelist")
    # The intermediate form comes first, then refuses a request for changes without a reason.
    page = admin.post(
        changelist,
        {"action": "workflow_request_changes", "_selected_action": [listing.pk]},
    )
    assert b"A reason is required" in page.content
    page = admin.post(
        changelist,
        {"action": "workflow_request_changes", "_selected_action": [listing.pk], "apply": "1"},
    )
    listing.refresh_from_db()
    assert listing.state == ListingState.SUBMITTED
    admin.post(
        changelist,
        {
            "action": "workflow_request_changes",
            "_selected_action": [listing.pk],
            "apply": "1",
            "reason": "Say what the maximum loss per day is.",
        },
    )
    listing.refresh_from_db()
    assert listing.state == ListingState.CHANGES_REQUESTED
    manage = creator.get(reverse("marketplace:manage", args=[listing.pk]))
    assert b"Say what the maximum loss per day is." in manage.content
    creator.post(reverse("marketplace:listing-action", args=[listing.pk, "resubmit"]))
    # Single action from the listing's own page; the RA check is required for subscribe-only.
    single = reverse("admin:marketplace_listing_workflow", args=[listing.pk, "approve"])
    admin.post(single, {"apply": "1"})
    listing.refresh_from_db()
    assert listing.state == ListingState.RESUBMITTED
    admin.post(single, {"apply": "1", "ra_number_verified": "on"})
    listing.refresh_from_db()
    assert listing.state == ListingState.APPROVED
    creator.post(reverse("marketplace:listing-action", args=[listing.pk, "publish"]))
    listing.refresh_from_db()
    assert listing.state == ListingState.PUBLISHED
    assert list(
        ListingEvent.objects.filter(listing=listing).values_list("to_state", flat=True)
    ) == ["draft", "submitted", "changes_requested", "resubmitted", "approved", "published"]
    detail = Client().get(reverse("marketplace:listing", args=[listing.pk]))
    assert b"INH000098765" in detail.content


def test_creator_cannot_approve_own_listing_in_admin(admin_client_user):
    admin, admin_user = admin_client_user
    listing = ListingFactory(
        state=ListingState.SUBMITTED, strategy=StrategyFactory(owner=admin_user)
    )
    admin.post(
        reverse("admin:marketplace_listing_changelist"),
        {"action": "workflow_approve", "_selected_action": [listing.pk], "apply": "1"},
    )
    listing.refresh_from_db()
    assert listing.state == ListingState.SUBMITTED


def test_strangers_cannot_manage_or_see_unpublished(owner_client):
    listing = ListingFactory(state=ListingState.DRAFT)
    assert owner_client.get(reverse("marketplace:manage", args=[listing.pk])).status_code == 404
    assert owner_client.get(reverse("marketplace:listing", args=[listing.pk])).status_code == 404
    response = owner_client.post(reverse("marketplace:listing-action", args=[listing.pk, "submit"]))
    assert response.status_code == 404


LEAK_PATTERNS = [
    r"09:20",
    r"15:10",
    r"24350",
    r"ATM",
    r"\bSELL\b",
    r"\bCE\b",
    r"\bPE\b",
    r"current_week",
    r"strike",
    r"entry_time",
    r"exit_time",
]


def test_subscriber_of_subscribe_only_listing_never_sees_legs_strikes_or_times():
    listing = ListingFactory(visibility="subscribe_only", sebi_ra_number="INH000012345")
    trader = ProfileFactory().user
    client = client_for(trader)
    account = PaperAccountFactory(owner=trader)
    client.post(
        reverse("marketplace:subscribe", args=[listing.pk]),
        {"plan": listing.plans.get().pk, "confirm": "yes"},
    )
    subscription = Subscription.objects.get()
    client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": account.pk, "multiplier": "2"},
    )
    pages = [
        reverse("marketplace:browse"),
        reverse("marketplace:listing", args=[listing.pk]),
        reverse("marketplace:subscription", args=[subscription.pk]),
        reverse("marketplace:my-subscriptions"),
        reverse("marketplace:ranking"),
    ]
    for url in pages:
        html = client.get(url).content.decode()
        # The base layout's live clock shows the current time; drop that one element.
        html = re.sub(r"<span class=\"clock\".*?</span>", "", html, flags=re.S)
        for pattern in LEAK_PATTERNS:
            assert not re.search(pattern, html), f"{pattern} leaked on {url}"
    # Copying a black box is refused and creates nothing.
    response = client.post(reverse("marketplace:copy", args=[subscription.pk]), follow=True)
    assert b"not shared" in response.content


def test_copy_allowed_listing_shows_its_legs():
    listing = ListingFactory(visibility="copy_allowed")
    html = Client().get(reverse("marketplace:listing", args=[listing.pk])).content.decode()
    assert "09:20:07" in html and "24350" in html


def test_subscribe_and_deploy_errors_are_shown_and_nothing_saved():
    listing = ListingFactory(min_multiplier=3)
    trader = ProfileFactory().user
    client = client_for(trader)
    response = client.post(
        reverse("marketplace:subscribe", args=[listing.pk]),
        {"plan": listing.plans.get().pk, "confirm": "yes"},
    )
    subscription = Subscription.objects.get()
    foreign = PaperAccountFactory()
    page = client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": foreign.pk, "multiplier": "3"},
    )
    assert (
        page.status_code == 200 and b"Choose one of your logged-in broker accounts" in page.content
    )
    own = PaperAccountFactory(owner=trader)
    page = client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": own.pk, "multiplier": "2"},
    )
    assert b"at least 3" in page.content
    assert not subscription.deployments.exists()
    own_listing = ListingFactory(strategy=StrategyFactory(owner=trader))
    response = client.post(
        reverse("marketplace:subscribe", args=[own_listing.pk]),
        {"plan": own_listing.plans.get().pk, "confirm": "yes"},
        follow=True,
    )
    assert b"your own listing" in response.content
    assert Subscription.objects.count() == 1


def test_only_subscribers_review():
    listing = ListingFactory()
    trader = ProfileFactory().user
    client = client_for(trader)
    client.post(
        reverse("marketplace:subscribe", args=[listing.pk]),
        {"plan": listing.plans.get().pk, "confirm": "yes"},
    )
    subscription = Subscription.objects.get()
    stranger = client_for(ProfileFactory().user)
    response = stranger.post(reverse("marketplace:rate", args=[subscription.pk]), {"stars": "1"})
    assert response.status_code == 404
    executed_run_for(subscription)
    client.post(
        reverse("marketplace:rate", args=[subscription.pk]), {"stars": "4", "review": "Calm."}
    )
    assert Rating.objects.get().stars == 4
    assert b"Calm." in Client().get(reverse("marketplace:listing", args=[listing.pk])).content


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _grow(listings: int, subscribers: int):
    for _ in range(listings):
        listing = ListingFactory(plan={"kind": "fee", "monthly_fee": D("100")})
        for _ in range(subscribers):
            trader = ProfileFactory().user
            Subscription.objects.create(
                subscriber=trader,
                listing=listing,
                plan=listing.plans.get(),
                monthly_fee=D("100"),
                profit_share_percent=D(0),
                version=listing.live_version,
            )
            Rating.objects.create(subscription=trader.subscriptions.get(), listing=listing, stars=4)


def _executions(listing, *, days: int, start: int = 0):
    """`days` sessions of the creator's listed strategy, closed on a paper and a live account
    (with one leg each), plus a subscriber deployment's run each day."""
    from execution.markettime import IST
    from execution.models import Position, ScheduledRun
    from execution.reference import calendar
    from tests.brokers.factories import BrokerAccountFactory

    creator = listing.creator
    accounts = [
        BrokerAccountFactory(owner=creator, broker="paper"),
        BrokerAccountFactory(owner=creator),
    ]
    version = listing.strategy.current_version
    leg = version.legs.first()
    sessions = calendar.sessions_between(datetime.date(2026, 10, 1), datetime.date(2026, 10, 31))
    for offset in range(start, start + days):
        day = sessions[offset]
        for source, ref in (("allocation", ""), ("deployment", str(offset + 1))):
            run = ScheduledRun.objects.create(
                session_date=day,
                boundary="entry",
                fire_at=datetime.datetime.combine(day, datetime.time(9, 20), tzinfo=IST),
                strategy_version=version,
                owner=creator,
                source=source,
                source_ref=ref,
                state="done",
                allocations=[
                    {"account_id": a.pk, "broker": a.broker, "priority": n, "multiplier": "1"}
                    for n, a in enumerate(accounts, start=1)
                ],
            )
            for account in accounts:
                Position.objects.create(
                    run=run,
                    account=account,
                    owner=creator,
                    leg=leg,
                    exchange="NFO",
                    tradingsymbol=f"NIFTY26O{offset:02d}24000CE",
                    instrument_token=str(offset),
                    lot_size=75,
                    net_quantity=0,
                    buy_quantity=75,
                    sell_quantity=75,
                    buy_value=D("7500") + offset,
                    sell_value=D("7600"),
                )


def test_browse_and_listing_queries_do_not_grow():
    client = client_for(ProfileFactory().user)
    _grow(1, 1)
    first = Listing.objects.first()
    _executions(first, days=1)
    browse_small = _queries(client, reverse("marketplace:browse"))
    detail_small = _queries(client, reverse("marketplace:listing", args=[first.pk]))
    _grow(6, 4)
    for listing in Listing.objects.exclude(pk=first.pk):
        _executions(listing, days=3)
    _executions(first, days=8, start=1)
    browse_large = _queries(client, reverse("marketplace:browse"))
    detail_large = _queries(client, reverse("marketplace:listing", args=[first.pk]))
    busy = Listing.objects.last()
    detail_busy = _queries(client, reverse("marketplace:listing", args=[busy.pk]))
    assert browse_large == browse_small
    assert detail_large == detail_small == detail_busy
    # The executions were read: the track record shows all nine traded days of the listing.
    records = listing_track_records(listing=first)
    assert {r.mode: len(r.days) for r in records} == {"live": 9, "paper": 9}
