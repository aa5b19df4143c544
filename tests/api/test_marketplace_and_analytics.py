"""/api/v1 marketplace subscriptions and deployments, and the analytics summaries: the pages'
selectors and services, the same owners, the same black-box masking, no more queries than
the pages, a fixed number whatever the rows."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from brokers.models import AccountStatus
from execution.models import ExecutionEvent
from marketplace import services
from marketplace.models import Deployment, PlanKind, Subscription, SubscriptionStatus, Visibility
from tests.api.conftest import token_client
from tests.execution.engine_factories import strategy_with_accounts
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.marketplace.test_black_box import SYMBOL, _subscribed_run
from tests.trader.factories import ProfileFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]

SUBSCRIPTIONS = "/api/v1/marketplace/subscriptions/"


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def _listing(**kwargs):
    strategy, _, _ = strategy_with_accounts()
    return ListingFactory(strategy=strategy, **kwargs)


def test_subscribe_in_two_steps_then_deploy_and_stop_audited(owner):
    listing = _listing(plan={"kind": PlanKind.FEE, "monthly_fee": Decimal("999")})
    plan = listing.plans.get()
    shopper = token_client(owner, "marketplace", name="Shopper")
    url = f"/api/v1/marketplace/listings/{listing.pk}/subscribe/"
    terms = shopper.post(url, {"plan": plan.pk}, format="json")
    assert terms.status_code == 200 and terms.json()["monthly_fee"] == "999.00"
    assert terms.json()["first_period_end"] > terms.json()["first_period_start"]
    assert not Subscription.objects.filter(subscriber=owner).exists()
    done = shopper.post(url, {"plan": plan.pk, "confirm": True}, format="json")
    assert done.status_code == 201, done.json()
    subscription = Subscription.objects.get(subscriber=owner)
    assert done.json()["id"] == subscription.pk and done.json()["invoices_due"] == 1
    again = shopper.post(url, {"plan": plan.pk, "confirm": True}, format="json")
    assert again.status_code == 409
    assert again.json() == {"detail": "You are already subscribed to this listing."}
    # Deploying trades: the marketplace scope alone is not enough.
    account = PaperAccountFactory(owner=owner)
    deploy_url = f"{SUBSCRIPTIONS}{subscription.pk}/deployments/"
    body = {"broker_account_id": account.pk, "multiplier": 2}
    refused = shopper.post(deploy_url, body, format="json")
    assert refused.status_code == 403 and "“trade”" in refused.json()["detail"]
    deployer = token_client(owner, "marketplace", "trade", name="Deployer")
    deployed = deployer.post(deploy_url, body, format="json")
    assert deployed.status_code == 201, deployed.json()
    deployment = Deployment.objects.get(subscription=subscription)
    assert deployed.json()["id"] == deployment.pk and deployment.multiplier == 2
    changed = deployer.put(
        f"/api/v1/marketplace/deployments/{deployment.pk}/",
        {"multiplier": 3, "max_daily_loss": "2500.00"},
        format="json",
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["multiplier"] == 3 and changed.json()["max_daily_loss"] == "2500.00"
    deployment.refresh_from_db()
    assert deployment.multiplier == 3 and deployment.max_daily_loss == Decimal("2500")
    stopped = deployer.post(f"/api/v1/marketplace/deployments/{deployment.pk}/stop/")
    assert stopped.status_code == 200 and stopped.json()["is_active"] is False
    cancelled = shopper.post(f"{SUBSCRIPTIONS}{subscription.pk}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    events = ExecutionEvent.objects.filter(user_id=owner.pk).order_by("id")
    assert [(e.kind, e.data["api_token"]) for e in events] == [
        ("subscription.created", "Shopper"),
        ("deployment.created", "Deployer"),
        ("deployment.updated", "Deployer"),
        ("deployment.stopped", "Deployer"),
        ("subscription.cancelled", "Shopper"),
    ]
    closed = shopper.post(f"{SUBSCRIPTIONS}{subscription.pk}/cancel/")
    assert closed.status_code == 409 and closed.json() == {
        "detail": "This subscription is cancelled."
    }


def test_deployment_refusals_are_field_errors(owner):
    listing = _listing(min_multiplier=3)
    subscription = services.subscription_create(
        subscriber=owner, listing=listing, plan=listing.plans.get()
    )
    client = token_client(owner, "marketplace", "trade")
    url = f"{SUBSCRIPTIONS}{subscription.pk}/deployments/"
    foreign = PaperAccountFactory()
    answer = client.post(url, {"broker_account_id": foreign.pk, "multiplier": 3}, format="json")
    assert answer.status_code == 400
    assert answer.json() == {"broker_account_id": ["Choose one of your own broker accounts."]}
    expired = PaperAccountFactory(owner=owner, status=AccountStatus.EXPIRED, label="Old")
    answer = client.post(url, {"broker_account_id": expired.pk, "multiplier": 3}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["broker_account_id"]
    assert "log in to it first" in answer.json()["broker_account_id"][0]
    account = PaperAccountFactory(owner=owner)
    low = client.post(url, {"broker_account_id": account.pk, "multiplier": 1}, format="json")
    assert low.status_code == 400
    assert low.json() == {"multiplier": ["This listing needs a multiplier of at least 3."]}
    assert not Deployment.objects.exists()


def test_subscribe_to_a_plan_of_another_listing_or_to_your_own(owner):
    listing, other = _listing(), _listing()
    client = token_client(owner, "marketplace")
    url = f"/api/v1/marketplace/listings/{listing.pk}/subscribe/"
    answer = client.post(url, {"plan": other.plans.get().pk, "confirm": True}, format="json")
    assert answer.status_code == 400 and list(answer.json()) == ["plan"]
    own = _listing()
    mine = token_client(own.creator, "marketplace", name="creator")
    url = f"/api/v1/marketplace/listings/{own.pk}/subscribe/"
    answer = mine.post(url, {"plan": own.plans.get().pk, "confirm": True}, format="json")
    assert answer.status_code == 409 and "your own listing" in answer.json()["detail"]
    assert (
        client.post(
            "/api/v1/marketplace/listings/999999/subscribe/", {"plan": 1}, format="json"
        ).status_code
        == 404
    )


def test_subscriptions_of_their_subscriber_only(owner, stranger):
    listing = _listing()
    subscription = services.subscription_create(
        subscriber=owner, listing=listing, plan=listing.plans.get()
    )
    mine = token_client(owner, "marketplace")
    assert [s["id"] for s in mine.get(SUBSCRIPTIONS).json()] == [subscription.pk]
    theirs = token_client(stranger, "marketplace", name="stranger")
    assert theirs.get(SUBSCRIPTIONS).json() == []
    assert theirs.get(f"{SUBSCRIPTIONS}{subscription.pk}/").status_code == 404
    assert theirs.post(f"{SUBSCRIPTIONS}{subscription.pk}/cancel/").status_code == 404
    deployment = services.deployment_create(
        subscription=subscription,
        user=owner,
        broker_account=PaperAccountFactory(owner=owner),
        multiplier=1,
    )
    both = token_client(stranger, "marketplace", "trade", name="s2")
    assert both.post(f"/api/v1/marketplace/deployments/{deployment.pk}/stop/").status_code == 404
    put = both.put(f"/api/v1/marketplace/deployments/{deployment.pk}/", {"multiplier": 9}, "json")
    assert put.status_code == 404
    assert Subscription.objects.get(pk=subscription.pk).status == SubscriptionStatus.ACTIVE
    deployment.refresh_from_db()
    assert deployment.is_active and deployment.multiplier == 1
    # The read scope alone does not reach the marketplace.
    assert token_client(owner, "read", name="r").get(SUBSCRIPTIONS).status_code == 403


def test_a_black_box_subscription_shows_no_logic():
    listing, subscriber, _ = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    client = token_client(subscriber, "marketplace", "read")
    text = json.dumps(client.get(SUBSCRIPTIONS).json())
    assert "Theta harvester" in text
    assert SYMBOL not in text and "24350" not in text and "09:20" not in text
    assert listing.strategy.name not in text


def test_subscription_list_queries_constant_and_not_above_the_page(owner):
    client = APIClient()
    client.force_login(owner)

    def subscribe():
        listing = _listing(plan={"kind": PlanKind.FEE, "monthly_fee": Decimal("500")})
        subscription = services.subscription_create(
            subscriber=owner, listing=listing, plan=listing.plans.get()
        )
        services.deployment_create(
            subscription=subscription,
            user=owner,
            broker_account=PaperAccountFactory(owner=owner),
            multiplier=1,
        )

    subscribe()
    one = _queries(client, SUBSCRIPTIONS)
    for _ in range(3):
        subscribe()
    assert _queries(client, SUBSCRIPTIONS) == one
    assert len(client.get(SUBSCRIPTIONS).json()) == 4
    assert one <= _queries(client, reverse("marketplace:my-subscriptions"))


ANALYTICS = ["timing", "brokers", "costs", "performance"]


@pytest.mark.parametrize("report", ANALYTICS)
def test_analytics_mask_a_black_box_as_the_pages_do(report):
    listing, subscriber, _ = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    client = token_client(subscriber, "read")
    query = {"start": "2026-11-01", "end": "2026-11-30", "kinds": ["live", "paper", "test"]}
    answer = client.get(f"/api/v1/analytics/{report}/", query)
    assert answer.status_code == 200, answer.json()
    text = json.dumps(answer.json())
    assert SYMBOL not in text and listing.strategy.name not in text
    assert answer.json()["period"] == {
        "start": "2026-11-01",
        "end": "2026-11-30",
        "kinds": ["live", "paper", "test"],
    }
    if report == "timing":
        slowest = answer.json()["slowest"]
        assert slowest and slowest[0]["intended_at"] is None and slowest[0]["sent_at"] is None
        assert slowest[0]["strategy"] == "Theta harvester (logic hidden)"
    if report == "performance":
        rows = answer.json()["rows"]
        assert rows and {r["strategy"] for r in rows} == {"Theta harvester (logic hidden)"}


def test_analytics_filter_by_kind_and_period_errors():
    _, subscriber, _ = _subscribed_run(Visibility.COPY_ALLOWED)
    client = token_client(subscriber, "read")
    query = {"start": "2026-11-01", "end": "2026-11-30"}
    with_live = client.get("/api/v1/analytics/timing/", {**query, "kinds": ["live", "paper"]})
    tests_only = client.get("/api/v1/analytics/timing/", {**query, "kinds": ["test"]})
    assert with_live.json()["overall"]["send"]["count"] == 1
    assert tests_only.json()["overall"]["send"]["count"] == 0
    # Kinds without dates: the default period, the kinds asked for.
    period = client.get("/api/v1/analytics/brokers/", {"kinds": ["test"]}).json()["period"]
    assert period["kinds"] == ["test"]
    bad = client.get("/api/v1/analytics/costs/", {"start": "2026-12-01", "end": "2026-11-01"})
    assert bad.status_code == 400 and bad.json() == {
        "end": ["The end date is before the start date."]
    }
    bad = client.get("/api/v1/analytics/costs/", {**query, "kinds": ["gold"]})
    assert bad.status_code == 400 and list(bad.json()) == ["kinds"]
    stranger = token_client(ProfileFactory().user, "read", name="x")
    assert stranger.get("/api/v1/analytics/timing/", query).json()["overall"]["send"]["count"] == 0


@pytest.mark.parametrize("report", ANALYTICS)
def test_analytics_queries_not_above_the_page(report):
    _, subscriber, _ = _subscribed_run(Visibility.SUBSCRIBE_ONLY)
    client = APIClient()
    client.force_login(subscriber)
    query = "?start=2026-11-01&end=2026-11-30"
    api = _queries(client, f"/api/v1/analytics/{report}/{query}")
    page = _queries(client, reverse(f"execution:analytics-{report}") + query)
    assert api <= page, (api, page)
