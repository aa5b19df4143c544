"""Black-box listings stay black: a subscriber of a subscribe-only listing sees no contract,
strike, quantity or exact time of the strategy on any page; creators see no subscriber's runs."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from execution.models import OrderIntent, Position
from execution.models.engine import Fill
from marketplace import services
from marketplace.models import Visibility
from tests.execution.engine_factories import IntentFactory, RunFactory
from tests.marketplace.factories import ListingFactory
from tests.marketplace.security_helpers import deployment_run
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

SYMBOL = "NIFTY26N2424000CE"
# The listed strategy's entry instant: 09:20:07 IST (tests.marketplace.factories).
ENTRY = "09:20:07"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _subscribed_run(visibility: str):
    """A subscriber's filled entry run of a listed strategy, with an open position."""
    listing = ListingFactory(
        visibility=visibility,
        sebi_ra_number="INH000012345" if visibility == Visibility.SUBSCRIBE_ONLY else "",
        title="Theta harvester",
    )
    subscriber = ProfileFactory().user
    services.subscription_create(subscriber=subscriber, listing=listing, plan=listing.plans.get())
    version = listing.strategy.current_version
    fire_at = datetime.datetime(2026, 11, 19, 3, 50, 7, tzinfo=datetime.UTC)  # 09:20:07 IST
    run = RunFactory(
        strategy_version=version,
        owner=subscriber,
        source="deployment",
        fire_at=fire_at,
        state="dispatched",
        note=f"Entered {SYMBOL} at {ENTRY}",
    )
    intent = IntentFactory(
        run=run, leg=version.legs.get(position=1), intended_at=fire_at, side="SELL"
    )
    OrderIntent.objects.filter(pk=intent.pk).update(
        state="filled",
        sent_at=fire_at + datetime.timedelta(milliseconds=7),
        acked_at=fire_at + datetime.timedelta(milliseconds=41),
        filled_quantity=75,
        average_price=Decimal("101.50"),
        error=f"Partial: {SYMBOL} freeze limit",
    )
    # A closed position of another leg (for the P&L reports) beside the open one.
    Position.objects.create(
        run=run,
        account=intent.account,
        owner=subscriber,
        leg=version.legs.get(position=2),
        exchange="NFO",
        tradingsymbol="NIFTY26N2424350PE",
        net_quantity=0,
        buy_quantity=75,
        sell_quantity=75,
        buy_value=Decimal("3000"),
        sell_value=Decimal("3750"),
    )
    Position.objects.create(
        run=run,
        account=intent.account,
        owner=subscriber,
        leg=intent.leg,
        exchange="NFO",
        tradingsymbol=SYMBOL,
        net_quantity=-75,
        sell_quantity=75,
        sell_value=Decimal("7612.50"),
        last_price=Decimal("90"),
    )
    return listing, subscriber, run


def _pages(client: Client, run) -> dict[str, str]:
    period = {"start": "2026-11-01", "end": "2026-11-30"}
    strategy_id = run.strategy_version.strategy_id
    return {
        "costs": client.get(reverse("execution:analytics-costs"), period).text,
        "performance": client.get(reverse("execution:analytics-performance"), period).text,
        "strategy": client.get(
            reverse("execution:analytics-strategy", args=[strategy_id]), period
        ).text,
        "runs": client.get(reverse("execution:runs")).text,
        "run": client.get(reverse("execution:run-detail", args=[run.pk])).text,
        "positions": client.get(reverse("execution:positions")).text,
        "timing": client.get(
            reverse("execution:analytics-timing"), {"start": "2026-11-01", "end": "2026-11-30"}
        ).text,
    }


def test_black_box_subscriber_sees_no_contract_quantity_or_time():
    listing, subscriber, run = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    pages = _pages(_client(subscriber), run)
    for name, text in pages.items():
        assert SYMBOL not in text, name
        # Strikes as words (not inside the header clock's epoch milliseconds).
        assert not re.search(r"\b24(?:000|350)(?:\.0+)?\b", text), name
        assert ENTRY not in text and "09:20" not in text, name
        assert listing.strategy.name not in text, name
    for name in ("runs", "performance", "strategy"):
        assert "Theta harvester (logic hidden)" in pages[name], name
    run_page = pages["run"]
    # What the subscriber does see: the leg, its side, the lateness, the share filled, P&L.
    assert "leg 1 SELL" in run_page and "(7.0)" in run_page and "41.0" in run_page
    assert "100 %" in run_page and "₹862.50" in run_page
    assert ">75<" not in run_page and "101.50" not in run_page
    assert "₹862.50" in pages["positions"]


def test_copy_allowed_subscriber_sees_the_contracts():
    _, subscriber, run = _subscribed_run(Visibility.COPY_ALLOWED)
    pages = _pages(_client(subscriber), run)
    assert SYMBOL in pages["run"] and SYMBOL in pages["positions"]


def test_owner_of_a_strategy_sees_its_contracts():
    run = RunFactory()
    IntentFactory(run=run, intended_at=run.fire_at)
    page = _client(run.owner).get(reverse("execution:run-detail", args=[run.pk]))
    assert SYMBOL in page.text and "75" in page.text


def test_creator_never_sees_a_subscribers_runs():
    listing, _, run = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    creator = _client(listing.creator)
    page = creator.get(reverse("strategies:detail", args=[listing.strategy.pk]))
    assert page.status_code == 200
    assert "No runs yet" in page.text
    # The run itself is not theirs either.
    assert creator.get(reverse("execution:run-detail", args=[run.pk])).status_code == 404
    # What the creator has instead: the count of subscribers on the publishing page.
    manage = creator.get(reverse("marketplace:manage", args=[listing.pk]))
    assert "1 open subscription" in manage.text
    assert "totals are shown once at least 3 have traded" in manage.text


def test_creators_get_subscriber_totals_only_from_three_subscribers():
    from marketplace.performance import listing_subscribers_aggregate

    listing = ListingFactory()
    for n, pnl in enumerate([Decimal("500"), Decimal("-200"), Decimal("100")]):
        subscriber = ProfileFactory().user
        subscription = services.subscription_create(
            subscriber=subscriber, listing=listing, plan=listing.plans.get()
        )
        deployment, run = deployment_run(subscription, state="done")
        Position.objects.create(
            run=run,
            account=deployment.broker_account,
            owner=subscriber,
            exchange="NFO",
            tradingsymbol=SYMBOL,
            net_quantity=0,
            buy_quantity=75,
            sell_quantity=75,
            buy_value=Decimal("1000"),
            sell_value=Decimal("1000") + pnl,
        )
        summary = listing_subscribers_aggregate(
            listing=listing,
            first=datetime.date(2026, 11, 1),
            last=datetime.date(2026, 11, 30),
        )
        assert summary["traded"] == n + 1
        assert summary["shown"] is (n == 2)
    assert summary["total_pnl"] == Decimal("400") and summary["in_profit"] == 2


def test_strangers_and_staff_without_permission_see_no_run(stranger_client):
    _, _, run = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    assert stranger_client.get(reverse("execution:run-detail", args=[run.pk])).status_code == 404
    staff = ProfileFactory().user
    staff.is_staff = True
    staff.save()
    assert _client(staff).get(reverse("execution:run-detail", args=[run.pk])).status_code == 404


def test_dashboard_books_count_a_black_box_but_itemise_only_the_traders_own_orders():
    _, subscriber, run = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    Fill.objects.create(
        intent=run.intents.get(),
        cumulative_quantity=75,
        quantity=75,
        price=Decimal("101.50"),
        filled_at=run.fire_at,
    )
    own = RunFactory(owner=subscriber, strategy_version__strategy__owner=subscriber)
    IntentFactory(run=own, tradingsymbol="NIFTY26N2425000PE", intended_at=own.fire_at)
    with time_machine.travel(run.fire_at + datetime.timedelta(hours=1), tick=False):
        text = _client(subscriber).get(reverse("trader:dashboard-live")).text
    assert "NIFTY26N2425000PE" in text
    assert SYMBOL not in text and "101.50" not in text and ENTRY not in text
    assert "Orders and trades of 1 black-box strategy are not itemised" in text
