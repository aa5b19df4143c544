"""Order lifecycle on the paper broker: sent → acknowledged → filled, positions, exits,
state transitions, tag lookup of unknown outcomes, startup reconciliation."""

from __future__ import annotations

import datetime
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.base import BrokerOrder, OrderStatus, Side
from brokers.models import Broker
from brokers.registry import get_adapter
from brokers.services import paper_account_log_in
from execution.dispatch import boundary_dispatch
from execution.models import (
    ExecutionEvent,
    Fill,
    IntentState,
    OrderIntent,
    Position,
    ScheduledRun,
)
from execution.models.engine import INTENT_TRANSITIONS
from execution.orders.lifecycle import (
    TransitionError,
    fill_apply,
    intent_poll,
    intent_transition,
    open_orders_reconcile,
)
from execution.send import sender
from execution.tasks import account_send_task
from tests.brokers.factories import PaperBookFactory
from tests.execution.engine_factories import IntentFactory, strategy_with_accounts
from trader.models import BrokerAllocation

# These trade contracts of today's date: today's holiday year is loaded, as on a live platform.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("calendar_loaded_today", "session_open"),
]


@pytest.fixture
def paper_strategy():
    book = PaperBookFactory()
    account = paper_account_log_in(account=book.account, actor=book.account.owner)
    strategy, version, _ = strategy_with_accounts(brokers=(), owner=account.owner)
    BrokerAllocation.objects.create(
        strategy=strategy, broker_account=account, multiplier=Decimal("1"), priority=1
    )
    return strategy, version, account


def _test_run(strategy, version, account, *, fire_at):
    return ScheduledRun.objects.create(
        session_date=fire_at.date(),
        boundary="entry",
        fire_at=fire_at,
        strategy_version=version,
        owner=strategy.owner,
        source="paper_test",
        source_ref=str(fire_at.timestamp()),
        is_test=True,
        allocations=[{"account_id": account.pk, "broker": Broker.PAPER, "priority": 1}],
    )


@pytest.mark.django_db(
    transaction=True, serialized_rollback=True
)  # the legs are sent from threads (own connections)
def test_paper_run_is_sent_acknowledged_and_its_fills_booked_at_once(paper_strategy):
    strategy, version, account = paper_strategy
    fire_at = (timezone.now() + datetime.timedelta(seconds=1)).replace(microsecond=0)
    run = _test_run(strategy, version, account, fire_at=fire_at)
    result = boundary_dispatch(fire_at=fire_at, wait=False, start_sends=False)
    assert result.intents == 4 and not result.skipped
    sender.ADAPTERS.clear()
    summary = account_send_task(result.batches[0].to_json())
    assert summary["sent"] == 4
    # The paper broker's fills reach the engine with the outcomes, not on the 15 s
    # reconciliation: no poll has run, yet every order is filled and booked.
    intents = list(OrderIntent.objects.filter(run=run).order_by("phase", "id"))
    assert [i.state for i in intents] == [IntentState.FILLED] * 4, intents[0].error
    for intent in intents:
        assert intent.sent_at >= fire_at and intent.acked_at >= intent.sent_at
        assert intent.broker_order_id
    assert max(i.sent_at for i in intents if i.side == "BUY") <= min(
        i.sent_at for i in intents if i.side == "SELL"
    )
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="order.acknowledged").count() == 4
    adapter = get_adapter(account)
    for intent in intents:  # a later poll changes nothing (fills are keyed by quantity)
        intent_poll(intent=intent, adapter=adapter)
    intents = list(OrderIntent.objects.filter(run=run))
    assert {i.state for i in intents} == {IntentState.FILLED}
    positions = {p.tradingsymbol: p.net_quantity for p in Position.objects.filter(run=run)}
    assert sorted(positions.values()) == sorted(
        (i.quantity if i.side == "BUY" else -i.quantity) for i in intents
    )
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="order.filled").count() == 4


def _order(intent, *, filled: int, price: str, status=OrderStatus.PARTIALLY_FILLED):
    return BrokerOrder(
        broker_order_id="B1",
        tag=intent.tag,
        tradingsymbol=intent.tradingsymbol,
        side=Side(intent.side),
        quantity=intent.quantity,
        filled_quantity=filled,
        average_price=Decimal(price),
        status=status,
    )


def test_fills_count_once_even_when_the_same_update_arrives_twice():
    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, quantity=150, broker_order_id="B1")
    fill_apply(intent=intent, order=_order(intent, filled=75, price="100"))
    fill_apply(intent=intent, order=_order(intent, filled=75, price="100"), source="postback")
    intent.refresh_from_db()
    assert intent.state == IntentState.PARTIALLY_FILLED and intent.filled_quantity == 75
    fill_apply(
        intent=intent, order=_order(intent, filled=150, price="101", status=OrderStatus.FILLED)
    )
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED
    assert [(f.quantity, f.price) for f in Fill.objects.order_by("id")] == [
        (75, Decimal("100.00")),
        (75, Decimal("102.00")),
    ]
    position = Position.objects.get()
    assert position.net_quantity == 150 and position.buy_value == Decimal("15150.00")


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        (IntentState.INTENT, IntentState.SENT, True),
        (IntentState.SENT, IntentState.ACKNOWLEDGED, True),
        (IntentState.SENT, IntentState.UNKNOWN, True),
        (IntentState.UNKNOWN, IntentState.ACKNOWLEDGED, True),
        (IntentState.ACKNOWLEDGED, IntentState.PARTIALLY_FILLED, True),
        (IntentState.PARTIALLY_FILLED, IntentState.FILLED, True),
        (IntentState.ACKNOWLEDGED, IntentState.REJECTED, True),
        (IntentState.ACKNOWLEDGED, IntentState.CANCELLED, True),
        (IntentState.REJECTED, IntentState.FAILED_OVER, True),
        (IntentState.FILLED, IntentState.CANCELLED, False),
        (IntentState.CANCELLED, IntentState.ACKNOWLEDGED, False),
        (IntentState.SENT, IntentState.INTENT, False),
        (IntentState.ACKNOWLEDGED, IntentState.INTENT, False),
        (IntentState.UNKNOWN, IntentState.INTENT, False),
        (IntentState.UNKNOWN, IntentState.NEEDS_ATTENTION, True),
        (IntentState.NEEDS_ATTENTION, IntentState.INTENT, False),
        (IntentState.NEEDS_ATTENTION, IntentState.FILLED, True),
        (IntentState.NEEDS_ATTENTION, IntentState.ABANDONED, True),
    ],
)
def test_state_transitions(start, to, allowed):
    intent = IntentFactory(state=start)
    if allowed:
        intent_transition(intent=intent, to=to)
        intent.refresh_from_db()
        assert intent.state == to
        assert ExecutionEvent.objects.filter(intent_id=intent.pk, kind=f"order.{to}").exists()
    else:
        with pytest.raises(TransitionError):
            intent_transition(intent=intent, to=to)
        intent.refresh_from_db()
        assert intent.state == start


def test_a_stale_transition_loses_to_the_first_one():
    intent = IntentFactory(state=IntentState.SENT)
    stale = OrderIntent.objects.get(pk=intent.pk)
    intent_transition(intent=intent, to=IntentState.ACKNOWLEDGED)
    with pytest.raises(TransitionError):
        intent_transition(intent=stale, to=IntentState.REJECTED)
    assert OrderIntent.objects.get(pk=intent.pk).state == IntentState.ACKNOWLEDGED


class _Broker:
    """Just the lookups the reconciler makes; records every place_order."""

    def __init__(self, found=None):
        self.found = found
        self.placed = []

    def find_order_by_tag(self, tag):
        return self.found

    def order_status(self, broker_order_id):
        return self.found

    def place_order(self, request):
        self.placed.append(request)
        from brokers.base import OrderAck

        return OrderAck(broker_order_id="NEW1", received_at=timezone.now())


def test_unknown_outcome_is_resolved_by_tag_lookup_never_by_sending_again():
    intent = IntentFactory(state=IntentState.UNKNOWN, sent_at=timezone.now())
    broker = _Broker(found=_order(intent, filled=75, price="99", status=OrderStatus.FILLED))
    intent_poll(intent=intent, adapter=broker)
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED and intent.broker_order_id == "B1"
    assert broker.placed == []


@pytest.mark.parametrize(
    ("age", "state"), [(29, IntentState.UNKNOWN), (31, IntentState.NEEDS_ATTENTION)]
)
def test_unknown_outcome_absent_in_the_book_needs_attention_past_the_settle_time(
    settings, mailoutbox, age, state
):
    settings.EXECUTION_UNKNOWN_SETTLE_SECONDS = 30
    sent = timezone.now() - datetime.timedelta(seconds=age)
    intent = IntentFactory(state=IntentState.UNKNOWN, sent_at=sent, unknown_since=sent)
    broker = _Broker(found=None)
    intent_poll(intent=intent, adapter=broker)
    intent.refresh_from_db()
    assert intent.state == state and broker.placed == []
    if state == IntentState.UNKNOWN:
        assert mailoutbox == []
        return
    assert ExecutionEvent.objects.filter(intent_id=intent.pk, kind="order.needs_attention")
    (mail,) = mailoutbox
    assert mail.to == [intent.run.owner.email] and intent.tag in mail.subject
    # Found later in the book, it settles like any unknown order (never sent again).
    broker.found = _order(intent, filled=75, price="99", status=OrderStatus.FILLED)
    intent_poll(intent=intent, adapter=broker)
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED and broker.placed == []


@pytest.mark.parametrize("start", [IntentState.UNKNOWN, IntentState.NEEDS_ATTENTION])
@pytest.mark.parametrize("back_to", [IntentState.INTENT, IntentState.SENT])
def test_the_database_refuses_an_unknown_order_becoming_unsent(start, back_to):
    from django.db import IntegrityError, transaction

    intent = IntentFactory(state=start)
    with pytest.raises((IntegrityError, Exception)) as caught, transaction.atomic():
        OrderIntent.objects.filter(pk=intent.pk).update(state=back_to)
    assert "cannot become unsent" in str(caught.value)
    assert back_to not in INTENT_TRANSITIONS[start]
    intent.refresh_from_db()
    assert intent.state == start


def test_startup_reconciliation_finds_orders_of_a_dead_worker_by_tag(monkeypatch, settings):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    past = timezone.now() - datetime.timedelta(seconds=10)
    found_intent = IntentFactory(intended_at=past)
    absent_intent = IntentFactory(intended_at=past)
    dead = "deadhost:1:abc"
    sender.claims_take([found_intent.tag, absent_intent.tag], owner=dead)
    brokers = {
        found_intent.account_id: _Broker(
            found=_order(found_intent, filled=0, price="0", status=OrderStatus.OPEN)
        ),
        absent_intent.account_id: _Broker(found=None),
    }
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: brokers[account.pk])
    counts = open_orders_reconcile()
    assert counts["found"] == 1 and counts["sent"] == 1
    found_intent.refresh_from_db()
    absent_intent.refresh_from_db()
    assert found_intent.state == IntentState.ACKNOWLEDGED
    assert brokers[found_intent.account_id].placed == []
    assert absent_intent.state == IntentState.ACKNOWLEDGED
    assert [r.tag for r in brokers[absent_intent.account_id].placed] == [absent_intent.tag]
    # A second pass sends nothing again.
    assert open_orders_reconcile()["sent"] == 0


@pytest.mark.parametrize(("purpose", "sent"), [("entry", False), ("exit", True)])
def test_a_late_orphan_entry_is_missed_and_a_late_orphan_exit_still_goes(
    monkeypatch, settings, purpose, sent
):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 5
    intent = IntentFactory(
        intended_at=timezone.now() - datetime.timedelta(seconds=9), purpose=purpose
    )
    sender.claims_take([intent.tag], owner="deadhost:3:abc")
    broker = _Broker(found=None)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    open_orders_reconcile()
    intent.refresh_from_db()
    assert [r.tag for r in broker.placed] == ([intent.tag] if sent else [])
    if sent:
        assert intent.state == IntentState.ACKNOWLEDGED
        return
    assert intent.state == IntentState.ABANDONED and intent.error.startswith("Missed: 9.")
    assert sender.wire_marked([intent.tag]) == set()  # refused before the mark: never written
    assert ScheduledRun.objects.get(pk=intent.run_id).note.startswith("Orders not sent. Missed:")
    assert ExecutionEvent.objects.filter(intent_id=intent.pk, kind="order.abandoned").exists()


def test_an_orphan_its_dead_sender_marked_about_to_write_is_looked_up_never_resent(
    monkeypatch,
):
    intent = IntentFactory(intended_at=timezone.now() - datetime.timedelta(seconds=10))
    dead = "deadhost:2:abc"
    sender.claims_take([intent.tag], owner=dead)
    assert sender.wire_marks_set([intent.tag], owner=dead) == {intent.tag}
    broker = _Broker(found=None)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile()
    assert counts["unknown"] == 1 and counts["sent"] == 0
    intent.refresh_from_db()
    assert intent.state == IntentState.UNKNOWN and intent.unknown_since is not None
    assert broker.placed == []
    # Later passes look it up again; nothing is ever sent.
    open_orders_reconcile()
    assert broker.placed == []


def test_a_sender_that_lost_its_claim_cannot_mark_and_so_cannot_write():
    intent = IntentFactory()
    sender.claims_take([intent.tag], owner="otherhost:1:x")
    assert sender.wire_marks_set([intent.tag]) == set()
    assert sender.wire_marked([intent.tag]) == set()


def test_reconciliation_leaves_orders_claimed_by_a_live_worker_alone(monkeypatch):
    intent = IntentFactory(intended_at=timezone.now() - datetime.timedelta(seconds=10))
    sender.heartbeat_start()
    sender.claims_take([intent.tag])  # claimed by this (alive) process
    broker = _Broker(found=None)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    assert open_orders_reconcile()["skipped"] == 1
    assert broker.placed == []
    time.sleep(0)


def _postback(intent, *, filled, checksum=None, timestamp="2026-11-19 09:20:01"):
    import hashlib

    secret = intent.account.api_secret
    digest = hashlib.sha256((intent.broker_order_id + timestamp + secret).encode()).hexdigest()
    return {
        "order_id": intent.broker_order_id,
        "order_timestamp": timestamp,
        "checksum": checksum or digest,
        "status": "COMPLETE" if filled == intent.quantity else "OPEN",
        "tradingsymbol": intent.tradingsymbol,
        "transaction_type": intent.side,
        "quantity": intent.quantity,
        "filled_quantity": filled,
        "average_price": 101.5,
        "tag": intent.tag,
    }


def test_kite_postbacks_with_a_valid_checksum_fill_once(client):
    from django.urls import reverse

    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="220303000308932")
    url = reverse("execution:kite-postback")
    body = _postback(intent, filled=75)
    for _ in range(2):  # Kite may post the same update twice
        response = client.post(url, body, content_type="application/json")
        assert response.status_code == 200
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED and Fill.objects.count() == 1


def test_kite_postback_with_a_wrong_checksum_changes_nothing(client):
    from django.urls import reverse

    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="220303000308933")
    body = _postback(intent, filled=75, checksum="0" * 64)
    response = client.post(
        reverse("execution:kite-postback"), body, content_type="application/json"
    )
    assert response.status_code == 403
    intent.refresh_from_db()
    assert intent.state == IntentState.ACKNOWLEDGED and not Fill.objects.exists()
    assert ExecutionEvent.objects.filter(kind="postback.refused").exists()


def test_outcomes_and_transitions_lock_the_run_before_its_intents():
    """The order every writer of intents takes locks in (failover and the leg-failure policy
    lock the run first): intents first deadlocked against run_failures_task."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from execution.orders.lifecycle import outcomes_apply

    intent = IntentFactory(state=IntentState.INTENT)
    outcome = sender.Outcome(
        intent_id=intent.pk,
        run_id=intent.run_id,
        account_id=intent.account_id,
        tag=intent.tag,
        state="acknowledged",
        broker_order_id="B7",
    )
    with CaptureQueriesContext(connection) as ctx:
        outcomes_apply([outcome])
        intent.refresh_from_db()
        intent_transition(intent=intent, to=IntentState.CANCELLED)
    locks = [q["sql"] for q in ctx.captured_queries if "FOR " in q["sql"] or "UPDATE" in q["sql"]]
    run_lock = next(i for i, q in enumerate(locks) if "FOR NO KEY UPDATE" in q)
    intent_lock = next(i for i, q in enumerate(locks) if '"execution_orderintent"' in q)
    assert run_lock < intent_lock
    assert sum("FOR NO KEY UPDATE" in q for q in locks) == 2  # one per transaction
