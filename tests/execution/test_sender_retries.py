"""The sender's retry policy, its lookups by tag, the final "unknown" state and the
orders-per-second wait. A scripted adapter answers each attempt as a broker would (the
classification itself is tested per broker in tests/brokers/test_http_classification.py);
claims, marks and the orders-per-second budget are the real ones in Redis; the last tests
send to the Kite emulator."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from brokers.base import (
    AmbiguousError,
    BrokerOrder,
    InputRejectedError,
    OrderAck,
    OrderStatus,
    RateLimitedError,
    RetryableError,
    Side,
)
from brokers.ratelimit import order_rate_limiter
from brokers.registry import get_adapter
from execution.send import sender
from tests.brokers.contract.venues import broker_symbol

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]

_counter = iter(range(10**9))


def _order(**changes) -> sender.OutgoingOrder:
    """One order claimed by this process, as the account task would claim it."""
    tag = f"RT{next(_counter)}X{int(time.time() * 1000) % 10**9}"
    order = sender.OutgoingOrder(
        intent_id=1,
        run_id=1,
        tag=tag,
        phase=0,
        exchange="NFO",
        tradingsymbol="NIFTY26D0326000CE",
        instrument_token="",
        side="BUY",
        quantity=75,
        product="NRML",
        order_type="MARKET",
        price=None,
        algo_id="ALGO1",
    )
    order = dataclasses.replace(order, **changes)
    sender.claims_take([order.tag])
    return order


class ScriptedBroker:
    """Answers each place_order with the next item of `answers` (an exception is raised), and
    each lookup by tag with the next item of `lookups`."""

    def __init__(self, answers=(), lookups=()) -> None:
        self.answers = list(answers)
        self.lookups = list(lookups)
        self.placed: list[str] = []
        self.looked_up = 0

    def place_order(self, request):
        self.placed.append(request.tag)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def find_order_by_tag(self, tag):
        self.looked_up += 1
        found = self.lookups.pop(0) if self.lookups else None
        if isinstance(found, Exception):
            raise found
        return found


def _ack(order_id: str = "B1") -> OrderAck:
    return OrderAck(broker_order_id=order_id, received_at=datetime.now(UTC))


def _found(status: OrderStatus, message: str = "") -> BrokerOrder:
    return BrokerOrder(
        broker_order_id="B9",
        tag="x",
        tradingsymbol="NIFTY",
        side=Side.BUY,
        quantity=75,
        filled_quantity=0,
        average_price=None,
        status=status,
        status_message=message,
    )


@pytest.fixture(autouse=True)
def _no_pauses(monkeypatch):
    """Lookups and retries wait as the policy says, but the tests do not sit through pauses."""
    monkeypatch.setattr(sender, "LOOKUP_PAUSE", 0.0)
    waits: list[float] = []
    monkeypatch.setattr(sender, "retry_wait", lambda error: waits.append(error) or 0.0)
    return waits


@pytest.fixture
def slots(monkeypatch):
    """Every orders-per-second slot the sender takes for a single write (the real budget)."""
    taken: list[tuple[int, int]] = []
    real = sender.slot_take
    monkeypatch.setattr(sender, "slot_take", lambda a, n: taken.append((a, n)) or real(a, n))
    return taken


def _account() -> int:
    return 700_000 + next(_counter)  # a fresh orders-per-second window per test


def test_a_retryable_refusal_is_retried_each_time_with_a_slot_of_its_own(slots):
    broker = ScriptedBroker([RateLimitedError("429", retry_after=0.1), _ack("B7")])
    account = _account()
    outcome = sender.send_one(broker, _order(), account, ops_limit=10)
    assert (outcome.state, outcome.attempts, outcome.broker_order_id) == ("acknowledged", 2, "B7")
    assert outcome.error == "" and outcome.error_class == ""
    assert slots == [(account, 10), (account, 10)]  # the first write's and the retry's
    assert len(broker.placed) == 2 and broker.placed[0] == broker.placed[1]  # same tag


def test_retries_stop_at_the_maximum_and_the_order_is_reported_rejected(slots):
    broker = ScriptedBroker([RetryableError(f"busy {n}") for n in range(5)])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert outcome.state == "rejected" and outcome.attempts == sender.MAX_ATTEMPTS
    assert outcome.error == f"busy {sender.MAX_ATTEMPTS - 1}"
    assert outcome.error_class == "retryable"
    assert len(broker.placed) == sender.MAX_ATTEMPTS


def test_a_retry_after_longer_than_the_boundary_may_wait_is_not_waited_for(monkeypatch):
    monkeypatch.setattr(sender, "retry_wait", lambda error: error.retry_after)
    broker = ScriptedBroker([RateLimitedError("429", retry_after=sender.MAX_RETRY_WAIT + 5)])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.attempts) == ("rejected", 1)
    assert len(broker.placed) == 1


def test_a_permanent_refusal_is_never_retried():
    broker = ScriptedBroker([InputRejectedError("Insufficient funds"), _ack()])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.error_class, outcome.attempts) == ("rejected", "permanent", 1)
    assert outcome.error == "Insufficient funds" and broker.looked_up == 0


def test_an_ambiguous_send_is_looked_up_until_found_and_never_sent_again():
    broker = ScriptedBroker(
        [AmbiguousError("timeout")],
        lookups=[RetryableError("book busy"), None, _found(OrderStatus.OPEN)],
    )
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.broker_order_id) == ("acknowledged", "B9")
    assert outcome.error_class == "ambiguous" and outcome.acked_at is not None
    assert broker.looked_up == 3 and len(broker.placed) == 1


def test_an_ambiguous_send_the_broker_rejected_is_reported_rejected_in_its_words():
    broker = ScriptedBroker(
        [AmbiguousError("dropped")], lookups=[_found(OrderStatus.REJECTED, "RMS: margin")]
    )
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.error_class, outcome.error) == (
        "rejected",
        "permanent",
        "RMS: margin",
    )
    blank = ScriptedBroker([AmbiguousError("dropped")], lookups=[_found(OrderStatus.REJECTED)])
    outcome = sender.send_one(blank, _order(), _account(), ops_limit=10)
    assert outcome.error == "Rejected by the broker."


def test_an_order_not_found_after_every_look_is_left_unknown_for_the_reconciler():
    broker = ScriptedBroker([AmbiguousError("timeout")], lookups=[None, RetryableError("x")])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert outcome.state == "unknown" and outcome.broker_order_id == ""
    assert broker.looked_up == sender.LOOKUP_TRIES and len(broker.placed) == 1
    # Recorded as such: the reconciler finds it by tag later (execution.orders.lifecycle).
    assert outcome.to_json()["state"] == "unknown"


def test_no_slot_for_the_first_write_leaves_the_order_unsent_and_unrecorded(monkeypatch):
    monkeypatch.setattr(sender, "slot_take", lambda account, limit: False)
    broker = ScriptedBroker([_ack()])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.error_class, outcome.attempts) == ("intent", "retryable", 0)
    assert broker.placed == []


def test_no_slot_for_a_retry_reports_the_order_rejected(monkeypatch):
    answers = iter([True, False])
    monkeypatch.setattr(sender, "slot_take", lambda account, limit: next(answers))
    broker = ScriptedBroker([RetryableError("busy"), _ack()])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10)
    assert (outcome.state, outcome.attempts) == ("rejected", 1)
    assert "No orders-per-second slot" in outcome.error and len(broker.placed) == 1


def test_an_order_claimed_by_another_sender_is_not_written():
    order = _order()
    sender.claim_release(order.tag)
    sender.claims_take([order.tag], owner="another-worker:1")
    broker = ScriptedBroker([_ack()])
    outcome = sender.send_one(broker, order, _account(), ops_limit=10)
    assert (outcome.state, outcome.error_class) == ("intent", "not_ours")
    assert broker.placed == [] and sender.wire_marked([order.tag]) == set()
    sender.claim_release(order.tag, owner="another-worker:1")


def test_a_retry_after_the_close_is_refused_by_the_session_guard(monkeypatch):
    asked = []
    answers = iter(["", f"{sender.NOT_IN_SESSION} (NSE: closed at 15:30)."])
    monkeypatch.setattr(
        sender, "session_refusal", lambda order, at: asked.append(at) or next(answers)
    )
    broker = ScriptedBroker([RetryableError("busy"), _ack()])
    outcome = sender.send_one(broker, _order(), _account(), ops_limit=10, slot_taken=True)
    assert (outcome.state, outcome.error_class) == ("abandoned", "closed")
    assert sender.NOT_IN_SESSION in outcome.error and len(broker.placed) == 1
    assert len(asked) == 2  # asked before the first write, and again before the retry


def test_a_date_with_no_known_session_fails_closed(monkeypatch):
    from execution.reference import calendar

    def unknown(moment, exchange="NSE"):
        raise LookupError("no calendar for 2031")

    monkeypatch.setattr(calendar, "closed_reason", unknown)
    sender._closed_reason.cache_clear()
    words = sender.session_refusal(_order(), at=time.time())
    assert words.startswith(sender.NOT_IN_SESSION) and "no session known" in words
    assert sender.session_refusal(_order(session_exempt="paper"), at=time.time()) == ""


def test_a_batch_report_needs_attention_unless_every_order_is_acknowledged():
    report = sender.BatchReport(account_id=1)
    order = _order()
    report.record([sender.Outcome.of(order, 1, state="acknowledged")], start=time.time())
    assert not report.needs_attention
    report.record([sender.Outcome.of(order, 1, state="unknown")], start=time.time())
    assert report.needs_attention


# --- the orders-per-second wait, at the Kite emulator -------------------------------------
class RecordingLimiter:
    """The real limiter, with every take_many answer recorded."""

    def __init__(self) -> None:
        self.real = order_rate_limiter()
        self.answers: list[tuple[int, float]] = []

    def take_many(self, account_id, limit, count):
        answer = self.real.take_many(account_id, limit, count)
        self.answers.append(answer)
        return answer


@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today")
def test_a_phase_bigger_than_the_budget_waits_for_free_slots_and_sends_every_order(kite):
    orders = [
        _order(intent_id=i, tradingsymbol=broker_symbol("kite", 24000 + 100 * i))
        for i in range(1, 4)
    ]
    limiter = RecordingLimiter()
    report = sender.send_batch(
        account_id=kite.account.pk,
        adapter=get_adapter(kite.account),
        ops_limit=2,
        orders=orders,
        fire_at_epoch=None,
        limiter=limiter,
    )
    assert [o.state for o in report.outcomes] == ["acknowledged"] * 3
    # Two slots at once, then none free (a wait named by the budget), then the third.
    assert limiter.answers[0] == (2, 0.0)
    assert any(taken == 0 and wait > 0 for taken, wait in limiter.answers)
    assert limiter.answers[-1][0] == 1
    posts = [r for r in kite.emulator.order_log() if r["method"] == "POST"]
    assert sorted(r["tag"] for r in posts) == sorted(o.tag for o in orders)  # each once


@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today")
def test_the_synchronous_path_lands_unknown_when_the_book_cannot_settle_it(kite, monkeypatch):
    from brokers.kite.adapter import KiteAdapter

    monkeypatch.setattr(KiteAdapter, "find_order_by_tag", lambda self, tag: None)
    kite.fault("drop")  # the order is created at Kite; its answer never comes back
    order = _order(tradingsymbol=broker_symbol("kite", 25000))
    report = sender.send_batch(
        account_id=kite.account.pk,
        adapter=get_adapter(kite.account),
        ops_limit=10,
        orders=[order],
        fire_at_epoch=None,
    )
    (outcome,) = report.outcomes
    assert (outcome.state, outcome.error_class, outcome.attempts) == ("unknown", "ambiguous", 1)
    posts = [r for r in kite.emulator.order_log() if r.get("tag") == order.tag]
    assert len(posts) == 1  # never resent
    assert sender.wire_marked([order.tag]) == {order.tag}  # the reconciler will look it up
