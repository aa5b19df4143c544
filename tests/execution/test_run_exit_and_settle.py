"""The trader's own "exit now" sending its closing orders at the Kite emulator (shorts bought
back first, never twice), and a run settling into its final state once nothing of it is open."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from execution.models import (
    Boundary,
    ExecutionEvent,
    IntentState,
    OrderIntent,
    Position,
    RunState,
    ScheduledRun,
)
from execution.orders.runs import ExitError, run_exit, run_settle
from tests.execution.engine_factories import IntentFactory, RunFactory, VersionFactory
from tests.execution.test_engine_sends_at_brokers import (  # noqa: F401 (fixtures)
    _posts,
    _watched_run,
    eager_tasks,
    kite_alone,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]


@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today", "eager_tasks")
def test_exit_now_sends_the_closing_orders_once_shorts_first(
    kite_alone,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    run, _ = _watched_run(kite_alone)
    owner = run.owner
    with django_capture_on_commit_callbacks(execute=True):
        intents = run_exit(actor=owner, run=run, reason="trader pressed exit")
    closing = list(OrderIntent.objects.filter(pk__in=[i.pk for i in intents]).order_by("phase"))
    assert [i.side for i in closing] == ["BUY", "SELL"]
    assert {i.state for i in closing} == {IntentState.ACKNOWLEDGED}
    assert [r["tag"] for r in _posts(kite_alone, [i.tag for i in closing])] == [
        closing[0].tag,
        closing[1].tag,
    ]
    assert ExecutionEvent.objects.filter(run_id=run.pk, data__actor_id=owner.pk).exists()
    # Pressed again while those orders work: nothing is closed twice.
    with pytest.raises(ExitError, match="Nothing to exit"):
        run_exit(actor=owner, run=run, send=False)


def _run(**kwargs) -> ScheduledRun:
    version = VersionFactory()
    return RunFactory(
        strategy_version=version,
        owner=version.strategy.owner,
        state=RunState.DISPATCHED,
        **kwargs,
    )


def _position(run, net: int) -> Position:
    return Position.objects.create(
        run=run,
        account=IntentFactory(run=run, state=IntentState.FILLED).account,
        owner=run.owner,
        exchange="NFO",
        tradingsymbol=f"NIFTYX{run.pk}{net}",
        lot_size=75,
        net_quantity=net,
        buy_quantity=75,
        sell_quantity=75 - net,
        buy_value=Decimal("7500"),
        sell_value=Decimal("9000"),
    )


def test_an_entry_with_no_fill_at_all_settles_as_failed():
    run = _run()
    IntentFactory(run=run, state=IntentState.REJECTED)
    assert run_settle(run_id=run.pk) == RunState.FAILED
    assert ScheduledRun.objects.get(pk=run.pk).finished_at is not None


def test_an_entry_flat_after_an_early_exit_settles_as_exited_with_its_pnl():
    run = _run(exit_reason="combined stop-loss")
    _position(run, 0)
    assert run_settle(run_id=run.pk) == RunState.EXITED
    run.refresh_from_db()
    assert run.mtm == Decimal("1500.00")  # sold 9,000, bought 7,500
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="run.exited").exists()


def test_an_entry_flat_after_its_scheduled_exit_completes_and_the_exit_run_too():
    entry = _run()
    _position(entry, 0)
    exit_run = RunFactory(
        strategy_version=entry.strategy_version,
        owner=entry.owner,
        boundary=Boundary.EXIT,
        entry_run=entry,
        state=RunState.DISPATCHED,
        fire_at=entry.fire_at + datetime.timedelta(hours=5),
    )
    IntentFactory(
        run=exit_run, purpose="exit", state=IntentState.FILLED, filled_quantity=75, side="SELL"
    )
    assert run_settle(run_id=entry.pk) == RunState.COMPLETED
    assert run_settle(run_id=exit_run.pk) == RunState.COMPLETED


def test_a_flat_entry_closed_outside_its_exit_settles_as_exited():
    run = _run()
    _position(run, 0)
    assert run_settle(run_id=run.pk) == RunState.EXITED
    assert (
        "outside its scheduled exit"
        in ExecutionEvent.objects.get(run_id=run.pk, kind="run.exited").message
    )


def test_a_run_with_anything_still_open_does_not_settle():
    open_position = _run()
    _position(open_position, -75)
    assert run_settle(run_id=open_position.pk) is None
    working = _run()
    IntentFactory(run=working, state=IntentState.UNKNOWN, unknown_since=timezone.now())
    assert run_settle(run_id=working.pk) is None
    planned = _run()
    ScheduledRun.objects.filter(pk=planned.pk).update(state=RunState.PLANNED)
    assert run_settle(run_id=planned.pk) is None
    assert run_settle(run_id=10**9) is None
    assert ScheduledRun.objects.get(pk=open_position.pk).state == RunState.DISPATCHED
