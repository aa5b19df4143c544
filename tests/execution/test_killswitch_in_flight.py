"""The kill switch against orders already handed to a sender: stopped where provably never
written (abandoned, and no sender can write them any more); one a sender had marked "about to
write" goes out, and its fill is closed as it is booked, never left as a position the
platform does not close."""

from __future__ import annotations

import datetime
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.base import BrokerOrder, OrderStatus, Side
from execution import enqueue
from execution.intents import slots
from execution.models import (
    ExecutionEvent,
    IntentState,
    KillSwitch,
    KillSwitchScope,
    OrderIntent,
    Position,
    RunState,
)
from execution.orders.lifecycle import fill_apply
from execution.protection.killswitch import kill_switch_engage
from execution.send import sender
from tests.execution.engine_factories import IntentFactory, RunFactory
from tests.execution.test_engine_takeover import DEAD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]


def _handed_over(run, account, n, *, symbol="NIFTY26N2424000CE"):
    """`n` entry orders of `run` for a T 5 s away, already in a sender's batch."""
    fire_at = timezone.now() + datetime.timedelta(seconds=5)
    return [
        IntentFactory(
            run=run,
            account=account,
            side="BUY",
            phase=0,
            intended_at=fire_at,
            tradingsymbol=symbol.format(i=i),
        )
        for i in range(n)
    ]


def test_engage_stops_handed_over_orders_unless_a_sender_marked_them():
    """A run whose dispatch is under way (claimed, intents built with placeholder contracts
    before T - ε): a live sender holds two of its orders, one marked about to write; a dead
    worker marked a third; the fourth nobody took yet."""
    run = RunFactory(state=RunState.DISPATCHED)
    first = IntentFactory(run=run, intended_at=timezone.now() + datetime.timedelta(seconds=5))
    placeholder = f"{slots.PREFIX}5ca1ab:{{i}}:kite"
    held, marked, dead_marked, untaken = [
        first,
        *_handed_over(run, first.account, 3, symbol=placeholder),
    ]
    sender.heartbeat_start()  # this process's senders are alive
    assert sender.claims_take([held.tag, marked.tag]) == {held.tag, marked.tag}
    assert sender.wire_marks_set([marked.tag]) == {marked.tag}
    sender.claims_take([dead_marked.tag], owner=DEAD)
    assert sender.wire_marks_set([dead_marked.tag], owner=DEAD)

    kill_switch_engage(actor=run.owner, user=run.owner, send=False)

    states = dict(OrderIntent.objects.filter(run=run).values_list("tag", "state"))
    assert states[held.tag] == states[untaken.tag] == IntentState.ABANDONED
    # Maybe on the wire: its sender (or the lookup by tag) records what became of it.
    assert states[marked.tag] == states[dead_marked.tag] == IntentState.INTENT
    # The live sender can no longer begin to write what the switch stopped.
    assert sender.wire_marks_set([held.tag]) == set()
    assert sender.claims_take([untaken.tag]) == set()
    event = ExecutionEvent.objects.get(kind="killswitch.engaged")
    assert event.data["stopped"] == 2 and event.data["on_the_wire"] == 2


def _booked(intent, *, quantity, side):
    return fill_apply(
        intent=intent,
        order=BrokerOrder(
            broker_order_id=f"B-{intent.tag}",
            tag=intent.tag,
            tradingsymbol=intent.tradingsymbol,
            side=Side.BUY if side == "BUY" else Side.SELL,
            quantity=intent.quantity,
            filled_quantity=quantity,
            average_price=Decimal("101.25"),
            status=OrderStatus.FILLED,
        ),
    )


@pytest.mark.parametrize("scope", ["user", "global"])
def test_an_entry_filled_after_the_engage_is_closed_and_reported(
    scope, monkeypatch, django_capture_on_commit_callbacks
):
    run = RunFactory(state=RunState.DISPATCHED)
    hedge = IntentFactory(
        run=run, side="BUY", phase=0, state=IntentState.ACKNOWLEDGED, tradingsymbol="HEDGE"
    )
    short = IntentFactory(
        run=run,
        account=hedge.account,
        side="SELL",
        phase=1,
        state=IntentState.ACKNOWLEDGED,
        tradingsymbol="SHORT",
    )
    if scope == "user":
        KillSwitch.objects.create(scope=KillSwitchScope.USER, user=run.owner, engaged=True)
    else:
        KillSwitch.objects.create(scope=KillSwitchScope.GLOBAL, engaged=True)
    sent = []
    monkeypatch.setattr(enqueue, "account_sends_enqueue", lambda payloads: sent.extend(payloads))

    with django_capture_on_commit_callbacks(execute=True):
        _booked(short, quantity=75, side="SELL")
        _booked(hedge, quantity=75, side="BUY")

    closing = {c.tradingsymbol: c for c in OrderIntent.objects.filter(run=run, purpose="flatten")}
    assert (closing["SHORT"].side, closing["SHORT"].quantity, closing["SHORT"].phase) == (
        "BUY",
        75,
        0,
    )
    assert (closing["HEDGE"].side, closing["HEDGE"].quantity, closing["HEDGE"].phase) == (
        "SELL",
        75,
        1,
    )
    assert sorted(o["tag"] for p in sent for o in p["orders"]) == sorted(
        c.tag for c in closing.values()
    )
    assert all(p["fire_at"] is None for p in sent)
    assert ExecutionEvent.objects.filter(kind="killswitch.entry_closed").count() == 2
    # The same fill reported again (a postback after the poll) closes nothing more.
    _booked(short, quantity=75, side="SELL")
    assert OrderIntent.objects.filter(run=run, purpose="flatten").count() == 2


def test_fills_are_left_alone_without_an_engaged_switch():
    run = RunFactory(state=RunState.DISPATCHED)
    KillSwitch.objects.create(scope=KillSwitchScope.USER, user=run.owner, engaged=False)
    entry = IntentFactory(run=run, state=IntentState.ACKNOWLEDGED)
    _booked(entry, quantity=75, side="BUY")
    assert Position.objects.get(run=run).net_quantity == 75
    assert not OrderIntent.objects.filter(purpose="flatten").exists()


def test_a_marked_order_that_goes_out_after_the_engage_ends_flat(
    monkeypatch, django_capture_on_commit_callbacks
):
    """The whole path: handed over, marked, the switch engaged, the order written and
    acknowledged (outcomes_apply): its cancel is asked; it fills first: the position is
    closed, not left open."""
    from execution.intents.build import outgoing
    from execution.orders.lifecycle import outcomes_apply

    run = RunFactory(state=RunState.DISPATCHED)
    (order,) = _handed_over(run, IntentFactory(run=run, state=IntentState.FILLED).account, 1)
    sender.heartbeat_start()
    sender.claims_take([order.tag])
    assert sender.wire_marks_set([order.tag]) == {order.tag}
    kill_switch_engage(actor=run.owner, user=run.owner, send=False)
    order.refresh_from_db()
    assert order.state == IntentState.INTENT
    monkeypatch.setattr(enqueue, "account_sends_enqueue", lambda payloads: None)
    started = []
    monkeypatch.setattr(
        enqueue, "task_enqueue", lambda name, **options: started.append((name, options))
    )
    now = timezone.now().timestamp()
    with django_capture_on_commit_callbacks(execute=True):
        outcomes_apply(
            [
                sender.Outcome.of(
                    sender.OutgoingOrder(**outgoing(order)),
                    order.account_id,
                    state=IntentState.ACKNOWLEDGED,
                    sent_at=now,
                    acked_at=now,
                    broker_order_id="B-1",
                    attempts=1,
                )
            ]
        )
        order.refresh_from_db()
    # Acknowledged and resting: cancelled like the open orders at the engage.
    assert (enqueue.ORDERS_CANCEL, {"args": [[order.pk]]}) in started
    with django_capture_on_commit_callbacks(execute=True):
        _booked(order, quantity=75, side="BUY")  # it filled before the cancel
    (close,) = OrderIntent.objects.filter(run=run, purpose="flatten")
    assert (close.side, close.quantity) == ("SELL", 75)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_fill_booked_while_an_engage_commits_waits_for_it_and_is_closed():
    """The engage holds its switch row until it commits (its flatten read the positions
    before this fill was committed): the fill waits for the switch and sees it engaged,
    so the fill is closed by one of the two, never by neither."""
    import threading

    from django.db import connection, transaction

    run = RunFactory(state=RunState.DISPATCHED)
    entry = IntentFactory(run=run, state=IntentState.ACKNOWLEDGED)
    KillSwitch.objects.create(scope=KillSwitchScope.USER, user=run.owner, engaged=False)
    errors = []

    def book() -> None:
        try:
            _booked(entry, quantity=75, side="BUY")
        except Exception as exc:  # reported to the test below
            errors.append(exc)
        finally:
            connection.close()

    def lock_waiters() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")  # fresh inside the transaction
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])

    def poll(done, tries: int = 200) -> bool:
        # Sleeps, not timed waits: under libfaketime (make test-at) a thread's timed join
        # never times out, and the test would hold its transaction for ever.
        for _ in range(tries):
            if done():
                return True
            time.sleep(0.05)
        return done()

    booking = threading.Thread(target=book, daemon=True)
    with transaction.atomic():  # the engage, between its switch row and its commit
        switch = KillSwitch.objects.select_for_update().get(user=run.owner)
        switch.engaged = True
        switch.save()
        booking.start()
        # The fill waits for the engage: PostgreSQL shows its connection waiting on a lock.
        assert poll(lambda: lock_waiters() >= 1) and booking.is_alive()
    assert poll(lambda: not booking.is_alive()) and not errors
    (close,) = OrderIntent.objects.filter(run=run, purpose="flatten")
    assert (close.side, close.quantity) == ("SELL", 75)


def test_a_run_skipped_at_t_minus_epsilon_stops_its_handed_over_orders_unless_marked():
    """The dispatcher skips a run whose contract could not be resolved at T - ε, after its
    batches were handed over: the orders a sender holds are stopped before they are called
    not sent (one at another broker resolved apart, and its sender would have written it);
    one already marked "about to write" keeps its state for its sender's outcome."""
    from execution.dispatch import _failed_write

    run = RunFactory(state=RunState.DISPATCHED)
    fire_at = timezone.now().replace(microsecond=0) + datetime.timedelta(seconds=5)
    kite, upstox, marked = (
        IntentFactory(run=run, intended_at=fire_at, tradingsymbol=f"{slots.PREFIX}f41l:{i}:{b}")
        for i, b in ((0, "kite"), (0, "upstox"), (1, "upstox"))
    )
    sender.heartbeat_start()
    tags = [kite.tag, upstox.tag, marked.tag]
    assert sender.claims_take(tags) == set(tags)
    assert sender.wire_marks_set([marked.tag]) == {marked.tag}
    resolution = {
        kite.tradingsymbol: {"e": "No fresh price: not sent."},
        upstox.tradingsymbol: {"s": "NIFTY26D0824000CE", "t": "1", "r": None, "p": None},
        marked.tradingsymbol: {"s": "NIFTY26D0824200CE", "t": "2", "r": None, "p": None},
    }
    assert _failed_write(resolution, fire_at) == {run.pk: "No fresh price: not sent."}
    states = dict(OrderIntent.objects.filter(run=run).values_list("tag", "state"))
    assert states[kite.tag] == states[upstox.tag] == IntentState.ABANDONED
    assert states[marked.tag] == IntentState.INTENT
    assert sender.wire_marks_set([upstox.tag]) == set()  # its sender cannot write it now
    run.refresh_from_db()
    assert run.state == RunState.SKIPPED


def test_the_switch_engages_even_when_redis_cannot_stop_anything(monkeypatch):
    run = RunFactory(state=RunState.DISPATCHED)
    (order,) = _handed_over(run, IntentFactory(run=run, state=IntentState.FILLED).account, 1)

    def down(tags):
        raise ConnectionError("Redis is down")

    monkeypatch.setattr(sender, "unsent_stop_now", down)
    kill_switch_engage(actor=run.owner, user=run.owner, send=False)
    assert KillSwitch.objects.get(user=run.owner).engaged
    order.refresh_from_db()
    assert order.state == IntentState.INTENT  # not provably unwritten: never called not sent


def test_a_switch_engaged_while_the_dispatch_wrote_stops_its_entries_at_t_minus_epsilon():
    """The engage committed before the dispatch's intents did, so it could not see them: at
    T - ε the dispatcher stops them in Redis (unless marked "about to write") and calls only
    those stopped not sent; another owner's run and an exit of the same T go on."""
    from execution.dispatch import KILLED_WORDS, _killed_stop

    fire_at = timezone.now().replace(microsecond=0) + datetime.timedelta(seconds=5)
    killed, other = RunFactory(state=RunState.DISPATCHED), RunFactory(state=RunState.DISPATCHED)
    held, marked = (IntentFactory(run=killed, intended_at=fire_at) for _ in range(2))
    exit_order = IntentFactory(run=killed, intended_at=fire_at, purpose="exit", side="SELL")
    untouched = IntentFactory(run=other, intended_at=fire_at)
    tags = [held.tag, marked.tag, exit_order.tag, untouched.tag]
    sender.heartbeat_start()
    assert sender.claims_take(tags) == set(tags)
    assert sender.wire_marks_set([marked.tag]) == {marked.tag}
    assert _killed_stop(fire_at) == {}  # no switch engaged: one query, nothing stopped
    KillSwitch.objects.create(
        user=killed.owner, scope=KillSwitchScope.USER, engaged=True, engaged_at=timezone.now()
    )
    assert _killed_stop(fire_at) == {killed.pk: 1}
    states = dict(OrderIntent.objects.values_list("tag", "state"))
    assert states[held.tag] == IntentState.ABANDONED
    assert OrderIntent.objects.get(pk=held.pk).error == KILLED_WORDS
    assert states[marked.tag] == states[exit_order.tag] == states[untouched.tag] == "intent"
    assert sender.wire_marks_set([held.tag]) == set()  # its sender cannot write it now
    killed.refresh_from_db()
    other.refresh_from_db()
    assert killed.state == RunState.SKIPPED and other.state == RunState.DISPATCHED
    assert ExecutionEvent.objects.filter(
        kind="run.killed", run_id=killed.pk, user_id=killed.owner_id
    ).exists()
