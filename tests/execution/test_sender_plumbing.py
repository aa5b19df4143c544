"""The sender's plumbing: adapters loaded per boundary (all of T's accounts at once, or one
outside the boundary on demand), nothing to mark costing no Redis call, outcomes that are not
results writing nothing, and the process's one writer thread."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from execution.models import ExecutionEvent
from execution.orders.lifecycle import outcomes_apply
from execution.send import sender
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.engine_factories import IntentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pool():
    pool = sender.AdapterPool()
    yield pool
    pool.clear()


def test_a_big_boundary_loads_the_accounts_with_orders_due_at_t(pool):
    at = timezone.now().replace(microsecond=0) + datetime.timedelta(minutes=5)
    due = IntentFactory(intended_at=at)
    IntentFactory(intended_at=at + datetime.timedelta(minutes=1))  # another instant
    pool.prepare(at.isoformat(), [])
    assert set(pool._adapters) == {due.account_id}
    assert pool.get(due.account_id).adapter.credentials.api_key == due.account.api_key


def test_an_account_outside_the_boundary_is_loaded_when_asked_for(pool):
    inside, outside = BrokerAccountFactory(), BrokerAccountFactory(orders_per_second=4)
    pool.prepare("boundary-1", [inside.pk])
    assert set(pool._adapters) == {inside.pk}
    cached = pool.get(outside.pk)  # a failover or kill-switch batch
    assert cached.ops_limit == 4 and cached.adapter.credentials.api_key == outside.api_key


def test_nothing_to_mark_or_look_up_is_answered_without_redis(monkeypatch):
    monkeypatch.setattr(sender, "engine_redis", lambda: pytest.fail("no Redis call expected"))
    assert sender.wire_marks_set([]) == set()
    assert sender.wire_marked([]) == set()


def test_outcomes_that_are_not_results_write_nothing():
    intent = IntentFactory()
    outcomes_apply([])
    outcomes_apply(
        [sender.Outcome(intent.pk, intent.run_id, intent.account_id, intent.tag, "intent")]
    )
    intent.refresh_from_db()
    assert intent.state == "intent" and not ExecutionEvent.objects.exists()


def test_the_writer_keeps_one_thread_and_flushes_nothing_when_nothing_came():
    applied = []
    writer = sender.OutcomeWriter(applied.append)
    writer.flush_now()
    assert applied == []
    writer.begin()
    writer.end([], background=True)
    first = writer._thread
    writer.begin()
    writer.end([], background=True)
    assert writer._thread is first and first.is_alive()
    assert writer._idle.is_set() and writer._active == 0


# --- a lost database connection between two boundaries --------------------------------------
class _Connection:
    """The process's database connection as `reconnecting` sees it."""

    def __init__(self, *, in_atomic_block: bool) -> None:
        self.in_atomic_block = in_atomic_block
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_lost_database_connection_is_retried_once_on_a_fresh_one(monkeypatch):
    from django.db import OperationalError

    calls = []

    def flaky(value):
        calls.append(value)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return value * 2

    fake = _Connection(in_atomic_block=False)
    monkeypatch.setattr("django.db.connection", fake)
    assert sender.reconnecting(flaky, 21) == 42
    assert calls == [21, 21] and fake.closed == 1


def test_inside_a_transaction_a_lost_connection_is_not_retried(monkeypatch):
    from django.db import InterfaceError

    calls = []

    def lost(*args):
        calls.append(args)
        raise InterfaceError("connection already closed")

    fake = _Connection(in_atomic_block=True)
    monkeypatch.setattr("django.db.connection", fake)
    with pytest.raises(InterfaceError):
        sender.reconnecting(lost)
    assert len(calls) == 1 and fake.closed == 0  # half a transaction is never replayed


# --- warming connections before T -------------------------------------------------------------
def test_warming_reads_once_per_age_and_a_failed_read_is_not_fatal(caplog):
    import time

    from brokers.base import BrokerError

    class Broker:
        reads = 0

        def funds(self):
            Broker.reads += 1
            raise BrokerError("token expired")

    caplog.set_level("INFO", logger="execution.send.sender")
    cached = sender._CachedAdapter(adapter=Broker(), version="t", ops_limit=10)
    sender.warm(cached)
    assert Broker.reads == 1 and "warm-up read failed: token expired" in caplog.text
    assert time.monotonic() - cached.warmed_at < sender.WARM_MAX_AGE
    sender.warm(cached)  # warmed just now: no second read
    assert Broker.reads == 1
