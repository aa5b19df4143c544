"""A worker killed just after T: its unsent orders are found by the restarted worker's
reconciler (looked up by tag first, never sent twice), however early it runs."""

from __future__ import annotations

import datetime
import time

import pytest
from django.utils import timezone

from brokers.base import BrokerError, OrderAck
from execution.models import IntentState, OrderIntent
from execution.orders.lifecycle import ORPHAN_AFTER, open_orders_reconcile
from execution.send import sender
from tests.execution.engine_factories import IntentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]

DEAD = "deadhost:1:killed"


class _Broker:
    def __init__(self, *, fail_lookups: int = 0):
        self.fail_lookups = fail_lookups
        self.placed = []

    def find_order_by_tag(self, tag):
        if self.fail_lookups:
            self.fail_lookups -= 1
            raise BrokerError("the order book did not answer")
        return None

    def order_status(self, broker_order_id):
        return None  # still open, nothing new (the poll after the send)

    def place_order(self, request):
        self.placed.append(request.tag)
        return OrderAck(broker_order_id="NEW1", received_at=timezone.now())


def test_an_early_reconciler_asks_to_look_again_while_orders_are_not_yet_orphans(monkeypatch):
    """The restarted worker reconciles 1 s after its start: if that is less than ORPHAN_AFTER
    after T, the dead worker's orders are not orphans yet; the task must come back."""
    now = timezone.now()
    just_due = IntentFactory(intended_at=now - datetime.timedelta(seconds=1))
    sender.claims_take([just_due.tag], owner=DEAD)
    broker = _Broker()
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    counts = open_orders_reconcile(now=now)
    assert counts["waiting"] == 1 and counts["sent"] == 0 and broker.placed == []
    later = open_orders_reconcile(now=now + ORPHAN_AFTER)
    assert later["waiting"] == 0 and later["sent"] == 1 and broker.placed == [just_due.tag]


def test_the_startup_task_repeats_while_orders_wait(monkeypatch):
    from execution import tasks

    scheduled = []
    monkeypatch.setattr(
        tasks.reconcile_open_orders_task,
        "apply_async",
        lambda **kwargs: scheduled.append(kwargs),
    )
    monkeypatch.setattr(
        "execution.orders.lifecycle.open_orders_reconcile",
        lambda: {"polled": 0, "sent": 0, "found": 0, "skipped": 0, "waiting": 3},
    )
    tasks.reconcile_open_orders_task(repeat=2)
    assert scheduled == [{"kwargs": {"repeat": 3}, "countdown": 2}]
    monkeypatch.setattr(
        "execution.orders.lifecycle.open_orders_reconcile",
        lambda: {"polled": 0, "sent": 0, "found": 0, "skipped": 0, "waiting": 0},
    )
    tasks.reconcile_open_orders_task(repeat=3)
    assert len(scheduled) == 1  # nothing left to wait for: no more passes


def test_a_failed_lookup_hands_the_claim_back_so_a_later_pass_retries(monkeypatch, settings):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    past = timezone.now() - datetime.timedelta(seconds=10)
    intent = IntentFactory(intended_at=past)
    sender.heartbeat_start()
    sender.claims_take([intent.tag], owner=DEAD)
    broker = _Broker(fail_lookups=1)
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    first = open_orders_reconcile()
    assert first["skipped"] == 1 and broker.placed == []  # not knowing: nothing sent
    assert sender.claim_owner(intent.tag) is None  # not kept by this live worker
    second = open_orders_reconcile()
    assert second["sent"] == 1 and broker.placed == [intent.tag]
    assert OrderIntent.objects.get(pk=intent.pk).state == IntentState.ACKNOWLEDGED
    time.sleep(0)


def test_a_late_redelivered_account_task_never_sends_what_was_sent(monkeypatch):
    """The broker hands a killed worker's unacknowledged task out again, maybe after its
    claims expired: only orders still unsent in the database go out."""
    from execution.intents.build import outgoing
    from execution.orders import sending

    fire_at = timezone.now() - datetime.timedelta(minutes=20)
    sent = IntentFactory(intended_at=fire_at, state=IntentState.ACKNOWLEDGED)
    unsent = IntentFactory(intended_at=fire_at, account=sent.account, run=sent.run)
    kept = sending._still_unsent(
        [sender.OutgoingOrder(**outgoing(sent)), sender.OutgoingOrder(**outgoing(unsent))]
    )
    assert [o.tag for o in kept] == [unsent.tag]
    assert sending._late({"fire_at": fire_at.timestamp()})
    assert sending._late({"fire_at": None})
    assert not sending._late({"fire_at": time.time() + 5})


def test_an_orphan_send_takes_a_slot_of_the_accounts_one_budget(monkeypatch, settings):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    intent = IntentFactory(intended_at=timezone.now() - datetime.timedelta(seconds=10))
    sender.claims_take([intent.tag], owner=DEAD)
    broker = _Broker()
    taken = []
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    monkeypatch.setattr(sender, "slot_take", lambda *args: taken.append(args) or True)
    assert open_orders_reconcile()["sent"] == 1 and broker.placed == [intent.tag]
    assert taken == [(intent.account_id, intent.account.orders_per_second)]


@pytest.mark.parametrize("free", [True, False])
def test_a_kill_switch_cancel_takes_a_slot_and_waits_for_none_it_cannot_get(monkeypatch, free):
    from execution.models import ExecutionEvent
    from execution.protection import killswitch

    intent = IntentFactory(state=IntentState.ACKNOWLEDGED, broker_order_id="B9")
    cancelled, taken = [], []

    class Broker:
        def cancel_order(self, broker_order_id):
            cancelled.append(broker_order_id)

    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: Broker())
    monkeypatch.setattr(killswitch, "slot_take", lambda *args: taken.append(args) or free)
    assert killswitch.open_orders_cancel(intent_ids=[intent.pk]) == int(free)
    assert taken == [(intent.account_id, intent.account.orders_per_second)]
    assert cancelled == (["B9"] if free else [])
    if not free:
        assert ExecutionEvent.objects.filter(kind="killswitch.cancel_failed").exists()
