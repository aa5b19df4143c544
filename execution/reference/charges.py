"""What a set of fills costs in brokerage, taxes and exchange charges (India-market §4.2).

`charges_compute` is pure: it is given the fills of one broker on one trade date and the rate
rows (`ChargeRate`, `BrokerageRate`, loaded once by the caller), picks the rows in force on that
date and returns the contract-note items in rupees, each rounded to the paisa. Nothing is a
constant here: every rate comes from a row an admin can edit.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

PAISA = Decimal("0.01")
ZERO = Decimal("0")
HUNDRED = Decimal("100")

# Orders carry the F&O segment they were placed on; rates are set per exchange.
SEGMENT_EXCHANGE = {"NFO": "NSE", "BFO": "BSE"}


class ChargeRateMissing(LookupError):
    """No rate row covers this exchange or broker on this trade date."""


class _Dated(Protocol):
    effective_from: datetime.date


class _ExchangeRates(_Dated, Protocol):
    exchange: str
    stt_sell_percent: Decimal
    exchange_txn_percent: Decimal
    ipft_percent: Decimal
    sebi_fee_percent: Decimal
    stamp_buy_percent: Decimal
    gst_percent: Decimal
    gst_on_ipft: bool


class _Brokerage(_Dated, Protocol):
    broker: str
    per_order: Decimal


RowT = TypeVar("RowT", bound=_Dated)


@dataclass(frozen=True)
class ChargeFill:
    """One fill: `order_ref` names its order, because brokerage is per executed order (a
    partly filled order pays once, however many fills it had)."""

    order_ref: object
    side: str  # "BUY" or "SELL"
    quantity: int
    price: Decimal
    exchange: str  # "NSE" or "BSE" (see SEGMENT_EXCHANGE for an order's segment)


@dataclass(frozen=True)
class ChargeBreakdown:
    """Contract-note items in rupees. `brokerage_simulated` marks paper brokerage."""

    orders: int = 0
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO
    brokerage: Decimal = ZERO
    stt: Decimal = ZERO
    exchange_txn: Decimal = ZERO
    ipft: Decimal = ZERO
    sebi_fee: Decimal = ZERO
    stamp: Decimal = ZERO
    gst: Decimal = ZERO
    brokerage_simulated: bool = False

    @property
    def taxes_and_fees(self) -> Decimal:
        """Everything but brokerage: STT, exchange, IPFT, SEBI fee, stamp duty and GST."""
        return self.stt + self.exchange_txn + self.ipft + self.sebi_fee + self.stamp + self.gst

    @property
    def total(self) -> Decimal:
        return self.brokerage + self.taxes_and_fees

    def __add__(self, other: ChargeBreakdown) -> ChargeBreakdown:
        values = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "brokerage_simulated"
        }
        return ChargeBreakdown(
            **values, brokerage_simulated=self.brokerage_simulated or other.brokerage_simulated
        )


def _paise(value: Decimal) -> Decimal:
    return value.quantize(PAISA, rounding=ROUND_HALF_UP)


def rate_in_force(rows: Iterable[RowT], *, key: str, value: str, day: datetime.date) -> RowT:
    """The row with `key == value` whose effective date is the latest on or before `day`."""
    candidates = [row for row in rows if getattr(row, key) == value and row.effective_from <= day]
    if not candidates:
        raise ChargeRateMissing(f"No {value} rate in force on {day:%d %b %Y}.")
    return max(candidates, key=lambda row: row.effective_from)


def charges_compute(
    *,
    fills: Sequence[ChargeFill],
    trade_date: datetime.date,
    broker: str,
    charge_rates: Sequence[_ExchangeRates],
    brokerage_rates: Sequence[_Brokerage],
) -> ChargeBreakdown:
    """Charges of `fills` (one broker, one trade date), item by item, per exchange.

    Raises ChargeRateMissing when no rate row covers the broker or an exchange on that date:
    a cost is never guessed."""
    brokerage_row = rate_in_force(brokerage_rates, key="broker", value=broker, day=trade_date)
    total = ChargeBreakdown(brokerage_simulated=broker == "paper")
    for exchange in sorted({fill.exchange for fill in fills}):
        rates = rate_in_force(charge_rates, key="exchange", value=exchange, day=trade_date)
        mine = [fill for fill in fills if fill.exchange == exchange]
        buys = sum((f.price * f.quantity for f in mine if f.side == "BUY"), ZERO)
        sells = sum((f.price * f.quantity for f in mine if f.side == "SELL"), ZERO)
        turnover = buys + sells
        orders = len({fill.order_ref for fill in mine})
        brokerage = _paise(brokerage_row.per_order * orders)
        exchange_txn = _paise(turnover * rates.exchange_txn_percent / HUNDRED)
        ipft = _paise(turnover * rates.ipft_percent / HUNDRED)
        sebi_fee = _paise(turnover * rates.sebi_fee_percent / HUNDRED)
        gst_base = brokerage + exchange_txn + sebi_fee + (ipft if rates.gst_on_ipft else ZERO)
        total += ChargeBreakdown(
            orders=orders,
            buy_value=buys,
            sell_value=sells,
            brokerage=brokerage,
            stt=_paise(sells * rates.stt_sell_percent / HUNDRED),
            exchange_txn=exchange_txn,
            ipft=ipft,
            sebi_fee=sebi_fee,
            stamp=_paise(buys * rates.stamp_buy_percent / HUNDRED),
            gst=_paise(gst_base * rates.gst_percent / HUNDRED),
        )
    return total
