"""Subscription services at their edges: whose subscription it is, what a cancelled or lapsed
one may still do, the deployment's own loss limit, and when the engine may enter for it (a
fee subscription only while paid up). Entries are gated; exits never are."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest

from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import Subscription
from marketplace.services.subscriptions import deployment_limits_check, deployment_may_enter
from marketplace.workflow import ListingState
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 19)


def _subscribed(**listing_kwargs):
    listing = ListingFactory(**listing_kwargs)
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    return trader, subscription


def test_a_plan_of_another_listing_or_a_retired_plan_is_refused():
    listing, other = ListingFactory(), ListingFactory()
    trader = ProfileFactory().user
    with pytest.raises(MarketplaceError) as foreign:
        services.subscription_create(subscriber=trader, listing=listing, plan=other.plans.get())
    assert "plan" in foreign.value.message_dict
    assert not Subscription.objects.exists()


def test_only_the_subscriber_acts_and_a_cancelled_subscription_stays_cancelled():
    trader, subscription = _subscribed()
    with pytest.raises(MarketplaceError, match="not your subscription"):
        services.subscription_pause(subscription=subscription, user=ProfileFactory().user)
    services.subscription_cancel(subscription=subscription, user=trader)
    with pytest.raises(MarketplaceError, match="cancelled"):
        services.subscription_resume(subscription=subscription, user=trader)
    assert Subscription.objects.get(pk=subscription.pk).status == "cancelled"


def test_only_an_active_subscription_pauses_and_an_unpaid_one_resumes_as_lapsed():
    trader, subscription = _subscribed(plan={"kind": "fee", "monthly_fee": D("499")})
    services.subscription_pause(subscription=subscription, user=trader)
    with pytest.raises(MarketplaceError, match="Only an active subscription"):
        services.subscription_pause(subscription=subscription, user=trader)
    Subscription.objects.filter(pk=subscription.pk).update(paid_until=datetime.date(2020, 1, 1))
    subscription.refresh_from_db()
    resumed = services.subscription_resume(subscription=subscription, user=trader)
    assert resumed.status == "lapsed"  # nothing enters until the fee is paid


@pytest.mark.parametrize(
    ("loss", "message"),
    [(D("0"), "positive amount"), (D("99999999"), "Above your daily loss limit")],
)
def test_a_deployment_loss_limit_must_be_positive_and_within_the_traders_own(loss, message):
    trader, subscription = _subscribed()
    account = PaperAccountFactory(owner=trader)
    with pytest.raises(MarketplaceError) as refused:
        deployment_limits_check(
            subscription=subscription,
            user=trader,
            broker_account_id=account.pk,
            multiplier=1,
            max_daily_loss=loss,
        )
    assert message in " ".join(refused.value.message_dict["max_daily_loss"])


def test_someone_elses_deployment_cannot_be_stopped():
    trader, subscription = _subscribed()
    deployment = services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=1,
    )
    with pytest.raises(MarketplaceError, match="not your deployment"):
        services.deployment_stop(deployment=deployment, user=ProfileFactory().user)
    deployment.refresh_from_db()
    assert deployment.is_active


def test_entries_only_while_active_published_and_paid_up():
    trader, subscription = _subscribed(plan={"kind": "fee", "monthly_fee": D("499")})
    deployment = services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=1,
    )
    subscription.refresh_from_db()
    paid_until = subscription.paid_until
    assert paid_until is not None
    assert deployment_may_enter(deployment=deployment, day=paid_until)
    assert not deployment_may_enter(deployment=deployment, day=paid_until + datetime.timedelta(1))
    listing = subscription.listing
    listing.state = ListingState.SUSPENDED
    listing.save(update_fields=["state"])
    deployment.refresh_from_db()
    assert not deployment_may_enter(deployment=deployment, day=paid_until)


def test_ratings_need_a_subscriber_an_executed_run_and_one_to_five_stars():
    trader, subscription = _subscribed()
    with pytest.raises(MarketplaceError, match="Only subscribers"):
        services.rating_submit(
            subscription=subscription, user=ProfileFactory().user, stars=5, review=""
        )
    with pytest.raises(MarketplaceError, match="executed at least one run"):
        services.rating_submit(subscription=subscription, user=trader, stars=5, review="")
