"""The engine's Celery tasks as a worker runs them: the account task off the main thread (the
threads pool: the batch goes to the asynchronous lane and the outcomes to the process's writer
thread), a batch that fails before or on the lane, orders another worker holds, and the thin
beat tasks."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future

import pytest
from django.core.cache import cache

from brokers.models import AccountStatus
from execution import tasks
from execution.orders import sending
from execution.send import sender
from execution.services import funds_cache_key
from tests.brokers.contract.venues import broker_symbol
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]


class RecordingWriter(sender.OutcomeWriter):
    """The process's outcome writer, applying into a list instead of the database (the writer
    thread has a database connection of its own, which cannot see a test's transaction)."""

    def __init__(self) -> None:
        self.applied: list[sender.Outcome] = []
        self.done = threading.Event()
        super().__init__(self._apply)

    def _apply(self, batch: list[sender.Outcome]) -> None:
        self.applied.extend(batch)
        self.done.set()


@pytest.fixture
def recording_writer(monkeypatch):
    writer = RecordingWriter()
    monkeypatch.setattr(sending, "_writer", writer)
    return writer


def _payload(account_id: int, orders: list[sender.OutgoingOrder], fire_at: float | None):
    key = f"test:{account_id}:{time.time()}"
    return {
        "account_id": account_id,
        "account_ids": [account_id],
        "boundary_key": key,
        "fire_at": fire_at,
        "burst": {"kite": len(orders)},
        "orders": [o.__dict__ for o in orders],
    }


def _order(index: int, symbol: str = "NIFTY26D0326000CE", side: str = "BUY"):
    return sender.OutgoingOrder(
        intent_id=index,
        run_id=1,
        tag=f"TK{index}X{int(time.time() * 1000) % 10**9}",
        phase=0 if side == "BUY" else 1,
        exchange="NFO",
        tradingsymbol=symbol,
        instrument_token="",
        side=side,
        quantity=75,
        product="NRML",
        order_type="MARKET",
        price=None,
        algo_id="ALGO1",
    )


@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today")
def test_off_the_main_thread_the_batch_goes_to_the_lane_and_the_writer_records_it(
    kite, recording_writer
):
    orders = [
        _order(1, broker_symbol("kite", 26000)),
        _order(2, broker_symbol("kite", 25000), "SELL"),
    ]
    # T far enough ahead that a slow thread start on a loaded machine is never "late".
    payload = _payload(kite.account.pk, orders, fire_at=time.time() + 3)
    # The worker loads the boundary's accounts itself; here they are loaded first in the
    # test's own database connection (the task's thread could not see the test's rows).
    sender.ADAPTERS.prepare(payload["boundary_key"], payload["account_ids"])
    answers: list[dict] = []
    worker = threading.Thread(target=lambda: answers.append(tasks.account_send_task(payload)))
    worker.start()
    worker.join(10)

    # The task returns at once, before T: the lane sends, then hands over to the writer.
    assert answers == [{"account_id": kite.account.pk, "scheduled": 2}]
    assert recording_writer.done.wait(15), "the writer thread never recorded the outcomes"
    deadline = time.monotonic() + 5
    while len(recording_writer.applied) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    by_tag = {o.tag: o for o in recording_writer.applied}
    assert set(by_tag) == {o.tag for o in orders}
    assert {o.state for o in by_tag.values()} == {"acknowledged"}
    assert by_tag[orders[0].tag].sent_at <= by_tag[orders[1].tag].sent_at  # hedge first
    posts = [r for r in kite.emulator.order_log() if r["method"] == "POST"]
    assert sorted(r["tag"] for r in posts) == sorted(by_tag)


def test_a_batch_that_failed_on_the_lane_leaves_its_orders_to_the_reconciler(recording_writer):
    recording_writer.begin()
    failed: Future = Future()
    failed.set_exception(RuntimeError("the loop died"))
    sending._hand_over(recording_writer, failed)
    # Nothing recorded (the orders stay claimed, found later by tag), and the writer is not
    # left waiting for a sender that will never end.
    assert recording_writer.applied == []
    assert recording_writer._idle.is_set() and recording_writer._active == 0


def test_a_batch_handed_over_from_the_lane_is_written_in_the_background(recording_writer):
    recording_writer.begin()
    report = sender.BatchReport(account_id=1)
    report.outcomes.append(sender.Outcome.of(_order(3), 1, state="acknowledged"))
    done: Future = Future()
    done.set_result(report)
    sending._hand_over(recording_writer, done)
    assert recording_writer.done.wait(5)
    assert [o.state for o in recording_writer.applied] == ["acknowledged"]


def test_a_batch_that_cannot_be_prepared_raises_and_frees_the_writer(recording_writer, monkeypatch):
    account = BrokerAccountFactory(broker="kite")
    orders = [_order(4)]

    def broken(**kwargs):
        raise RuntimeError("could not serialize")

    monkeypatch.setattr(sender, "send_batch_async", broken)
    with pytest.raises(RuntimeError, match="could not serialize"):
        tasks.account_send_task(_payload(account.pk, orders, fire_at=time.time() + 30))
    assert recording_writer._active == 0 and recording_writer.applied == []


def test_orders_another_worker_claimed_are_left_to_it(recording_writer, monkeypatch):
    account = BrokerAccountFactory(broker="kite")
    orders = [_order(5), _order(6)]
    sender.claims_take([o.tag for o in orders], owner="other-host:1:abc")
    monkeypatch.setattr(
        sender, "send_batch_async", lambda **kw: pytest.fail("nothing of ours to send")
    )
    answer = tasks.account_send_task(_payload(account.pk, orders, fire_at=time.time() + 30))
    assert answer == {"account_id": account.pk, "sent": 0}
    assert sender.wire_marked(o.tag for o in orders) == set()
    for order in orders:
        assert sender.claim_owner(order.tag) == "other-host:1:abc"
        sender.claim_release(order.tag, owner="other-host:1:abc")


def test_a_started_worker_reconciles_shortly_after(monkeypatch):
    scheduled = []
    monkeypatch.setattr(
        tasks.reconcile_open_orders_task, "apply_async", lambda **kw: scheduled.append(kw)
    )
    tasks._reconcile_on_start(sender=None)
    assert scheduled == [{"countdown": 1}]


def test_a_failing_reconcile_pass_still_schedules_the_next_start_up_repeat(monkeypatch):
    scheduled = []
    monkeypatch.setattr(
        tasks.reconcile_open_orders_task, "apply_async", lambda **kw: scheduled.append(kw)
    )

    def deadlock():
        raise RuntimeError("deadlock detected")

    monkeypatch.setattr("execution.orders.lifecycle.open_orders_reconcile", deadlock)
    with pytest.raises(RuntimeError):
        tasks.reconcile_open_orders_task(repeat=4)
    assert scheduled == [{"kwargs": {"repeat": 5}, "countdown": 2}]
    scheduled.clear()
    with pytest.raises(RuntimeError):
        tasks.reconcile_open_orders_task(repeat=10)  # the repeats end after ten
    assert scheduled == []


def test_beat_tasks_with_nothing_to_do_do_nothing():
    assert tasks.mtm_watch_task() == 0
    assert tasks.accounts_ready_check_task() == 0
    assert tasks.orders_cancel_task([]) == 0
    counts = tasks.trade_books_reconcile_task()
    assert isinstance(counts, dict) and not any(counts.values())


def test_the_masters_task_counts_the_masters_that_loaded(monkeypatch):
    class Record:
        def __init__(self, ok):
            self.ok = ok

    asked = []
    monkeypatch.setattr(
        "execution.reference.masters.masters_refresh",
        lambda day: asked.append(day) or [Record(True), Record(False), Record(True)],
    )
    assert tasks.instrument_masters_refresh_task() == 2
    from execution.planning.plan import today_ist

    assert asked == [today_ist()]


@pytest.mark.usefixtures("calendar_loaded_today")
def test_the_funds_task_reads_a_connected_account_and_skips_a_disconnected_one(settings):
    from tests.brokers.contract.venues import make_venue

    venue = make_venue("paper", settings)
    account = venue.login()
    assert account.status == AccountStatus.CONNECTED
    tasks.account_funds_read_task(account.pk)
    funds, problem = cache.get(funds_cache_key(account.pk))
    assert problem == "" and funds.available == venue.book.cash

    other = PaperBookFactory().account  # EXPIRED: not asked
    tasks.account_funds_read_task(other.pk)
    assert cache.get(funds_cache_key(other.pk)) is None
