"""The dispatcher dies at T - ε after publishing the contracts and before writing them onto the
intents: the orders still go out at T (the senders had the resolution), and their intents,
fills and positions carry the contract they traded, never its placeholder."""

from __future__ import annotations

import dataclasses
import datetime
import time
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from brokers.base import OrderStatus
from execution import dispatch
from execution.dispatch import boundary_dispatch
from execution.intents import slots
from execution.intents.build import outgoing
from execution.models import IntentState, OrderIntent, Position
from execution.orders.lifecycle import open_orders_reconcile, outcomes_apply
from execution.send import sender
from tests.execution.engine_factories import IntentFactory
from tests.execution.test_dispatch import FlatMarket, T, _seed
from tests.execution.test_dispatch_strikes import _fill_all
from tests.execution.test_engine_takeover import DEAD, _Broker

pytestmark = pytest.mark.django_db


class _Crash(Exception):
    pass


def _crashed_dispatch(monkeypatch) -> list[OrderIntent]:
    """A boundary dispatched up to the publish at T - ε; the process dies before the UPDATE."""

    def die(resolution, fire_at):
        raise _Crash

    monkeypatch.setattr(dispatch, "_resolution_write", die)
    _seed(1)
    with pytest.raises(_Crash):
        boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    intents = list(OrderIntent.objects.select_related("account", "run"))
    assert intents and all(slots.unresolved(i.tradingsymbol) for i in intents)
    return intents


def _key(intent: OrderIntent) -> str:
    return slots._key(intent.intended_at, intent.tradingsymbol[1:].split(":")[0])


def test_the_senders_outcomes_write_the_contract_the_dispatcher_did_not(monkeypatch):
    intents = _crashed_dispatch(monkeypatch)
    # The senders: the resolution read once, filled into the batch, sent at T.
    resolution = slots.resolution_wait(_key(intents[0]), until=time.time() + 1)
    assert resolution is not None
    orders = slots.orders_resolved(
        [sender.OutgoingOrder(**outgoing(i)) for i in intents], resolution
    )
    assert len(orders) == len(intents)
    now = time.time()
    outcomes_apply(
        [
            sender.Outcome.of(
                order,
                next(i.account_id for i in intents if i.pk == order.intent_id),
                state=IntentState.ACKNOWLEDGED,
                sent_at=now,
                acked_at=now,
                broker_order_id=f"B-{order.tag}",
                attempts=1,
            )
            for order in orders
        ]
    )
    for before in intents:
        intent = OrderIntent.objects.select_related("account", "run").get(pk=before.pk)
        published = resolution[before.tradingsymbol]
        assert intent.state == IntentState.ACKNOWLEDGED
        assert intent.tradingsymbol == published["s"] and not slots.unresolved(published["s"])
        assert intent.instrument_token == published["t"]
        assert intent.reference_price == (published["r"] and Decimal(published["r"]))
    _fill_all(intents)  # the broker's fills, applied to the intents as stored
    positions = Position.objects.filter(run_id=intents[0].run_id)
    assert positions.exists()
    assert not [p for p in positions if slots.unresolved(p.tradingsymbol)]
    assert {p.tradingsymbol for p in positions} == {
        resolution[i.tradingsymbol]["s"] for i in intents
    }


class _FillingBroker(_Broker):
    """Its book holds the orders in `book`, filled."""

    def find_order_by_tag(self, tag):
        found = super().find_order_by_tag(tag)
        if found is None:
            return None
        return dataclasses.replace(
            found,
            filled_quantity=75,
            average_price=Decimal("101.25"),
            status=OrderStatus.FILLED,
        )


def _left_on_the_wire(monkeypatch, placeholder):
    """An order its worker wrote at T (10 s ago) and died before recording (claimed, marked),
    found filled at the broker; returns it and the broker."""
    fire_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=10)
    intent = IntentFactory(
        intended_at=fire_at, side="BUY", phase=0, tradingsymbol=placeholder, instrument_token=""
    )
    sender.claims_take([intent.tag], owner=DEAD)
    assert sender.wire_marks_set([intent.tag], owner=DEAD) == {intent.tag}
    broker = _FillingBroker(book=(intent.tag,))
    monkeypatch.setattr("brokers.registry.get_adapter", lambda account: broker)
    return intent, broker


@pytest.mark.usefixtures("session_open")
def test_the_reconciler_finds_an_orphan_with_the_published_contract(monkeypatch, settings):
    """The dispatcher and the sending worker both died: the reconciler takes the contract from
    the published resolution before it looks the order up and applies its fills."""
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    nonce = "c7a5h1"
    placeholder = f"{slots.PREFIX}{nonce}:0:kite"
    intent, broker = _left_on_the_wire(monkeypatch, placeholder)
    slots.publish(
        slots._key(intent.intended_at, nonce),
        {placeholder: {"s": "NIFTY26N2424000CE", "t": "9876", "r": "100.50", "p": None}},
    )
    open_orders_reconcile()
    intent.refresh_from_db()
    assert broker.placed == []
    assert intent.state == IntentState.FILLED
    assert (intent.tradingsymbol, intent.instrument_token) == ("NIFTY26N2424000CE", "9876")
    assert intent.reference_price == Decimal("100.50")
    position = Position.objects.get(run_id=intent.run_id)
    assert position.tradingsymbol == "NIFTY26N2424000CE" and position.net_quantity == 75


@pytest.mark.usefixtures("session_open")
def test_an_orphan_whose_contract_is_gone_needs_attention_never_a_guess(monkeypatch, settings):
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 60
    # Nothing published under its placeholder (the resolution is gone).
    intent, broker = _left_on_the_wire(monkeypatch, f"{slots.PREFIX}905e00:0:kite")
    open_orders_reconcile()
    intent.refresh_from_db()
    assert broker.placed == []
    assert intent.state == IntentState.NEEDS_ATTENTION
    assert not Position.objects.filter(run_id=intent.run_id).exists()
    assert [m.to for m in mail.outbox] == [[intent.run.owner.email]]
    assert "no longer known" in mail.outbox[0].body


@pytest.mark.usefixtures("session_open")
def test_an_acknowledged_order_whose_contract_is_gone_needs_attention(monkeypatch, settings):
    """Acknowledged by its broker (recorded by a worker of before outcomes carried the
    contract) while its intent still names the placeholder, and the resolution is gone: its
    fills can never be booked, so it needs attention (owner told), not left open for ever."""
    fire_at = timezone.now().replace(microsecond=0) - datetime.timedelta(seconds=10)
    intent = IntentFactory(
        intended_at=fire_at,
        side="BUY",
        phase=0,
        tradingsymbol=f"{slots.PREFIX}ac4ed0:0:kite",
        instrument_token="",
        state=IntentState.ACKNOWLEDGED,
        broker_order_id="B-1",
    )
    open_orders_reconcile()
    intent.refresh_from_db()
    assert intent.state == IntentState.NEEDS_ATTENTION
    assert not Position.objects.filter(run_id=intent.run_id).exists()
    assert [m.to for m in mail.outbox] == [[intent.run.owner.email]]
    assert "no longer known" in mail.outbox[0].body
