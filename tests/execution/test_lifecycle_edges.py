"""Order lifecycle where the broker or the owner does something unusual: lookups that fail,
rejections in the broker's words, a closed exchange at a dead sender's orphan, a failing email,
someone else's order, a postback for an order that is not ours. Each order is never sent
twice and ends in a state that says what happened."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.base import BrokerError, BrokerOrder, OrderAck, OrderStatus, Side
from brokers.kite.postback import PostbackRefusedError
from execution.models import ExecutionEvent, IntentState, Position
from execution.orders.lifecycle import (
    TransitionError,
    fill_apply,
    intent_attention_dismiss,
    intent_poll,
    kite_postback_apply,
    open_orders_reconcile,
)
from execution.send import sender
from tests.execution.engine_factories import IntentFactory
from tests.trader.factories import ProfileFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("calendar_loaded_today", "session_open"),
]


def _order(intent, *, status, filled=0, price=None, message="") -> BrokerOrder:
    return BrokerOrder(
        broker_order_id="B7",
        tag=intent.tag,
        tradingsymbol=intent.tradingsymbol,
        side=Side(intent.side),
        quantity=intent.quantity,
        filled_quantity=filled,
        average_price=None if price is None else Decimal(price),
        status=status,
        status_message=message,
    )


class _Broker:
    """A broker whose lookups fail (`fails`) or answer `found`; records every write."""

    def __init__(self, *, found=None, fails=False) -> None:
        self.found = found
        self.fails = fails
        self.placed: list[str] = []
        self.looked_up = 0

    def _answer(self):
        self.looked_up += 1
        if self.fails:
            raise BrokerError("the order book did not answer")
        return self.found

    def find_order_by_tag(self, tag):
        return self._answer()

    def order_status(self, broker_order_id):
        return self._answer()

    def place_order(self, request):
        self.placed.append(request.tag)
        raise AssertionError("nothing may be sent in these tests")


class _Accepting(_Broker):
    """A broker that takes every order it is sent."""

    def place_order(self, request):
        self.placed.append(request.tag)
        return OrderAck(broker_order_id="N1", received_at=timezone.now())


def _orphan(owner: str = "deadhost:9:abc", **fields):
    """An unsent intent past its T whose sender (`owner`) is dead."""
    intent = IntentFactory(intended_at=timezone.now() - datetime.timedelta(seconds=10), **fields)
    sender.claims_take([intent.tag], owner=owner)
    return intent


@pytest.mark.parametrize(
    ("message", "error"), [("Insufficient margin", "Insufficient margin"), ("", None)]
)
def test_a_rejection_in_the_book_is_recorded_in_the_brokers_words(message, error):
    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="B7")
    fill_apply(intent=intent, order=_order(intent, status=OrderStatus.REJECTED, message=message))
    intent.refresh_from_db()
    assert intent.state == IntentState.REJECTED
    assert intent.error == (error or "Rejected by the broker.")
    assert not Position.objects.filter(run_id=intent.run_id).exists()


def test_an_unknown_order_found_open_takes_the_brokers_order_id():
    intent = IntentFactory(state=IntentState.UNKNOWN, broker_order_id="")
    fill_apply(intent=intent, order=_order(intent, status=OrderStatus.OPEN))
    intent.refresh_from_db()
    assert intent.state == IntentState.ACKNOWLEDGED and intent.broker_order_id == "B7"


def test_a_failed_poll_changes_nothing_and_sends_nothing():
    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="B7")
    broker = _Broker(fails=True)
    assert intent_poll(intent=intent, adapter=broker) is intent
    intent.refresh_from_db()
    assert intent.state == IntentState.ACKNOWLEDGED and broker.looked_up == 1
    assert broker.placed == []


def test_an_orphan_marked_by_its_dead_sender_whose_lookup_fails_becomes_unknown(monkeypatch):
    intent = _orphan()
    sender.wire_marks_set([intent.tag], owner="deadhost:9:abc")
    broker = _Broker(fails=True)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile()
    assert counts["unknown"] == 1 and counts["sent"] == 0
    intent.refresh_from_db()
    # Maybe written: never sent again, looked up until it settles.
    assert intent.state == IntentState.UNKNOWN and broker.placed == []


def test_an_unmarked_orphan_whose_lookup_fails_is_left_for_the_next_pass(monkeypatch):
    intent = _orphan()
    broker = _Broker(fails=True)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile()
    assert counts["skipped"] == 1 and counts["sent"] == 0
    intent.refresh_from_db()
    assert intent.state == IntentState.INTENT and broker.placed == []
    assert sender.claim_owner(intent.tag) is None  # handed back: any worker looks again


def test_an_orphan_found_after_the_close_is_not_written_but_closed_in_words(monkeypatch):
    intent = _orphan(purpose="exit")
    broker = _Broker(found=None)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    monkeypatch.setattr(
        "execution.reference.calendar.closed_reason",
        lambda moment, exchange="NSE": "outside the session window 09:15-15:30 IST",
    )
    counts = open_orders_reconcile()
    assert counts["sent"] == 1  # resolved by this pass, though not written
    intent.refresh_from_db()
    assert broker.placed == []
    assert intent.state == IntentState.ABANDONED
    assert intent.error.startswith(sender.NOT_IN_SESSION)
    assert sender.wire_marked([intent.tag]) == set()


@pytest.mark.parametrize(
    ("state", "after"),
    [(IntentState.ACKNOWLEDGED, IntentState.ACKNOWLEDGED), (IntentState.UNKNOWN, None)],
)
def test_polls_that_keep_failing_move_only_an_unknown_order_towards_attention(
    monkeypatch, settings, state, after
):
    settings.EXECUTION_UNKNOWN_SETTLE_SECONDS = 30
    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    intent = IntentFactory(
        state=state,
        broker_order_id="B7" if state == IntentState.ACKNOWLEDGED else "",
        intended_at=long_ago,
        sent_at=long_ago,
        unknown_since=long_ago if state == IntentState.UNKNOWN else None,
    )
    broker = _Broker(fails=True)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    assert open_orders_reconcile()["polled"] == 1
    intent.refresh_from_db()
    assert intent.state == (after or IntentState.NEEDS_ATTENTION)
    assert broker.placed == []


def test_attention_is_raised_even_when_the_email_cannot_be_sent(monkeypatch, settings, caplog):
    settings.EXECUTION_UNKNOWN_SETTLE_SECONDS = 30

    def broken_mail(**kwargs):
        raise OSError("mail server down")

    monkeypatch.setattr("django.core.mail.send_mail", broken_mail)
    long_ago = timezone.now() - datetime.timedelta(minutes=5)
    intent = IntentFactory(state=IntentState.UNKNOWN, sent_at=long_ago, unknown_since=long_ago)
    intent_poll(intent=intent, adapter=_Broker(found=None))
    intent.refresh_from_db()
    assert intent.state == IntentState.NEEDS_ATTENTION
    assert ExecutionEvent.objects.filter(intent_id=intent.pk, kind="order.needs_attention")
    assert "could not email the owner" in caplog.text


def test_only_the_owner_can_settle_an_order_that_needs_attention():
    intent = IntentFactory(state=IntentState.NEEDS_ATTENTION)
    with pytest.raises(TransitionError, match="owner"):
        intent_attention_dismiss(intent=intent, user=ProfileFactory().user)
    intent.refresh_from_db()
    assert intent.state == IntentState.NEEDS_ATTENTION
    settled = intent_attention_dismiss(intent=intent, user=intent.run.owner)
    assert settled.state != IntentState.NEEDS_ATTENTION


@pytest.mark.parametrize("order_id", ["999999999", ""])
def test_a_postback_for_no_order_of_ours_is_refused(order_id):
    IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="220303000308999")
    with pytest.raises(PostbackRefusedError, match="No order of ours"):
        kite_postback_apply(payload={"order_id": order_id, "status": "COMPLETE"})


# --- the trade book ----------------------------------------------------------------------------
def _trade(trade_id: str, *, quantity: int, price: str, second: int):
    from brokers.trades import Trade

    return Trade(
        trade_id=trade_id,
        broker_order_id="B7",
        tradingsymbol="NIFTY26N2424000CE",
        side=Side.BUY,
        quantity=quantity,
        price=Decimal(price),
        filled_at=timezone.now().replace(microsecond=0) + datetime.timedelta(seconds=second),
    )


def test_a_trade_id_already_counted_is_never_counted_again_under_another_figure():
    from execution.models import Fill
    from execution.orders.fills import trades_apply

    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="B7", quantity=150)
    trades_apply(intent=intent, trades=[_trade("T2", quantity=75, price="100", second=2)])
    # The book later lists a trade before it: T2 would now be the cumulative 150th unit.
    intent = trades_apply(
        intent=intent,
        trades=[
            _trade("T1", quantity=75, price="101", second=1),
            _trade("T2", quantity=75, price="100", second=2),
        ],
    )
    assert intent.filled_quantity == 75 and intent.state == IntentState.PARTIALLY_FILLED
    assert list(Fill.objects.filter(intent=intent).values_list("trade_id", "quantity")) == [
        ("T2", 75)
    ]
    assert Position.objects.get(run_id=intent.run_id).net_quantity == 75


def test_a_trade_book_that_cannot_be_read_changes_nothing():
    from execution.orders.fills import trade_book_reconcile

    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="B7")

    class Down:
        def trade_book(self):
            raise BrokerError("trade book unavailable")

    assert trade_book_reconcile(account_id=intent.account_id, adapter=Down()) == {
        "trades": 0,
        "orders": 0,
        "foreign": 0,
    }
    intent.refresh_from_db()
    assert intent.state == IntentState.ACKNOWLEDGED and intent.filled_quantity == 0


@pytest.mark.parametrize(("late_by", "sent"), [(4, True), (600, False)])
def test_an_orphan_entry_is_judged_late_on_the_clock_the_reconciler_is_given(
    monkeypatch, settings, late_by, sent
):
    """A simulated session reconciles at its own time: an entry its minute missed by ten
    simulated minutes is missed, whatever the wall clock says (before, a day simulated ahead
    of today sent it as if on time, and one simulated in the past missed it by hours)."""
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 5
    t = timezone.now() + datetime.timedelta(days=3)  # a session ahead of the wall clock
    intent = IntentFactory(intended_at=t, purpose="entry")
    sender.claims_take([intent.tag], owner="deadhost:7:abc")
    broker = _Accepting(found=None)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile(now=t + datetime.timedelta(seconds=late_by))
    assert counts["sent"] == 1
    intent.refresh_from_db()
    if sent:
        assert broker.placed == [intent.tag] and intent.state == IntentState.ACKNOWLEDGED
        return
    assert broker.placed == []
    assert intent.state == IntentState.ABANDONED
    assert intent.error.startswith("Missed: 600.")
