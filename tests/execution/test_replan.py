"""Planning again before the runs fire: a changed allocation updates the planned run (never a
second run), a removed one withdraws it, and one added back before its time plans it again."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.models import Broker
from execution.markettime import IST
from execution.models import ExecutionEvent, RunState, ScheduledRun
from execution.planning.plan import day_plan
from execution.reference.calendar import day_status
from tests.execution.engine_factories import strategy_with_accounts
from trader.models import BrokerAllocation

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]


def _next_session() -> datetime.date:
    day = timezone.now().astimezone(IST).date() + datetime.timedelta(days=1)
    while day_status(day, "NSE").window is None:
        day += datetime.timedelta(days=1)
    return day


def _entry(strategy) -> ScheduledRun:
    return ScheduledRun.objects.get(boundary="entry", strategy_version__strategy=strategy)


def test_a_changed_allocation_updates_the_planned_run_in_place():
    day = _next_session()
    strategy, _version, _accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    day_plan(day=day)
    run = _entry(strategy)
    assert run.allocations[0]["multiplier"] == "1.00"
    BrokerAllocation.objects.filter(strategy=strategy).update(multiplier=Decimal("3"))
    result = day_plan(day=day)
    assert run.pk in {r.pk for r in result.updated} and not result.created
    run.refresh_from_db()
    assert run.state == RunState.PLANNED
    assert [a["multiplier"] for a in run.allocations] == ["3.00"]
    assert ScheduledRun.objects.filter(boundary="entry").count() == 1
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="run.replanned").exists()
    # Planned again with nothing changed: not touched.
    assert not day_plan(day=day).updated


def test_a_withdrawn_run_added_back_before_its_time_is_planned_again():
    day = _next_session()
    strategy, _version, (account,) = strategy_with_accounts(brokers=(Broker.KITE,))
    day_plan(day=day)
    run = _entry(strategy)
    BrokerAllocation.objects.filter(strategy=strategy).update(enabled=False)
    day_plan(day=day)
    run.refresh_from_db()
    assert run.state == RunState.SKIPPED and run.note.startswith("No longer scheduled")
    BrokerAllocation.objects.filter(strategy=strategy).update(enabled=True)
    result = day_plan(day=day)
    run.refresh_from_db()
    assert run.pk in {r.pk for r in result.updated}
    assert run.state == RunState.PLANNED and run.note == ""
    assert [a["account_id"] for a in run.allocations] == [account.pk]
