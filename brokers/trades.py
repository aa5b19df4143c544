"""Trade books: every fill of the day with the broker's trade id (reference §1.4, §2.4, §3.4,
§4.4, §5.4). Fills counted from the trade book are de-duplicated by trade id, and against
postbacks and order polling by cumulative quantity (execution/orders/fills.py).

Each reader takes an adapter of its broker and returns `Trade`s; the adapters expose them as
`trade_book()`. Angel One and Fyers have no per-order trade call, so the day's book is read and
filtered by order id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from brokers.base import Side
from brokers.httpclient import parse_ist_timestamp, to_decimal, to_int
from execution.markettime import IST


@dataclass(frozen=True)
class Trade:
    trade_id: str
    broker_order_id: str
    tradingsymbol: str
    side: Side
    quantity: int
    price: Decimal
    filled_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _side(value: Any) -> Side:
    text = str(value).upper()
    return Side.BUY if text in ("BUY", "B", "1") else Side.SELL


def _time_today(text: Any) -> datetime | None:
    """Angel's `filltime` is a time of day (HH:MM:SS) on the trading day."""
    try:
        clock = datetime.strptime(str(text), "%H:%M:%S").time()
    except ValueError:
        return None
    return datetime.combine(datetime.now(IST).date(), clock, tzinfo=IST)


def _dd_mmm(text: Any) -> datetime | None:
    try:
        return datetime.strptime(str(text), "%d-%b-%Y %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return None


def kite_trade(row: dict[str, Any]) -> Trade:
    return Trade(
        trade_id=str(row.get("trade_id") or ""),
        broker_order_id=str(row.get("order_id") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        side=_side(row.get("transaction_type")),
        quantity=to_int(row.get("quantity")),
        price=to_decimal(row.get("average_price")),
        filled_at=parse_ist_timestamp(row.get("fill_timestamp")),
        raw=row,
    )


def upstox_trade(row: dict[str, Any]) -> Trade:
    return Trade(
        trade_id=str(row.get("trade_id") or ""),
        broker_order_id=str(row.get("order_id") or ""),
        tradingsymbol=str(row.get("trading_symbol") or row.get("tradingsymbol") or ""),
        side=_side(row.get("transaction_type")),
        quantity=to_int(row.get("quantity")),
        price=to_decimal(row.get("average_price")),
        filled_at=parse_ist_timestamp(row.get("exchange_timestamp")),
        raw=row,
    )


def angelone_trade(row: dict[str, Any]) -> Trade:
    return Trade(
        trade_id=str(row.get("fillid") or ""),
        broker_order_id=str(row.get("orderid") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        side=_side(row.get("transactiontype")),
        quantity=to_int(row.get("fillsize")),
        price=to_decimal(row.get("fillprice")),
        filled_at=_time_today(row.get("filltime")),
        raw=row,
    )


def fyers_trade(row: dict[str, Any]) -> Trade:
    return Trade(
        trade_id=str(row.get("tradeNumber") or ""),
        broker_order_id=str(row.get("orderNumber") or ""),
        tradingsymbol=str(row.get("symbol") or ""),
        side=_side(row.get("side")),
        quantity=to_int(row.get("tradedQty")),
        price=to_decimal(row.get("tradePrice")),
        filled_at=_dd_mmm(row.get("orderDateTime")),
        raw=row,
    )


def dhan_trade(row: dict[str, Any]) -> Trade:
    return Trade(
        trade_id=str(row.get("exchangeTradeId") or ""),
        broker_order_id=str(row.get("orderId") or ""),
        tradingsymbol=str(row.get("tradingSymbol") or ""),
        side=_side(row.get("transactionType")),
        quantity=to_int(row.get("tradedQuantity")),
        price=to_decimal(row.get("tradedPrice")),
        filled_at=parse_ist_timestamp(row.get("exchangeTime")),
        raw=row,
    )


def read_trades(rows: Any, parse: Callable[[dict[str, Any]], Trade]) -> list[Trade]:
    """Trades with an id from a book (`null`/missing books are empty)."""
    trades = [parse(row) for row in rows or [] if isinstance(row, dict)]
    return [t for t in trades if t.trade_id and t.quantity > 0]
