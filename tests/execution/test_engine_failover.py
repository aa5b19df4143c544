"""Failover by allocation priority and the leg-failure policy (no naked shorts)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.models import Broker
from execution.models import (
    ExecutionEvent,
    IntentState,
    OrderIntent,
    Position,
    RunState,
    ScheduledRun,
)
from execution.protection.failover import run_failures_handle
from tests.execution.engine_factories import IntentFactory, RunFactory, strategy_with_accounts
from trader.models import LegFailurePolicy, StrategyStatus

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]


def _run(brokers, policy=LegFailurePolicy.UNWIND):
    strategy, version, accounts = strategy_with_accounts(brokers=brokers)
    strategy.leg_failure_policy = policy
    strategy.save()
    run = RunFactory(
        strategy_version=version,
        owner=strategy.owner,
        state=RunState.DISPATCHED,
        allocations=[
            {"account_id": a.pk, "broker": a.broker, "priority": i, "algo_id": ""}
            for i, a in enumerate(accounts, start=1)
        ],
    )
    return run, accounts


def _intent(run, account, side, state, symbol):
    return IntentFactory(
        run=run,
        account=account,
        side=side,
        phase=0 if side == "BUY" else 1,
        state=state,
        tradingsymbol=symbol,
        error="Insufficient funds" if state == IntentState.REJECTED else "",
    )


def test_a_permanently_failed_account_moves_its_lots_to_the_next_by_priority():
    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    rejected = _intent(run, first, "BUY", IntentState.REJECTED, "NIFTYA")
    held = _intent(run, first, "SELL", IntentState.ABANDONED, "NIFTYB")
    _intent(run, second, "BUY", IntentState.ACKNOWLEDGED, "NIFTYA")
    _intent(run, second, "SELL", IntentState.ACKNOWLEDGED, "NIFTYB")

    payloads = run_failures_handle(run_id=run.pk)

    moved = list(OrderIntent.objects.filter(failover_from__isnull=False).order_by("phase"))
    assert [(m.account_id, m.side, m.failover_from_id) for m in moved] == [
        (second.pk, "BUY", rejected.pk),
        (second.pk, "SELL", held.pk),
    ]
    assert all(m.tag not in (rejected.tag, held.tag) for m in moved)
    rejected.refresh_from_db()
    assert rejected.state == IntentState.FAILED_OVER
    (payload,) = payloads
    assert payload["account_id"] == second.pk and payload["fire_at"] is None
    assert [o["side"] for o in payload["orders"]] == ["BUY", "SELL"]
    event = ExecutionEvent.objects.get(kind="run.failover")
    assert "Insufficient funds" in event.message
    # Handled once: a second call moves nothing more.
    assert run_failures_handle(run_id=run.pk) == []
    assert OrderIntent.objects.filter(failover_from__isnull=False).count() == 2


def test_unknown_outcomes_are_resolved_before_any_failover():
    run, (first, _second) = _run((Broker.KITE, Broker.UPSTOX))
    _intent(run, first, "BUY", IntentState.UNKNOWN, "NIFTYA")
    _intent(run, first, "SELL", IntentState.ABANDONED, "NIFTYB")
    assert run_failures_handle(run_id=run.pk) == []
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()


def test_another_accounts_unknown_outcome_does_not_hold_a_failover():
    # The bench at --fault-rate 0.2 showed a broker down for the boundary (every write refused
    # before acceptance) never failing over when an order of the run at the other account was
    # still being looked up: those lots were reported as rejected, never placed.
    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    rejected = _intent(run, first, "BUY", IntentState.REJECTED, "NIFTYA")
    held = _intent(run, first, "SELL", IntentState.ABANDONED, "NIFTYB")
    _intent(run, second, "BUY", IntentState.UNKNOWN, "NIFTYA")
    _intent(run, second, "SELL", IntentState.ACKNOWLEDGED, "NIFTYB")

    (payload,) = run_failures_handle(run_id=run.pk)

    moved = OrderIntent.objects.filter(failover_from__isnull=False).order_by("phase")
    assert [(m.account_id, m.failover_from_id) for m in moved] == [
        (second.pk, rejected.pk),
        (second.pk, held.pk),
    ]
    assert payload["account_id"] == second.pk
    rejected.refresh_from_db()
    assert rejected.state == IntentState.FAILED_OVER


def test_with_no_account_left_the_policy_still_waits_for_unknown_outcomes():
    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    _intent(run, first, "BUY", IntentState.REJECTED, "NIFTYA")
    _intent(run, second, "BUY", IntentState.REJECTED, "NIFTYA")
    _intent(run, second, "SELL", IntentState.UNKNOWN, "NIFTYB")
    assert run_failures_handle(run_id=run.pk) == []
    run.refresh_from_db()
    assert run.state == RunState.DISPATCHED  # no policy applied yet
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()


def _filled_position(run, account, symbol, quantity):
    return Position.objects.create(
        run=run,
        account=account,
        owner=run.owner,
        exchange="NFO",
        tradingsymbol=symbol,
        lot_size=75,
        net_quantity=quantity,
        buy_quantity=max(quantity, 0),
        sell_quantity=max(-quantity, 0),
    )


def test_unwind_policy_closes_every_filled_leg_shorts_first_when_no_account_is_left():
    run, (only,) = _run((Broker.KITE,))
    _intent(run, only, "BUY", IntentState.FILLED, "HEDGEOK")
    _intent(run, only, "BUY", IntentState.REJECTED, "HEDGEBAD")
    _intent(run, only, "SELL", IntentState.FILLED, "SHORT1")
    _filled_position(run, only, "HEDGEOK", 75)
    _filled_position(run, only, "SHORT1", -75)

    (payload,) = run_failures_handle(run_id=run.pk)

    closing = [(o["side"], o["tradingsymbol"]) for o in payload["orders"]]
    assert closing == [("BUY", "SHORT1"), ("SELL", "HEDGEOK")]
    run.refresh_from_db()
    assert run.state == RunState.HALTED
    assert ExecutionEvent.objects.filter(kind="run.leg_failure_policy").exists()
    # Another failure of the same run later (a missed or rejected order): no second unwind.
    closing_count = OrderIntent.objects.filter(run=run, purpose="unwind").count()
    assert run_failures_handle(run_id=run.pk) == []
    assert OrderIntent.objects.filter(run=run, purpose="unwind").count() == closing_count
    assert not OrderIntent.objects.filter(run=run, purpose="unwind", state="abandoned").exists()


def test_halt_policy_closes_only_naked_shorts_and_pauses_the_strategy():
    run, (only,) = _run((Broker.KITE,), policy=LegFailurePolicy.HALT)
    _intent(run, only, "BUY", IntentState.REJECTED, "HEDGEBAD")
    _intent(run, only, "SELL", IntentState.FILLED, "SHORT1")
    _intent(run, only, "SELL", IntentState.INTENT, "SHORT2")
    _filled_position(run, only, "SHORT1", -75)

    (payload,) = run_failures_handle(run_id=run.pk)

    assert [(o["side"], o["tradingsymbol"]) for o in payload["orders"]] == [("BUY", "SHORT1")]
    assert OrderIntent.objects.get(tradingsymbol="SHORT2").state == IntentState.ABANDONED
    run.refresh_from_db()
    assert run.state == RunState.HALTED
    assert run.strategy_version.strategy.status == StrategyStatus.PAUSED
    assert ScheduledRun.objects.get(pk=run.pk).note.startswith("A leg could not be placed")
    assert Decimal(0) == run.mtm


def test_an_order_moved_to_another_broker_is_renamed_in_its_notation():
    import datetime

    from execution.reference import contracts, instruments

    expiry = contracts.pick_expiry("NIFTY", datetime.date(2026, 11, 19), "current_week")
    instrument = instruments.instrument_for("NIFTY", expiry, Decimal("24000"), "CE")
    kite_symbol, _ = instruments.broker_symbol(instrument, "kite")
    upstox_symbol, upstox_token = instruments.broker_symbol(instrument, "upstox")
    assert kite_symbol != upstox_symbol
    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    _intent(run, first, "BUY", IntentState.REJECTED, kite_symbol)
    run_failures_handle(run_id=run.pk)
    moved = OrderIntent.objects.get(failover_from__isnull=False)
    assert (moved.account_id, moved.tradingsymbol) == (second.pk, upstox_symbol)
    assert moved.instrument_token == str(upstox_token)


def test_the_policy_drops_only_unsent_orders_it_can_prove_never_written():
    """Seen in the --kill-worker bench: a dead worker's hedge, written at T (marked "about to
    write", outcome never recorded) was dropped by the policy as "not sent" while it stood
    at the broker. Marked, or held by a live sender: its state stays for the lookup or the
    sender to settle; unclaimed and unmarked: dropped, and claimed so no sender writes it."""
    from execution.send import sender

    run, (only,) = _run((Broker.KITE,))
    _intent(run, only, "BUY", IntentState.REJECTED, "HEDGEBAD")
    on_the_wire = _intent(run, only, "BUY", IntentState.INTENT, "HEDGEWIRE")
    in_flight = _intent(run, only, "SELL", IntentState.INTENT, "SHORTLIVE")
    never = _intent(run, only, "SELL", IntentState.INTENT, "SHORTNEVER")
    sender.claims_take([on_the_wire.tag], owner="deadhost:1:killed")
    assert sender.wire_marks_set([on_the_wire.tag], owner="deadhost:1:killed")
    sender.claims_take([in_flight.tag])  # this live process's sender
    sender.heartbeat_start()
    run_failures_handle(run_id=run.pk)
    states = dict(OrderIntent.objects.filter(run=run).values_list("tradingsymbol", "state"))
    assert states["HEDGEWIRE"] == states["SHORTLIVE"] == IntentState.INTENT
    assert states["SHORTNEVER"] == IntentState.ABANDONED
    assert sender.wire_marks_set([never.tag]) == set()  # no sender can write it now


# --- an unknown outcome settled later by the reconciler ----------------------------------------
class _RefusedAtTheBroker:
    """Its book shows the order tagged `tag` as rejected (never placed), and no other."""

    def __init__(self, tag):
        self.tag = tag

    def order_status(self, broker_order_id):
        return None

    def find_order_by_tag(self, tag):
        from brokers.base import BrokerOrder, OrderStatus, Side

        if tag != self.tag:
            return None
        return BrokerOrder(
            broker_order_id=f"B-{tag}",
            tag=tag,
            tradingsymbol="NIFTYA",
            side=Side.BUY,
            quantity=75,
            filled_quantity=0,
            average_price=None,
            status=OrderStatus.REJECTED,
            status_message="Margin shortfall",
        )


def _settled_as_not_placed(monkeypatch, django_capture_on_commit_callbacks, *, late_by):
    """A hedge at the first account whose answer was lost (unknown), `late_by` seconds after
    its T; the reconciler finds it rejected in the broker's book. Returns the run, its
    accounts, the hedge and the runs the settlement started the failover task for."""
    import datetime

    from django.utils import timezone

    from execution import enqueue
    from execution.orders.lifecycle import open_orders_reconcile

    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    fire_at = timezone.now() - datetime.timedelta(seconds=late_by)
    hedge = IntentFactory(
        run=run,
        account=first,
        side="BUY",
        phase=0,
        state=IntentState.UNKNOWN,
        tradingsymbol="NIFTYA",
        intended_at=fire_at,
        unknown_since=fire_at,
    )
    _intent(run, second, "BUY", IntentState.ACKNOWLEDGED, "NIFTYA")
    monkeypatch.setattr(
        "brokers.registry.get_adapter", lambda account: _RefusedAtTheBroker(hedge.tag)
    )
    started = []
    monkeypatch.setattr(
        enqueue, "task_enqueue", lambda name, **options: started.append((name, options))
    )
    with django_capture_on_commit_callbacks(execute=True):
        open_orders_reconcile()
    hedge.refresh_from_db()
    assert hedge.state == IntentState.REJECTED
    failovers = [o["args"][0] for name, o in started if name == enqueue.RUN_FAILURES]
    return run, (first, second), hedge, failovers


def test_an_unknown_order_settled_as_not_placed_fails_over_within_the_cap(
    monkeypatch, django_capture_on_commit_callbacks, settings
):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 30
    run, (_first, second), hedge, failovers = _settled_as_not_placed(
        monkeypatch, django_capture_on_commit_callbacks, late_by=2
    )
    assert failovers == [run.pk]  # the settlement runs the failover decision
    (payload,) = run_failures_handle(run_id=run.pk)
    (moved,) = OrderIntent.objects.filter(failover_from=hedge)
    assert moved.account_id == second.pk and moved.state == IntentState.INTENT
    assert [o["tag"] for o in payload["orders"]] == [moved.tag]
    hedge.refresh_from_db()
    assert hedge.state == IntentState.FAILED_OVER
    # Never placed twice: the decision run again (a redelivered task) moves nothing more.
    assert run_failures_handle(run_id=run.pk) == []
    assert OrderIntent.objects.filter(failover_from__isnull=False).count() == 1


def test_an_unknown_order_settled_as_not_placed_past_the_cap_is_missed_not_moved(
    monkeypatch, django_capture_on_commit_callbacks, settings
):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 5
    run, _accounts, _hedge, failovers = _settled_as_not_placed(
        monkeypatch, django_capture_on_commit_callbacks, late_by=40
    )
    assert failovers == [run.pk]
    run_failures_handle(run_id=run.pk)
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()
    event = ExecutionEvent.objects.get(kind="run.failover_missed")
    assert "Missed:" in event.message
    run.refresh_from_db()
    # Reported missed, and the leg-failure policy decides what becomes of the placed legs.
    assert run.state == RunState.HALTED
    assert ExecutionEvent.objects.filter(kind="run.leg_failure_policy").exists()


def test_no_failover_while_the_owners_kill_switch_is_engaged():
    from execution.models import KillSwitch, KillSwitchScope

    run, (first, second) = _run((Broker.KITE, Broker.UPSTOX))
    _intent(run, first, "BUY", IntentState.REJECTED, "NIFTYA")
    _intent(run, second, "BUY", IntentState.ACKNOWLEDGED, "NIFTYA")
    KillSwitch.objects.create(scope=KillSwitchScope.USER, user=run.owner, engaged=True)
    assert run_failures_handle(run_id=run.pk) == []
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()


def test_an_outcome_settled_after_its_run_completed_moves_nothing():
    """Settled hours later (the owner confirms an order needing attention was never placed):
    a run already completed is neither failed over nor halted."""
    run, (first, _second) = _run((Broker.KITE, Broker.UPSTOX))
    _intent(run, first, "BUY", IntentState.REJECTED, "NIFTYA")
    ScheduledRun.objects.filter(pk=run.pk).update(state=RunState.COMPLETED)
    assert run_failures_handle(run_id=run.pk) == []
    run.refresh_from_db()
    assert run.state == RunState.COMPLETED
    assert not OrderIntent.objects.filter(failover_from__isnull=False).exists()


def test_an_unknown_settled_as_placed_decides_only_runs_with_a_failure(
    monkeypatch, django_capture_on_commit_callbacks
):
    """The lots held back for an unknown hedge are decided once it is found placed; a run
    with nothing failed starts no task on the execution queue."""
    from execution import enqueue
    from execution.orders.lifecycle import intent_transition

    started = []
    monkeypatch.setattr(
        enqueue, "task_enqueue", lambda name, **options: started.append(options["args"][0])
    )
    clean, (first, _second) = _run((Broker.KITE, Broker.UPSTOX))
    found = _intent(clean, first, "BUY", IntentState.UNKNOWN, "NIFTYA")
    held, (other, _) = _run((Broker.KITE, Broker.UPSTOX))
    hedge = _intent(held, other, "BUY", IntentState.UNKNOWN, "NIFTYA")
    _intent(held, other, "SELL", IntentState.ABANDONED, "NIFTYB")  # held back for the hedge
    with django_capture_on_commit_callbacks(execute=True):
        intent_transition(intent=found, to=IntentState.ACKNOWLEDGED)
        intent_transition(intent=hedge, to=IntentState.ACKNOWLEDGED)
    assert started == [held.pk]
