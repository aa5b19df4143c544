"""A deployment's own risk limits (the subscriber's daily loss for it) reach the engine: the
run source puts them on the run's account allocation (snapshotted into the run), where the
engine's risk step finds them: execution.protection.risk.source_limit_checks before orders (against
that target's own P&L of the day) and execution.protection.risk.source_limit_exit for the MTM
watch."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from brokers.models import Broker
from execution.models import OrderIntent, ScheduledRun
from execution.planning.plan import day_plan
from execution.planning.sources import AccountAllocation
from execution.protection import risk
from execution.protection.watch import runs_watch
from marketplace import services
from tests.execution.engine_factories import strategy_with_accounts
from tests.execution.test_engine_watch import NOON, PricedMarket, _open_run
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.trader.factories import ProfileFactory

DAY = datetime.date(2026, 10, 15)  # a Thursday session


def _deployed(*, max_daily_loss):
    strategy, _, _ = strategy_with_accounts(brokers=(Broker.PAPER,))
    listing = ListingFactory(strategy=strategy)
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    return services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=2,
        max_daily_loss=max_daily_loss,
    )


def _entry(deployment) -> ScheduledRun:
    return ScheduledRun.objects.get(
        session_date=DAY, boundary="entry", source="deployment", source_ref=str(deployment.pk)
    )


@pytest.mark.django_db
def test_the_planned_run_carries_the_deployments_loss_limit_and_follows_its_changes():
    deployment = _deployed(max_daily_loss=Decimal("1500"))
    day_plan(day=DAY)
    (allocation,) = _entry(deployment).allocations
    assert allocation["limits"] == {"max_daily_loss": "1500.00"}
    assert AccountAllocation.from_json(allocation).limits == {"max_daily_loss": "1500.00"}
    trader = deployment.subscription.subscriber
    services.deployment_stop(deployment=deployment, user=trader)
    services.deployment_create(
        subscription=deployment.subscription,
        user=trader,
        broker_account=deployment.broker_account,
        multiplier=2,
        max_daily_loss=Decimal("800"),
    )
    result = day_plan(day=DAY)
    assert [run.source_ref for run in result.updated if run.boundary == "entry"] == [
        str(deployment.pk)
    ]
    (allocation,) = _entry(deployment).allocations
    assert allocation["limits"] == {"max_daily_loss": "800.00"}


@pytest.mark.django_db
def test_a_deployment_without_limits_keeps_the_snapshot_unchanged():
    deployment = _deployed(max_daily_loss=None)
    day_plan(day=DAY)
    (allocation,) = _entry(deployment).allocations
    assert "limits" not in allocation
    assert AccountAllocation.from_json(allocation).limits == {}


@pytest.mark.parametrize(
    ("limits", "leg_lots", "day_pnl", "refused"),
    [
        ({}, [50, 50], Decimal("-99999"), False),  # no source limits: go
        ({"max_daily_loss": "1000"}, [2, 2], Decimal("-999.99"), False),
        ({"max_daily_loss": "1000"}, [2, 2], Decimal("-1000"), True),  # reached
        ({"max_daily_loss": "1000"}, [2, 2], Decimal("-1500"), True),
        ({"max_daily_loss": "1000"}, [2, 2], Decimal("2500"), False),
        ({"max_lots_per_order": "3"}, [4, 2], Decimal(0), True),
        ({"max_lots_per_strategy": "5"}, [3, 3], Decimal(0), True),
        ({"max_lots_per_strategy": "6", "unknown": "1"}, [3, 3], Decimal(0), False),
    ],
)
def test_source_limits_are_checked_against_the_targets_own_pnl(limits, leg_lots, day_pnl, refused):
    problems = risk.source_limit_checks(limits=limits, leg_lots=leg_lots, day_pnl=day_pnl)
    assert bool(problems) is refused, problems


@pytest.mark.parametrize(
    ("mtm", "stops"), [(Decimal("-999.99"), False), (Decimal("-1000"), True), (Decimal(5), False)]
)
def test_a_run_stops_for_the_day_once_its_loss_reaches_the_source_limit(mtm, stops):
    reason = risk.source_limit_exit(limits={"max_daily_loss": "1000"}, mtm=mtm)
    assert (reason is not None) is stops
    assert risk.source_limit_exit(limits={}, mtm=Decimal("-99999")) is None


@pytest.mark.django_db
def test_the_watch_stops_a_deployment_run_at_its_daily_loss_limit():
    run, positions = _open_run()
    run.source = "deployment"
    run.allocations = [
        AccountAllocation(
            account_id=positions[0].account_id,
            broker="kite",
            priority=1,
            multiplier=Decimal(2),
            limits={"max_daily_loss": "1000"},
        ).to_json()
    ]
    run.save()
    # The short loses 20 x 75 and the long gains 2 x 75: MTM -1,350, past the ₹1,000 limit.
    market = PricedMarket({24000: Decimal("120"), 24500: Decimal("42")})
    runs_watch(now=NOON, market=market, send=False)
    run.refresh_from_db()
    assert run.mtm == Decimal("-1350.00")
    assert "daily loss limit of this deployment" in run.exit_reason
    assert set(OrderIntent.objects.filter(run=run).values_list("purpose", flat=True)) == {"stop"}
