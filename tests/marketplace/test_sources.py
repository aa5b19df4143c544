"""Deployments as a run source of the engine's planner."""

from __future__ import annotations

import datetime

import pytest

from brokers.models import Broker
from execution.models import ScheduledRun
from execution.planning.plan import day_plan
from marketplace import services
from marketplace.models import SubscriptionStatus
from tests.execution.engine_factories import strategy_with_accounts
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 10, 15)  # a Thursday session


def _deployed(multiplier=2):
    strategy, _, _ = strategy_with_accounts(brokers=(Broker.PAPER,))
    listing = ListingFactory(strategy=strategy)
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    deployment = services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=multiplier,
    )
    return subscription, deployment


def test_deployment_is_planned_for_the_subscriber_with_its_multiplier():
    subscription, deployment = _deployed()
    day_plan(day=DAY)
    runs = ScheduledRun.objects.filter(source="deployment", session_date=DAY)
    assert {run.boundary for run in runs} == {"entry", "exit"}
    for run in runs:
        assert run.owner_id == subscription.subscriber_id
        assert run.source_ref == str(deployment.pk)
        assert run.strategy_version_id == subscription.version.strategy_version_id
        assert [(a["account_id"], a["multiplier"]) for a in run.allocations] == [
            (deployment.broker_account_id, "2")
        ]


@pytest.mark.parametrize("status", [SubscriptionStatus.PAUSED, SubscriptionStatus.LAPSED])
def test_no_entry_is_planned_when_the_subscription_may_not_enter(status):
    subscription, _ = _deployed()
    day_plan(day=DAY)
    subscription.status = status
    subscription.save()
    day_plan(day=DAY)  # re-planned after the change: the planned runs are withdrawn
    runs = ScheduledRun.objects.filter(source="deployment", session_date=DAY)
    assert {run.state for run in runs} == {"skipped"}
