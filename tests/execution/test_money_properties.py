"""Property tests on the engine's money arithmetic: freeze-quantity slicing and charges by trade
date. Examples are bounded (settings below) so the suite stays fast; a failure prints the
smallest counter-example hypothesis found."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.intents.build import slice_lots
from execution.models import BrokerageRate, ChargeRate
from execution.reference.charges import ChargeFill, ChargeRateMissing, charges_compute

FAST = settings(max_examples=150, deadline=None)


# --- freeze-quantity slicing ---------------------------------------------------------------
# NSE's freeze quantities are whole multiples of the lot on every seeded row, but the code must
# not rely on it: a freeze that is not a multiple still caps each slice.
@FAST
@given(
    lots=st.integers(min_value=1, max_value=5000),
    lot_size=st.integers(min_value=1, max_value=1800),
    freeze_extra=st.integers(min_value=0, max_value=20000),
)
def test_slices_add_up_to_the_order_and_each_is_whole_lots_within_the_freeze(
    lots, lot_size, freeze_extra
):
    freeze = lot_size + freeze_extra
    slices = slice_lots(lots=lots, lot_size=lot_size, freeze_quantity=freeze)
    assert sum(slices) == lots
    assert all(isinstance(s, int) and s >= 1 for s in slices)
    assert all(s * lot_size <= freeze for s in slices)
    # As few orders as the freeze allows: every slice but the last is full.
    per_slice = freeze // lot_size
    assert len(slices) == -(-lots // per_slice)
    assert all(s == per_slice for s in slices[:-1])


@FAST
@given(
    lots=st.integers(min_value=1, max_value=5000),
    lot_size=st.integers(min_value=2, max_value=1800),
    data=st.data(),
)
def test_a_freeze_below_one_lot_sends_one_lot_per_order(lots, lot_size, data):
    """A freeze quantity below the lot (a bad or stale master row) cannot be met by any whole
    lot: the order still goes out whole, one lot per order (the smallest order an exchange
    takes), never a fraction of a lot and never zero orders (an exit must not vanish)."""
    freeze = data.draw(st.integers(min_value=0, max_value=lot_size - 1))
    slices = slice_lots(lots=lots, lot_size=lot_size, freeze_quantity=freeze)
    assert slices == [1] * lots
    assert sum(slices) * lot_size == lots * lot_size


@FAST
@given(lots=st.integers(max_value=0), lot_size=st.integers(1, 1800))
def test_nothing_to_slice_gives_no_orders(lots, lot_size):
    assert slice_lots(lots=lots, lot_size=lot_size, freeze_quantity=1800) == []


# --- charges by trade date -----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Row:
    """A detached copy of a rate row (hypothesis runs many examples on one database state)."""

    exchange: str
    effective_from: datetime.date
    stt_sell_percent: D
    exchange_txn_percent: D
    ipft_percent: D
    sebi_fee_percent: D
    stamp_buy_percent: D
    gst_percent: D
    gst_on_ipft: bool


@dataclasses.dataclass(frozen=True)
class Brokerage:
    broker: str
    effective_from: datetime.date
    per_order: D


def _seeded() -> tuple[list[Row], list[Brokerage]]:
    names = [f.name for f in dataclasses.fields(Row)]
    charge_rows = [Row(**{n: getattr(r, n) for n in names}) for r in ChargeRate.objects.all()]
    brokerage_rows = [
        Brokerage(broker=r.broker, effective_from=r.effective_from, per_order=r.per_order)
        for r in BrokerageRate.objects.all()
    ]
    return charge_rows, brokerage_rows


def _in_force(rows, day, **match):
    """The row in force on `day`, found the other way round: the rows of that key sorted by
    date, and the one whose interval [from, next from) contains `day`."""
    mine = sorted(
        (r for r in rows if all(getattr(r, k) == v for k, v in match.items())),
        key=lambda r: r.effective_from,
    )
    for row, following in zip(mine, [*mine[1:], None], strict=True):
        if row.effective_from <= day and (following is None or day < following.effective_from):
            return row
    return None


prices = st.decimals(min_value=D("0.05"), max_value=D("2000"), places=2).map(
    lambda p: (p / D("0.05")).to_integral_value() * D("0.05")
)
fills_strategy = st.lists(
    st.builds(
        ChargeFill,
        order_ref=st.integers(1, 6),
        side=st.sampled_from(["BUY", "SELL"]),
        quantity=st.integers(1, 40).map(lambda lots: lots * 65),
        price=prices,
        exchange=st.sampled_from(["NSE", "BSE"]),
    ),
    min_size=1,
    max_size=12,
)
trade_dates = st.dates(min_value=datetime.date(2024, 10, 1), max_value=datetime.date(2028, 12, 31))


@pytest.mark.django_db
def test_a_trade_on_date_d_is_charged_with_the_rows_in_force_on_d():
    charge_rows, brokerage_rows = _seeded()
    assert len({r.effective_from for r in charge_rows if r.exchange == "NSE"}) > 1

    @FAST
    @given(fills=fills_strategy, day=trade_dates, broker=st.sampled_from(["kite", "paper"]))
    def check(fills, day, broker):
        exchanges = {f.exchange for f in fills}
        chosen = {e: _in_force(charge_rows, day, exchange=e) for e in exchanges}
        brokerage = _in_force(brokerage_rows, day, broker=broker)
        kwargs = {"fills": fills, "trade_date": day, "broker": broker}
        if brokerage is None or None in chosen.values():
            with pytest.raises(ChargeRateMissing):
                charges_compute(**kwargs, charge_rates=charge_rows, brokerage_rates=brokerage_rows)
            return
        result = charges_compute(**kwargs, charge_rates=charge_rows, brokerage_rates=brokerage_rows)
        # Exactly the rows in force that day, whatever else is in the table.
        alone = charges_compute(
            **kwargs, charge_rates=list(chosen.values()), brokerage_rates=[brokerage]
        )
        assert result == alone
        # Rows that start after the trade date never apply to it, however different.
        later = [
            dataclasses.replace(
                row,
                effective_from=day + datetime.timedelta(days=1),
                stt_sell_percent=row.stt_sell_percent * 10 + 1,
                gst_percent=D(50),
            )
            for row in chosen.values()
        ]
        later_brokerage = dataclasses.replace(
            brokerage, effective_from=day + datetime.timedelta(days=1), per_order=D("999")
        )
        assert result == charges_compute(
            **kwargs,
            charge_rates=[*charge_rows, *later],
            brokerage_rates=[*brokerage_rows, later_brokerage],
        )
        # A row that starts on the trade date itself does apply (one row per broker and date,
        # as the table's unique constraint keeps it).
        same_day = dataclasses.replace(brokerage, effective_from=day, per_order=D("999"))
        others = [b for b in brokerage_rows if (b.broker, b.effective_from) != (broker, day)]
        replaced = charges_compute(
            **kwargs, charge_rates=charge_rows, brokerage_rates=[*others, same_day]
        )
        assert replaced.brokerage == D("999") * replaced.orders

    check()


@pytest.mark.django_db
def test_charge_items_are_whole_paise_one_sided_and_independent_of_fill_order():
    charge_rows, brokerage_rows = _seeded()

    @FAST
    @given(fills=fills_strategy, day=trade_dates, data=st.data())
    def check(fills, day, data):
        kwargs = {
            "trade_date": day,
            "broker": "kite",
            "charge_rates": charge_rows,
            "brokerage_rates": brokerage_rows,
        }
        result = charges_compute(fills=fills, **kwargs)
        shuffled = data.draw(st.permutations(fills))
        assert charges_compute(fills=shuffled, **kwargs) == result
        items = [result.brokerage, result.stt, result.exchange_txn, result.ipft]
        items += [result.sebi_fee, result.stamp, result.gst]
        assert all(item >= 0 and item == item.quantize(D("0.01")) for item in items)
        assert result.total == sum(items)
        # Brokerage is per executed order per exchange, however many fills the order had.
        per_order = _in_force(brokerage_rows, day, broker="kite").per_order
        orders = len({(f.exchange, f.order_ref) for f in fills})
        assert result.orders == orders and result.brokerage == per_order * orders
        assert result.buy_value == sum(
            (f.price * f.quantity for f in fills if f.side == "BUY"), D(0)
        )
        assert result.sell_value == sum(
            (f.price * f.quantity for f in fills if f.side == "SELL"), D(0)
        )
        # STT is on sells only, stamp duty on buys only.
        if not any(f.side == "SELL" for f in fills):
            assert result.stt == 0
        if not any(f.side == "BUY" for f in fills):
            assert result.stamp == 0

    check()


@pytest.mark.django_db
def test_a_day_before_the_first_seeded_row_is_refused():
    charge_rows, brokerage_rows = _seeded()
    first = min(r.effective_from for r in charge_rows if r.exchange == "NSE")
    fill = ChargeFill(order_ref=1, side="SELL", quantity=65, price=D("100"), exchange="NSE")
    with pytest.raises(ChargeRateMissing, match="No NSE rate in force"):
        charges_compute(
            fills=[fill],
            trade_date=first - datetime.timedelta(days=1),
            broker="kite",
            charge_rates=charge_rows,
            brokerage_rates=[
                dataclasses.replace(b, effective_from=datetime.date(2000, 1, 1))
                for b in brokerage_rows
            ],
        )
