"""Fills to positions and realised P&L, whatever the order the broker's updates arrive in and
however often each is repeated (polls and postbacks race; both report the order's cumulative
filled quantity and average price, which is what identifies a fill here)."""

from __future__ import annotations

import dataclasses
import datetime
import itertools
from decimal import Decimal as D

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.base import BrokerOrder, OrderStatus, Side
from brokers.trades import Trade
from execution.models import Fill, IntentState, OrderIntent, Position, Purpose
from execution.orders.fills import trades_apply
from execution.orders.lifecycle import fill_apply
from tests.execution.engine_factories import IntentFactory, RunFactory

pytestmark = pytest.mark.django_db

LOT = 75
TICK = D("0.05")

prices = st.integers(min_value=1, max_value=10000).map(lambda ticks: ticks * TICK)


@st.composite
def executions(draw, *, lots: int):
    """The broker's fills of one order of `lots` lots: (quantity, price) pieces that add up to
    the order, partial fills in any unit size (exchanges fill in lots; brokers report units)."""
    quantity = lots * LOT
    cuts = draw(st.lists(st.integers(1, quantity - 1), max_size=5, unique=True)) if lots else []
    bounds = [0, *sorted(cuts), quantity]
    return [(b - a, draw(prices)) for a, b in itertools.pairwise(bounds)]


def _snapshots(intent, pieces):
    """What the broker reports after each fill: cumulative quantity and average price."""
    snapshots, filled, value = [], 0, D(0)
    for quantity, price in pieces:
        filled += quantity
        value += quantity * price
        done = filled == intent.quantity
        snapshots.append(
            BrokerOrder(
                broker_order_id=f"B{intent.pk}",
                tag=intent.tag,
                tradingsymbol=intent.tradingsymbol,
                side=Side(intent.side),
                quantity=intent.quantity,
                filled_quantity=filled,
                average_price=value / filled,
                status=OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED,
            )
        )
    return snapshots


def _deliveries(draw, snapshots):
    """Every snapshot at least zero times, some twice or more, in any order; the last one is
    delivered at least once (reconciliation reads the order's final state in the end)."""
    chosen = draw(st.lists(st.sampled_from(snapshots), max_size=2 * len(snapshots)))
    return draw(st.permutations([*chosen, snapshots[-1]]))


def _traded_value(pieces):
    return sum((q * p for q, p in pieces), D(0))


def _apply_all(intent, deliveries, source_of):
    for number, order in enumerate(deliveries):
        fill_apply(intent=intent, order=order, source=source_of(number))


@settings(max_examples=60, deadline=None)
@given(data=st.data(), lots=st.integers(1, 24), side=st.sampled_from(["BUY", "SELL"]))
def test_a_filled_order_books_each_fill_once_in_any_order(data, lots, side):
    with transaction.atomic():
        intent = IntentFactory(
            state=IntentState.ACKNOWLEDGED,
            side=side,
            quantity=lots * LOT,
            lot_size=LOT,
            broker_order_id="B1",
        )
        pieces = data.draw(executions(lots=lots))
        deliveries = _deliveries(data.draw, _snapshots(intent, pieces))
        _apply_all(intent, deliveries, lambda n: "postback" if n % 2 else "poll")

        intent.refresh_from_db()
        assert intent.state == IntentState.FILLED
        assert intent.filled_quantity == intent.quantity
        fills = list(Fill.objects.filter(intent=intent))
        # Each fill counted once: distinct cumulative figures adding up to the order.
        assert len({f.cumulative_quantity for f in fills}) == len(fills)
        assert sum(f.quantity for f in fills) == intent.quantity
        assert max(f.cumulative_quantity for f in fills) == intent.quantity
        position = Position.objects.get(run=intent.run)
        signed = intent.quantity if side == "BUY" else -intent.quantity
        assert position.net_quantity == signed
        booked = position.buy_value if side == "BUY" else position.sell_value
        # To the paisa: each fill books the broker's cumulative value minus what is booked.
        assert booked == _traded_value(pieces)
        assert intent.filled_value == _traded_value(pieces)
        assert (position.buy_quantity, position.sell_quantity) == (
            (intent.quantity, 0) if side == "BUY" else (0, intent.quantity)
        )
        transaction.set_rollback(True)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), lots=st.integers(1, 24), side=st.sampled_from(["BUY", "SELL"]))
def test_entry_and_exit_fills_realise_the_traded_difference(data, lots, side):
    """An entry and its exit, each filled in pieces and reported out of order with repeats: the
    position is flat and its P&L is what the trades made (sells minus buys)."""
    with transaction.atomic():
        entry_run = RunFactory()
        exit_run = RunFactory(
            boundary="exit",
            strategy_version=entry_run.strategy_version,
            entry_run=entry_run,
            fire_at=entry_run.fire_at.replace(hour=15, minute=10),
        )
        common = {"quantity": lots * LOT, "lot_size": LOT, "state": IntentState.ACKNOWLEDGED}
        entry = IntentFactory(run=entry_run, side=side, purpose=Purpose.ENTRY, **common)
        exit_side = "SELL" if side == "BUY" else "BUY"
        exit_ = IntentFactory(
            run=exit_run, account=entry.account, side=exit_side, purpose=Purpose.EXIT, **common
        )
        entry_pieces = data.draw(executions(lots=lots))
        exit_pieces = data.draw(executions(lots=lots))
        entry_deliveries = _deliveries(data.draw, _snapshots(entry, entry_pieces))
        exit_deliveries = _deliveries(data.draw, _snapshots(exit_, exit_pieces))
        # The exit's updates may even be read before the entry's last ones.
        merged = data.draw(
            st.permutations(
                [(entry, o) for o in entry_deliveries] + [(exit_, o) for o in exit_deliveries]
            )
        )
        for intent, order in merged:
            fill_apply(intent=intent, order=order)

        (position,) = Position.objects.filter(run=entry_run)
        assert not Position.objects.filter(run=exit_run).exists()
        assert position.net_quantity == 0
        sold = _traded_value(entry_pieces if side == "SELL" else exit_pieces)
        bought = _traded_value(exit_pieces if side == "SELL" else entry_pieces)
        assert position.pnl() == sold - bought
        # Flat: the P&L does not depend on the last price any more.
        assert position.pnl(D("1")) == position.pnl(D("99999"))
        assert OrderIntent.objects.filter(state=IntentState.FILLED).count() == 2
        transaction.set_rollback(True)


def test_a_stale_update_after_a_newer_one_changes_nothing():
    intent = IntentFactory(
        state=IntentState.ACKNOWLEDGED, quantity=3 * LOT, lot_size=LOT, broker_order_id="B1"
    )
    first, second, last = _snapshots(intent, [(LOT, D("100")), (LOT, D("110")), (LOT, D("120"))])
    fill_apply(intent=intent, order=second)
    fill_apply(intent=intent, order=first)  # arrives late: already included in `second`
    intent.refresh_from_db()
    assert intent.filled_quantity == 2 * LOT and intent.state == IntentState.PARTIALLY_FILLED
    fill_apply(intent=intent, order=last)
    fill_apply(intent=intent, order=second)
    position = Position.objects.get()
    assert [(f.cumulative_quantity, f.price) for f in Fill.objects.order_by("id")] == [
        (2 * LOT, D("105.00")),
        (3 * LOT, D("120.00")),
    ]
    assert position.net_quantity == 3 * LOT and position.buy_value == D("24750.00")


def test_booked_value_equals_the_traded_value_to_the_paisa():
    pieces = [(2, D("100.05")), (1, D("100.10")), (1796, D("100.10")), (1, D("100.00"))]
    intent = IntentFactory(
        state=IntentState.ACKNOWLEDGED, quantity=1800, lot_size=LOT, broker_order_id="B1"
    )
    for order in _snapshots(intent, pieces):
        fill_apply(intent=intent, order=order)
    assert Position.objects.get().buy_value == _traded_value(pieces) == D("180179.80")


@settings(max_examples=40, deadline=None)
@given(data=st.data(), lots=st.integers(1, 24), digits=st.integers(2, 6))
def test_an_average_reported_with_few_digits_drifts_at_most_half_a_paisa_per_order(
    data, lots, digits
):
    """Brokers report the average price rounded (a float, or a few decimals): the position is
    still the broker's cumulative value rounded once to the paisa, not a sum of roundings."""
    with transaction.atomic():
        intent = IntentFactory(
            state=IntentState.ACKNOWLEDGED, quantity=lots * LOT, lot_size=LOT, broker_order_id="B1"
        )
        pieces = data.draw(executions(lots=lots))
        step = D(1).scaleb(-digits)
        snapshots = [
            dataclasses.replace(s, average_price=s.average_price.quantize(step))
            for s in _snapshots(intent, pieces)
        ]
        for order in _deliveries(data.draw, snapshots):
            fill_apply(intent=intent, order=order)
        booked = Position.objects.get(run=intent.run).buy_value
        reported = snapshots[-1].average_price * intent.quantity
        assert booked == reported.quantize(D("0.01"))
        assert abs(booked - _traded_value(pieces)) <= step / 2 * intent.quantity + D("0.005")
        transaction.set_rollback(True)


def test_trade_book_then_poll_books_the_traded_value_once():
    """The trade book counts the first trades at their prices; a poll then reports the whole
    order: the rest is booked as the broker's cumulative value minus what is booked."""
    intent = IntentFactory(
        state=IntentState.ACKNOWLEDGED, quantity=3 * LOT, lot_size=LOT, broker_order_id="B1"
    )
    pieces = [(LOT - 1, D("100.05")), (1, D("100.10")), (2 * LOT, D("99.95"))]
    trades = [
        Trade(
            trade_id=f"T{n}",
            broker_order_id="B1",
            tradingsymbol=intent.tradingsymbol,
            side=Side.BUY,
            quantity=q,
            price=p,
            filled_at=timezone.now() + datetime.timedelta(seconds=n),
        )
        for n, (q, p) in enumerate(pieces[:2])
    ]
    trades_apply(intent=intent, trades=trades)
    fill_apply(intent=intent, order=_snapshots(intent, pieces)[-1])
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED
    assert intent.filled_value == _traded_value(pieces) == Position.objects.get().buy_value
    assert sum(f.quantity for f in Fill.objects.filter(intent=intent)) == 3 * LOT
