"""The orders a worker leaves when it dies after T: its hedges are looked up (they may be on
the wire), its shorts go only behind placed hedges, and a surviving worker finishes them
right after T instead of waiting for the dead worker's restart."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from brokers.base import BrokerOrder, OrderAck, OrderStatus, Side
from execution.models import ExecutionEvent, IntentState, OrderIntent
from execution.orders.lifecycle import boundary_orphans_take_over, open_orders_reconcile
from execution.send import sender
from tests.execution.engine_factories import IntentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]

DEAD = "deadhost:1:killed"
HEDGE_WORDS = "a hedge leg of this strategy was not placed first"


class _Broker:
    """Places anything; its book holds the tags in `book`."""

    def __init__(self, book: tuple[str, ...] = ()):
        self.book = set(book)
        self.placed: list[str] = []
        self.looked: list[str] = []

    def find_order_by_tag(self, tag):
        self.looked.append(tag)
        if tag not in self.book:
            return None
        return BrokerOrder(
            broker_order_id=f"B-{tag}",
            tag=tag,
            tradingsymbol="NIFTY26N2424000CE",
            side=Side.BUY,
            quantity=75,
            filled_quantity=0,
            average_price=None,
            status=OrderStatus.OPEN,
        )

    def order_status(self, broker_order_id):
        return None

    def place_order(self, request):
        self.placed.append(request.tag)
        self.book.add(request.tag)
        return OrderAck(broker_order_id=f"N-{request.tag}", received_at=timezone.now())


def _left_by_a_dead_worker(fire_at, *, hedge_marked: bool = True):
    """One run's hedge (BUY, phase 0) and short (SELL, phase 1, waits for the hedge) on one
    account, claimed by a worker that died at T: it had marked the hedge "about to write"
    (armed for T) and had not reached the short (it waits for the hedge's answer)."""
    hedge = IntentFactory(intended_at=fire_at, side="BUY", phase=0)
    short = IntentFactory(
        intended_at=fire_at,
        run=hedge.run,
        account=hedge.account,
        side="SELL",
        phase=1,
        waits_for_hedges=True,
    )
    sender.claims_take([hedge.tag, short.tag], owner=DEAD)
    if hedge_marked:
        assert sender.wire_marks_set([hedge.tag], owner=DEAD) == {hedge.tag}
    return hedge, short


def test_a_dead_workers_short_is_held_back_when_its_hedge_may_not_exist(monkeypatch, settings):
    """The hedge was marked but is not in the broker's book (the worker died before writing
    it, or its answer is lost): it is unknown, looked up again, never resent; the short,
    provably never written, must not go out without it (it did, before: a naked short). It
    is reported to its owner as not sent."""
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    hedge, short = _left_by_a_dead_worker(timezone.now() - datetime.timedelta(seconds=10))
    broker = _Broker()
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile()
    assert broker.placed == []
    hedge.refresh_from_db()
    short.refresh_from_db()
    assert hedge.state == IntentState.UNKNOWN
    assert short.state == IntentState.ABANDONED and HEDGE_WORDS in short.error
    assert ExecutionEvent.objects.filter(intent_id=short.pk, user_id=short.run.owner_id).exists()
    assert counts["unknown"] == 1 and counts["held"] == 1 and counts["sent"] == 0


def test_a_dead_workers_short_goes_once_behind_its_hedge_found_at_the_broker(monkeypatch, settings):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    hedge, short = _left_by_a_dead_worker(timezone.now() - datetime.timedelta(seconds=10))
    broker = _Broker(book=(hedge.tag,))  # the hedge reached the wire before the kill
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    open_orders_reconcile()
    assert broker.placed == [short.tag]  # the hedge is never written again
    states = dict(OrderIntent.objects.values_list("tag", "state"))
    assert states == {hedge.tag: IntentState.ACKNOWLEDGED, short.tag: IntentState.ACKNOWLEDGED}
    open_orders_reconcile()
    assert broker.placed == [short.tag]


def test_a_short_waits_while_its_hedge_is_still_another_live_senders(monkeypatch, settings):
    """The hedge is held by a live worker (not yet recorded): the dead worker's short is
    neither sent nor dropped; its claim is handed back for a later pass to decide."""
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    hedge, short = _left_by_a_dead_worker(timezone.now() - datetime.timedelta(seconds=10))
    sender.engine_redis().delete(sender.claim_key(hedge.tag))
    sender.claims_take([hedge.tag], owner="livehost:2:alive")
    sender.engine_redis().set(sender.alive_key("livehost:2:alive"), "1", ex=30)
    broker = _Broker()
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile()
    assert broker.placed == [] and counts["waiting"] >= 1
    assert OrderIntent.objects.get(pk=short.pk).state == IntentState.INTENT
    assert sender.claim_owner(short.tag) is None


def test_a_survivor_takes_over_a_dead_workers_boundary_at_once_and_leaves_the_live_ones(
    monkeypatch,
):
    """Right after T (before any restart, within the lateness cap): the dead worker's orders
    and the orders nobody claimed (a task the dead worker had fetched) are finished; a live
    worker's are left to it. An order nobody marked is sent on that proof alone; a marked one
    is only looked up."""
    fire_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=2)
    hedge, short = _left_by_a_dead_worker(fire_at)
    unclaimed = IntentFactory(intended_at=fire_at, side="BUY")
    live = IntentFactory(intended_at=fire_at, side="BUY")
    sender.claims_take([live.tag], owner="livehost:2:alive")
    sender.engine_redis().set(sender.alive_key("livehost:2:alive"), "1", ex=30)
    later = IntentFactory(intended_at=fire_at + datetime.timedelta(minutes=5))
    broker = _Broker(book=(hedge.tag,))
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = boundary_orphans_take_over(fire_at=fire_at)
    assert sorted(broker.placed) == sorted([short.tag, unclaimed.tag])
    assert broker.looked == [hedge.tag]  # the marked hedge only
    assert counts["taken"] == 3 and counts["unsent"] == 4 and counts["skipped"] == 1
    states = dict(OrderIntent.objects.values_list("tag", "state"))
    assert states[live.tag] == states[later.tag] == IntentState.INTENT
    assert {states[t] for t in (hedge.tag, short.tag, unclaimed.tag)} == {IntentState.ACKNOWLEDGED}
    assert sender.claim_owner(live.tag) == "livehost:2:alive"


def test_the_take_over_watch_of_a_boundary_starts_once_per_process(monkeypatch):
    from execution.orders import sending

    started = []

    class Thread:
        def __init__(self, *, target, args, name, daemon):
            self.call = (target, args, daemon)

        def start(self):
            started.append(self.call)

    monkeypatch.setattr(sending.threading, "Thread", Thread)
    monkeypatch.setattr(sending, "_watched", set())
    moment = timezone.now().timestamp() + 30
    assert sending.takeover_watch_start(moment) is True
    assert sending.takeover_watch_start(moment) is False
    assert started == [(sending.takeover_watch, (moment,), True)]


def test_an_account_task_never_writes_what_the_reconciler_of_its_own_process_took():
    """The duplicate seen under load (dispatch published after T): the take-over watch claimed
    the orders nobody had claimed yet, then the late account task of the same process claimed
    them too, the claim naming the process for both, and both wrote them. The reconciler
    claims under a name of its own; the process stays alive for the others either way."""
    intent = IntentFactory()
    sender.heartbeat_start()
    assert sender.claims_take_over({intent.tag: None}, owner=sender.RECONCILER_ID) == {intent.tag}
    assert sender.claims_take([intent.tag]) == set()
    assert sender.wire_marks_set([intent.tag]) == set()  # the sender may not write it
    assert sender.wire_marks_set([intent.tag], owner=sender.RECONCILER_ID) == {intent.tag}
    assert sender.worker_alive(sender.RECONCILER_ID)
    assert sender.worker_alive(sender.claim_owner(intent.tag))


def test_orders_nobody_claimed_yet_stay_the_hot_paths_while_every_claimant_lives(monkeypatch):
    """Published late on a busy machine, a boundary's account tasks may claim after T + 1 s:
    with no dead claimant in sight the watch leaves unclaimed orders to them (the hot path
    writes faster), until ORPHAN_AFTER."""
    fire_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=1)
    unclaimed = IntentFactory(intended_at=fire_at)
    broker = _Broker()
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = boundary_orphans_take_over(fire_at=fire_at)
    assert counts["taken"] == 0 and broker.placed == []
    assert sender.claim_owner(unclaimed.tag) is None


def test_while_live_senders_hold_a_boundary_the_watch_reads_tags_only(
    monkeypatch, django_assert_max_num_queries
):
    """The watch runs in every worker each half second from T + 1 s while the boundary is
    still being sent and its outcomes are not yet written (10,000 orders at once): with every
    order held by a live sender it reads tags and claims, never whole orders (loading 10,000
    of them in each worker took the CPU the sends needed)."""
    fire_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=1)
    held = [IntentFactory(intended_at=fire_at, side="BUY") for _ in range(30)]
    sender.claims_take([i.tag for i in held], owner="livehost:2:alive")
    sender.engine_redis().set(sender.alive_key("livehost:2:alive"), "1", ex=30)
    broker = _Broker()
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    loaded = []
    real_select_related = OrderIntent.objects.select_related
    monkeypatch.setattr(
        OrderIntent.objects,
        "select_related",
        lambda *a: loaded.append(a) or real_select_related(*a),
        raising=False,
    )
    with django_assert_max_num_queries(1):
        counts = boundary_orphans_take_over(fire_at=fire_at)
    assert counts["unsent"] == 30 and counts["skipped"] == 30 and counts["taken"] == 0
    assert loaded == [] and broker.placed == []
    # One of them turns out to be a dead worker's: only it is loaded and finished.
    sender.claims_take_over({held[0].tag: "livehost:2:alive"}, owner=DEAD)
    counts = boundary_orphans_take_over(fire_at=fire_at)
    assert counts["taken"] == 1 and counts["skipped"] == 29
    assert broker.placed == [held[0].tag]
    assert loaded  # now whole orders are read
