"""Marketplace services: bad input refused with nothing saved, workflow audit, versions."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest

from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import (
    Deployment,
    Invoice,
    Listing,
    ListingEvent,
    Notification,
    Subscription,
    SubscriptionStatus,
)
from marketplace.models.listings import AppendOnlyError
from marketplace.workflow import ListingState
from tests.marketplace.factories import ListingFactory, PaperAccountFactory, StrategyFactory
from tests.trader.factories import ProfileFactory
from trader.models.strategies import Leg, StrategyVersion

pytestmark = pytest.mark.django_db


def _listing_args(strategy, **overrides):
    args = {
        "creator": strategy.owner,
        "strategy": strategy,
        "title": "Iron fly",
        "description": "Sells an iron fly.",
        "tags": "iron fly",
        "risk_level": "medium",
        "capital_required": D("200000"),
        "min_multiplier": 1,
        "visibility": "copy_allowed",
        "sebi_ra_number": "",
        "plan_kind": "fee_share",
        "monthly_fee": D("999"),
        "profit_share_percent": D("20"),
    }
    args.update(overrides)
    return args


@pytest.fixture
def admin_user():
    from django.contrib.auth.models import Permission

    user = ProfileFactory().user
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["review_listings", "record_payments"])
    )
    return user


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"profit_share_percent": D("50.5")}, "profit_share_percent"),
        ({"profit_share_percent": D("-1")}, "profit_share_percent"),
        ({"monthly_fee": D("-10")}, "monthly_fee"),
        ({"plan_kind": "fee", "monthly_fee": D(0), "profit_share_percent": D(0)}, "monthly_fee"),
        ({"visibility": "subscribe_only", "sebi_ra_number": ""}, "sebi_ra_number"),
        ({"visibility": "subscribe_only", "sebi_ra_number": "INH12345"}, "sebi_ra_number"),
    ],
)
def test_listing_create_refuses_bad_terms_and_saves_nothing(overrides, field):
    strategy = StrategyFactory()
    with pytest.raises(MarketplaceError) as error:
        services.listing_create(**_listing_args(strategy, **overrides))
    assert field in error.value.message_dict
    assert not Listing.objects.exists()


def test_listing_create_refuses_someone_elses_strategy():
    strategy = StrategyFactory()
    thief = ProfileFactory().user
    with pytest.raises(MarketplaceError, match="your own strategies"):
        services.listing_create(**_listing_args(strategy, creator=thief))
    assert not Listing.objects.exists()


def test_listing_create_snapshots_the_strategy_version():
    strategy = StrategyFactory()
    listing = services.listing_create(**_listing_args(strategy))
    version = listing.versions.get()
    assert version.snapshot["entry_time"] == "09:20:07"
    assert [leg["option_type"] for leg in version.snapshot["legs"]] == ["CE", "PE"]
    assert listing.plans.get().description.startswith("₹999.00 a month + 20")


def test_full_workflow_is_audited_and_notifies_the_creator(
    admin_user, mailoutbox, django_capture_on_commit_callbacks
):
    strategy = StrategyFactory()
    listing = services.listing_create(**_listing_args(strategy))
    creator = strategy.owner
    services.listing_transition(listing=listing, user=creator, action="submit")
    with pytest.raises(MarketplaceError):
        services.listing_transition(listing=listing, user=admin_user, action="request_changes")
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_transition(
            listing=listing, user=admin_user, action="request_changes", reason="Explain the exits."
        )
    services.listing_transition(listing=listing, user=creator, action="resubmit")
    with django_capture_on_commit_callbacks(execute=True):
        services.listing_transition(listing=listing, user=admin_user, action="approve")
    services.listing_transition(listing=listing, user=creator, action="publish")
    listing.refresh_from_db()
    assert listing.state == ListingState.PUBLISHED
    assert listing.live_version.number == 1
    assert listing.published_at is not None
    actions = list(listing.events.values_list("action", "to_state"))
    assert actions == [
        ("create", "draft"),
        ("submit", "submitted"),
        ("request_changes", "changes_requested"),
        ("resubmit", "resubmitted"),
        ("approve", "approved"),
        ("publish", "published"),
    ]
    assert listing.comments.get().body == "Explain the exits."
    assert Notification.objects.filter(user=creator).count() == 2
    assert len(mailoutbox) == 2
    assert "Explain the exits." in mailoutbox[0].body


def test_creator_with_staff_rights_cannot_approve_own_listing(admin_user):
    listing = ListingFactory(
        state=ListingState.SUBMITTED, strategy=StrategyFactory(owner=admin_user)
    )
    with pytest.raises(MarketplaceError, match="Only an admin"):
        services.listing_transition(listing=listing, user=admin_user, action="approve")
    listing.refresh_from_db()
    assert listing.state == ListingState.SUBMITTED


def test_subscribe_only_approval_needs_the_ra_check(admin_user):
    listing = ListingFactory(
        state=ListingState.SUBMITTED, visibility="subscribe_only", sebi_ra_number="INH000012345"
    )
    with pytest.raises(MarketplaceError) as error:
        services.listing_transition(listing=listing, user=admin_user, action="approve")
    assert "ra_number_verified" in error.value.message_dict
    services.listing_transition(
        listing=listing, user=admin_user, action="approve", ra_number_verified=True
    )
    listing.refresh_from_db()
    assert listing.state == ListingState.APPROVED


def test_listing_events_are_append_only():
    listing = ListingFactory()
    event = ListingEvent.objects.create(listing=listing, action="x")
    event.reason = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()


def _new_strategy_version(strategy):
    version = StrategyVersion.objects.create(
        strategy=strategy,
        number=2,
        entry_time=datetime.time(9, 30),
        exit_time=datetime.time(15, 0),
        effective_from=datetime.date(2026, 2, 1),
    )
    Leg.objects.create(
        version=version, position=1, side="BUY", option_type="CE", lots=1, strike_offset=0
    )
    strategy.current_version = version
    strategy.save(update_fields=["current_version"])
    return version


def test_new_version_moves_subscribers_only_once_approved(admin_user):
    listing = ListingFactory()
    subscriber = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=subscriber, listing=listing, plan=listing.plans.get()
    )
    _new_strategy_version(listing.strategy)
    version = services.version_create(listing=listing, user=listing.creator, notes="Later entry")
    services.version_submit(version=version, user=listing.creator)
    subscription.refresh_from_db()
    assert subscription.version.number == 1
    services.version_review(version=version, reviewer=admin_user, decision="approve")
    subscription.refresh_from_db()
    listing.refresh_from_db()
    assert subscription.version == version
    assert listing.live_version == version
    assert listing.versions.get(number=1).state == "superseded"
    assert Notification.objects.filter(user=subscriber, message__contains="version 2").exists()


@pytest.mark.parametrize(
    "state", [ListingState.APPROVED, ListingState.SUBMITTED, ListingState.SUSPENDED]
)
def test_cannot_subscribe_to_an_unpublished_listing(state):
    listing = ListingFactory(state=state)
    with pytest.raises(MarketplaceError, match="not published"):
        services.subscription_create(
            subscriber=ProfileFactory().user, listing=listing, plan=listing.plans.get()
        )
    assert not Subscription.objects.exists()


def test_cannot_subscribe_to_own_listing_or_twice():
    listing = ListingFactory()
    with pytest.raises(MarketplaceError, match="your own"):
        services.subscription_create(
            subscriber=listing.creator, listing=listing, plan=listing.plans.get()
        )
    trader = ProfileFactory().user
    services.subscription_create(subscriber=trader, listing=listing, plan=listing.plans.get())
    with pytest.raises(MarketplaceError, match="already subscribed"):
        services.subscription_create(subscriber=trader, listing=listing, plan=listing.plans.get())
    assert Subscription.objects.count() == 1


def test_deploy_refuses_foreign_account_and_small_multiplier():
    listing = ListingFactory(min_multiplier=2)
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    foreign = PaperAccountFactory()
    with pytest.raises(MarketplaceError) as error:
        services.deployment_create(
            subscription=subscription, user=trader, broker_account=foreign, multiplier=2
        )
    assert "broker_account" in error.value.message_dict
    own = PaperAccountFactory(owner=trader)
    with pytest.raises(MarketplaceError) as error:
        services.deployment_create(
            subscription=subscription, user=trader, broker_account=own, multiplier=1
        )
    assert "multiplier" in error.value.message_dict
    assert not Deployment.objects.exists()
    deployment = services.deployment_create(
        subscription=subscription, user=trader, broker_account=own, multiplier=2
    )
    assert services.deployment_may_enter(deployment=deployment, day=datetime.date.today())


def test_fee_plan_lapses_when_unpaid_and_resumes_once_paid(admin_user):
    listing = ListingFactory(plan={"kind": "fee", "monthly_fee": D("500")})
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    first = Invoice.objects.get()
    assert first.amount == D("500") and first.status == "issued"
    deployment = services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=1,
    )
    subscription.refresh_from_db()
    after_period = subscription.paid_until + datetime.timedelta(days=1)
    assert services.deployment_may_enter(deployment=deployment, day=subscription.paid_until)
    result = services.subscriptions_renew_or_lapse(today=after_period)
    assert result == {"invoiced": 1, "lapsed": 1}
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.LAPSED
    deployment.refresh_from_db()
    assert not services.deployment_may_enter(deployment=deployment, day=after_period)
    # Running the task again changes nothing.
    assert services.subscriptions_renew_or_lapse(today=after_period) == {"invoiced": 0, "lapsed": 0}
    for invoice in Invoice.objects.order_by("period_start"):
        services.invoice_mark_paid(invoice=invoice, admin=admin_user, reference=f"UTR{invoice.pk}")
    subscription.refresh_from_db()
    assert subscription.paid_until > after_period
    assert subscription.status == SubscriptionStatus.ACTIVE
