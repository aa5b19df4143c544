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
