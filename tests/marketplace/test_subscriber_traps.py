"""Tried as a subscriber would: deployments obey the trader's limits, the multiplier can be
changed, only tradable accounts are offered, subscribing is confirmed with its terms, invoices
and "paid until" agree, reviews need an executed run, the underlying filter is a choice."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from brokers.models import AccountStatus
from execution.models import OrderIntent
from marketplace import services
from marketplace.models import Deployment, PlanKind, Rating, Subscription
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.engine_factories import IntentFactory
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.marketplace.security_helpers import deployment_run, fee_subscription
from tests.trader.factories import ProfileFactory
from trader.models import RiskCeiling, RiskLimit

pytestmark = pytest.mark.django_db

TODAY = datetime.date(2026, 12, 4)


@pytest.fixture(autouse=True)
def _pinned_day(monkeypatch):
    for module in ("marketplace.services.billing", "marketplace.services.subscriptions"):
        monkeypatch.setattr(f"{module}.ist_today", lambda: TODAY)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _subscribed(**listing_fields):
    listing = ListingFactory(**listing_fields)
    subscriber = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=subscriber, listing=listing, plan=listing.plans.get()
    )
    return subscription, subscriber


def _limit(user, lots_per_order=50, lots_per_strategy=100):
    RiskLimit.objects.create(
        user=user,
        max_lots_per_order=lots_per_order,
        max_lots_per_strategy=lots_per_strategy,
        max_open_strategies=5,
        max_daily_loss=Decimal("20000"),
    )


def _deploy(client, subscription, account, multiplier, **extra):
    return client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": account.pk, "multiplier": multiplier, **extra},
    )


def test_deployment_above_the_traders_lots_per_order_is_refused():
    subscription, subscriber = _subscribed()
    _limit(subscriber, lots_per_order=50)
    account = PaperAccountFactory(owner=subscriber)
    page = _deploy(_client(subscriber), subscription, account, 1000)
    assert page.status_code == 200
    assert "above your limit of 50 lots per order" in page.text
    assert not Deployment.objects.exists()
    _deploy(_client(subscriber), subscription, account, 20)
    assert Deployment.objects.get().multiplier == 20


def test_deployment_obeys_the_admin_ceiling():
    subscription, subscriber = _subscribed()
    _limit(subscriber, lots_per_order=50)
    RiskCeiling.objects.filter(pk=1).update(max_lots_per_order=10)
    page = _deploy(_client(subscriber), subscription, PaperAccountFactory(owner=subscriber), 20)
    assert "above your limit of 10 lots per order" in page.text
    assert not Deployment.objects.exists()


def test_deployments_together_obey_lots_per_strategy():
    subscription, subscriber = _subscribed()
    _limit(subscriber, lots_per_order=50, lots_per_strategy=60)
    client = _client(subscriber)
    _deploy(client, subscription, PaperAccountFactory(owner=subscriber), 20)  # 2 legs: 40 lots
    page = _deploy(client, subscription, PaperAccountFactory(owner=subscriber), 20)
    assert "above your limit of 60 lots per strategy" in page.text
    assert Deployment.objects.count() == 1


def test_the_multiplier_can_be_changed_within_the_limits():
    subscription, subscriber = _subscribed()
    _limit(subscriber, lots_per_order=50)
    client = _client(subscriber)
    _deploy(client, subscription, PaperAccountFactory(owner=subscriber), 2)
    deployment = Deployment.objects.get()
    url = reverse("marketplace:deployment-edit", args=[deployment.pk])
    client.post(url, {"multiplier": 5})
    deployment.refresh_from_db()
    assert deployment.multiplier == 5
    page = client.post(url, {"multiplier": 1000}, follow=True)
    assert "above your limit of 50 lots per order" in page.text
    deployment.refresh_from_db()
    assert deployment.multiplier == 5
    # Someone else's deployment is not theirs to change.
    stranger = _client(ProfileFactory().user)
    assert stranger.post(url, {"multiplier": 1}).status_code == 404
    deployment.refresh_from_db()
    assert deployment.multiplier == 5


def test_only_accounts_that_can_trade_are_offered():
    subscription, subscriber = _subscribed()
    expired = BrokerAccountFactory(owner=subscriber, status=AccountStatus.EXPIRED, label="Old")
    connected = PaperAccountFactory(owner=subscriber, label="Ready paper")
    page = _client(subscriber).get(reverse("marketplace:subscription", args=[subscription.pk]))
    assert "Ready paper" in page.text and f'value="{expired.pk}"' not in page.text
    refused = _deploy(_client(subscriber), subscription, expired, 1)
    assert "logged-in broker accounts" in refused.text
    assert not Deployment.objects.exists()
    _deploy(_client(subscriber), subscription, connected, 1)
    assert Deployment.objects.get().broker_account == connected


def test_subscribing_shows_the_terms_and_asks_for_confirmation():
    listing = ListingFactory(plan={"kind": PlanKind.FEE, "monthly_fee": Decimal("499")})
    trader = _client(ProfileFactory().user)
    url = reverse("marketplace:subscribe", args=[listing.pk])
    page = trader.post(url, {"plan": listing.plans.get().pk})
    assert page.status_code == 200 and not Subscription.objects.exists()
    for words in ("₹499.00 a month", "04 Dec 2026 \u2013 03 Jan 2027", "04 Jan 2027", "lapses"):
        assert words in page.text, words
    trader.post(url, {"plan": listing.plans.get().pk, "confirm": "yes"})
    assert Subscription.objects.count() == 1


def test_invoice_and_paid_until_agree():
    subscription = fee_subscription()
    client = _client(subscription.subscriber)
    page = client.get(reverse("marketplace:subscription", args=[subscription.pk])).text
    assert "Issued (due)" in page and "₹499.00 due" in page
    assert "paid until" not in page
    listing_page = client.get(reverse("marketplace:my-subscriptions")).text
    assert "paid until" not in listing_page and "₹499.00 due" in listing_page
    admin = ProfileFactory().user
    admin.is_superuser = admin.is_staff = True
    admin.save()
    services.invoice_mark_paid(invoice=subscription.invoices.get(), admin=admin, reference="U1")
    page = client.get(reverse("marketplace:subscription", args=[subscription.pk])).text
    assert "paid until 03 Jan 2027" in page and "due</strong>" not in page


def test_a_review_needs_an_executed_run():
    subscription, subscriber = _subscribed()
    client = _client(subscriber)
    rate = reverse("marketplace:rate", args=[subscription.pk])
    page = client.post(rate, {"stars": 1, "review": "Useless"}, follow=True)
    assert "once it has executed at least one run" in page.text
    assert not Rating.objects.exists()
    deployment, run = deployment_run(subscription)
    intent = IntentFactory(run=run, account=deployment.broker_account, intended_at=run.fire_at)
    client.post(rate, {"stars": 2, "review": "Not yet"})
    assert not Rating.objects.exists()  # sent is not executed
    OrderIntent.objects.filter(pk=intent.pk).update(state="filled", filled_quantity=75)
    client.post(rate, {"stars": 2, "review": "Slippage"})
    assert Rating.objects.get().stars == 2


@pytest.mark.parametrize("typed", ["nifty", "NIFTY", " Nifty "])
def test_the_underlying_filter_is_a_choice_that_ignores_case(client, typed):
    listing = ListingFactory(title="Nifty weekly")
    page = client.get(reverse("marketplace:browse"), {"underlying": typed})
    assert listing.title in page.text
    assert '<select name="underlying"' in page.text


def _fee_listing_with_subscriber():
    subscription = fee_subscription()
    return subscription.listing, subscription


def test_a_creator_offers_more_plans_and_traders_choose_among_them():
    listing, _ = _fee_listing_with_subscriber()
    creator = _client(listing.creator)
    creator.post(
        reverse("marketplace:plan-add", args=[listing.pk]),
        {"kind": "share", "monthly_fee": "0", "profit_share_percent": "20"},
    )
    assert listing.plans.filter(is_active=True).count() == 2
    trader = _client(ProfileFactory().user)
    page = trader.get(reverse("marketplace:listing", args=[listing.pk])).text
    assert "₹499.00 a month" in page and "20 % of profit above the high-water mark" in page


def test_a_new_price_reaches_existing_subscribers_only_at_renewal():
    from marketplace.models import Notification
    from marketplace.services.billing import subscriptions_renew_or_lapse

    listing, subscription = _fee_listing_with_subscriber()
    plan = listing.plans.get()
    creator = _client(listing.creator)
    creator.post(
        reverse("marketplace:plan-edit", args=[plan.pk]),
        {"monthly_fee": "799", "profit_share_percent": "0"},
    )
    plan.refresh_from_db()
    subscription.refresh_from_db()
    assert plan.monthly_fee == Decimal("799")
    assert subscription.monthly_fee == Decimal("499")  # kept until renewal
    assert Notification.objects.filter(
        user=subscription.subscriber, message__contains="until your next renewal"
    ).exists()
    # The first month is paid; at its end the next month is invoiced at the new price.
    admin = ProfileFactory().user
    admin.is_superuser = admin.is_staff = True
    admin.save()
    services.invoice_mark_paid(invoice=subscription.invoices.get(), admin=admin, reference="U1")
    subscriptions_renew_or_lapse(today=datetime.date(2027, 1, 4))
    subscription.refresh_from_db()
    assert subscription.monthly_fee == Decimal("799")
    assert subscription.invoices.get(period_start=datetime.date(2027, 1, 4)).amount == Decimal(
        "799"
    )


def test_plans_are_the_creators_alone_and_one_stays_offered():
    listing, subscription = _fee_listing_with_subscriber()
    plan = listing.plans.get()
    edit = reverse("marketplace:plan-edit", args=[plan.pk])
    retire = reverse("marketplace:plan-retire", args=[plan.pk])
    subscriber = _client(subscription.subscriber)
    assert (
        subscriber.post(edit, {"monthly_fee": "1", "profit_share_percent": "0"}).status_code == 404
    )
    assert subscriber.post(retire).status_code == 404
    page = _client(listing.creator).post(retire, follow=True)
    assert "at least one plan" in page.text
    plan.refresh_from_db()
    assert plan.is_active and plan.monthly_fee == Decimal("499")
