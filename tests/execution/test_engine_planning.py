"""Day planning (idempotent, re-planned on change, calendar-aware) and the ready check."""

from __future__ import annotations

import datetime

import pytest

from brokers.models import Broker
from execution.enqueue import DAY_PLAN
from execution.models import AccountReadiness, ExecutionEvent, RunState, ScheduledRun
from execution.planning.plan import day_plan
from execution.services import accounts_ready_check
from tests.execution.engine_factories import strategy_with_accounts
from trader.models import StrategyStatus

pytestmark = pytest.mark.django_db

THURSDAY = datetime.date(2026, 11, 19)


def test_planning_creates_entry_and_exit_once_per_day():
    _strategy, _version, _ = strategy_with_accounts(brokers=(Broker.KITE, Broker.UPSTOX))
    first = day_plan(day=THURSDAY)
    again = day_plan(day=THURSDAY)
    runs = ScheduledRun.objects.filter(session_date=THURSDAY)
    assert len(first.created) == 2 and not again.created and runs.count() == 2
    entry, exit_ = runs.get(boundary="entry"), runs.get(boundary="exit")
    assert exit_.entry_run_id == entry.pk
    assert entry.fire_at.hour == 3 and entry.fire_at.minute == 50  # 09:20 IST in UTC
    assert [a["priority"] for a in entry.allocations] == [1, 2]


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (datetime.date(2026, 11, 21), "not a NSE session"),  # Saturday
        (datetime.date(2026, 11, 24), "not a NSE session"),  # Guru Nanak Jayanti
    ],
)
def test_non_sessions_plan_nothing(day, why):
    strategy_with_accounts()
    result = day_plan(day=day)
    assert not result.created and why in result.not_planned[0]


def test_replanning_after_a_pause_skips_the_runs_not_yet_dispatched():
    strategy, _, _ = strategy_with_accounts()
    day_plan(day=THURSDAY)
    strategy.status = StrategyStatus.PAUSED
    strategy.save()
    result = day_plan(day=THURSDAY, strategy_id=strategy.pk)
    assert len(result.skipped) == 2
    assert set(ScheduledRun.objects.values_list("state", flat=True)) == {RunState.SKIPPED}
    assert ExecutionEvent.objects.filter(kind="run.unplanned").count() == 2


def test_budget_sunday_special_session_is_planned():
    _strategy, version, _ = strategy_with_accounts()
    version.trading_days = 0b1111111
    version.save()
    result = day_plan(day=datetime.date(2026, 2, 1))
    assert result.created
    assert {r.special_session.reason for r in result.created} == {
        "Union Budget 2026-27 (Sunday; settlement holiday)"
    }
    # An ordinary weekday run references no special session.
    assert day_plan(day=THURSDAY).created[0].special_session is None


def test_ready_check_tells_the_owner_what_is_missing_once(mailoutbox):
    strategy, _, (account,) = strategy_with_accounts(brokers=(Broker.KITE,))
    account.token_issued_at = None
    account.save()
    day_plan(day=THURSDAY)
    (readiness,) = accounts_ready_check(day=THURSDAY)
    assert not readiness.ready
    assert any("not logged in today" in p for p in readiness.problems)
    assert any("static IP" in p for p in readiness.problems)
    accounts_ready_check(day=THURSDAY)
    assert len(mailoutbox) == 1 and mailoutbox[0].to == [strategy.owner.email]
    assert AccountReadiness.objects.count() == 1


def test_a_changed_allocation_re_plans_the_strategy_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    calls = []
    monkeypatch.setattr(
        "execution.enqueue.task_enqueue",
        lambda name, **options: calls.append(options["kwargs"]) if name == DAY_PLAN else None,
    )
    strategy, _, _ = strategy_with_accounts()
    allocation = strategy.allocations.get()
    with django_capture_on_commit_callbacks(execute=True):
        allocation.priority = 2
        allocation.save()
    assert calls == [{"strategy_id": strategy.pk}]
