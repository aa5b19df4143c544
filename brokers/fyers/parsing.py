"""Fyers v3 fields, statuses and errors, mapped to ours (broker-apis.md §4).

Fyers answers `{"s": "ok"|"error", "code": <int>, "message": ...}`; error codes are negative.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import requests

from brokers.base import (
    AuthError,
    BrokerOrder,
    Funds,
    InputRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    RateLimitedError,
    Side,
    StaticIPError,
)
from brokers.httpclient import (
    classify_transport_status,
    json_body,
    retry_after_seconds,
    to_decimal,
    to_int,
    unreadable_answer,
)

EXCHANGE_PREFIX = {"NFO": "NSE", "BFO": "BSE"}
PRODUCT_TO_FYERS = {Product.NRML: "MARGIN", Product.MIS: "INTRADAY"}
PRODUCT_FROM_FYERS = {"MARGIN": Product.NRML, "INTRADAY": Product.MIS}
TYPE_LIMIT, TYPE_MARKET = 1, 2
SIDE_TO_FYERS = {Side.BUY: 1, Side.SELL: -1}

# Order status codes: 1 cancelled, 2 traded, 3 (unused), 4 transit, 5 rejected, 6 pending,
# 7 expired. An expired day order is, for us, cancelled by the exchange.
_STATUS = {
    1: OrderStatus.CANCELLED,
    2: OrderStatus.FILLED,
    4: OrderStatus.PENDING,
    5: OrderStatus.REJECTED,
    6: OrderStatus.OPEN,
    7: OrderStatus.CANCELLED,
}
# Segment 11 is F&O; exchange 10 NSE, 12 BSE.
_FNO_EXCHANGE = {10: "NFO", 12: "BFO"}
_FNO_SEGMENT = 11

CODE_ORDER_SENT_NO_ACK = 201  # "sent, no acknowledgement": the order may exist
AUTH_CODES = {-8, -15, -16, -17, -352, -371}
RATE_CODES = {-429, -353}
_STATIC_IP_TEXT = re.compile(r"static ip|\bip address\b|\bregistered ip\b", re.IGNORECASE)


def fyers_symbol(order: OrderRequest) -> str:
    """`NSE:NIFTY25JUN24000CE`: the exchange prefix is added when the symbol lacks one."""
    return symbol_text(order.tradingsymbol, order.exchange)


def symbol_text(tradingsymbol: str, exchange: str) -> str:
    """fyers_symbol of a symbol traded on `exchange`."""
    if ":" in tradingsymbol:
        return tradingsymbol
    return f"{EXCHANGE_PREFIX[exchange]}:{tradingsymbol}"


def limit_price(price: Decimal | None) -> float:
    """`limitPrice` of a LIMIT order (a JSON number; 0 for none)."""
    return float(price if price else Decimal(0))


def order_payload(order: OrderRequest) -> dict[str, Any]:
    """POST /api/v3/orders/sync body. MARKET needs no protection field: Fyers itself turns it
    into a protected LIMIT (since 1-Apr-2026)."""
    limit = order.price if order.order_type is OrderType.LIMIT else None
    return {
        "symbol": fyers_symbol(order),
        "qty": order.quantity,
        "type": TYPE_LIMIT if order.order_type is OrderType.LIMIT else TYPE_MARKET,
        "side": SIDE_TO_FYERS[order.side],
        "productType": PRODUCT_TO_FYERS[order.product],
        "limitPrice": limit_price(limit),
        "stopPrice": 0,
        "disclosedQty": 0,
        "validity": "DAY",
        "offlineOrder": False,
        "stopLoss": 0,
        "takeProfit": 0,
        "orderTag": order.tag,
    }


def check(response: requests.Response, *, write: bool, login: bool = False) -> dict[str, Any]:
    """The decoded body of a successful answer; otherwise raise the one matching BrokerError."""
    body = json_body(response)
    message = str(body.get("message") or "").strip() if isinstance(body, dict) else ""
    code = to_int(body.get("code")) if isinstance(body, dict) else 0
    if code in RATE_CODES:
        raise RateLimitedError(
            f"Fyers: {message or 'too many requests'}.",
            retry_after=retry_after_seconds(response),
            code=str(code),
            http_status=response.status_code,
            raw=body,
        )
    common = classify_transport_status(response, write=write, body=body, message=message)
    if common is not None:
        raise common
    if not isinstance(body, dict):
        raise unreadable_answer(response, write=write, broker="Fyers")
    if body.get("s") == "ok" and response.ok:
        return body
    words = f"Fyers: {message or 'request refused'}"
    kwargs: dict[str, Any] = {"code": str(code), "http_status": response.status_code, "raw": body}
    if _STATIC_IP_TEXT.search(message):
        raise StaticIPError(words + ". Register this server's static IP with Fyers.", **kwargs)
    if login or code in AUTH_CODES or response.status_code == 401:
        raise AuthError(words + ". Log in again.", **kwargs)
    raise InputRejectedError(words, **kwargs)


def tag_of(order_tag: Any) -> str:
    """Books show user tags as `1:<tag>` and Fyers' own as `2:…` (`2:Untagged`)."""
    text = str(order_tag or "")
    prefix, sep, rest = text.partition(":")
    if not sep:
        return text
    return rest if prefix == "1" else ""


def status_of(row: dict[str, Any]) -> OrderStatus:
    status = _STATUS.get(to_int(row.get("status")), OrderStatus.PENDING)
    if status is OrderStatus.OPEN and to_int(row.get("filledQty")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order_from_row(row: dict[str, Any]) -> BrokerOrder:
    traded = to_decimal(row.get("tradedPrice"))
    symbol = str(row.get("symbol") or "")
    return BrokerOrder(
        broker_order_id=str(row.get("id") or ""),
        tag=tag_of(row.get("orderTag")),
        tradingsymbol=symbol.partition(":")[2] or symbol,
        side=Side.BUY if to_int(row.get("side")) == 1 else Side.SELL,
        quantity=to_int(row.get("qty")),
        filled_quantity=to_int(row.get("filledQty")),
        average_price=traded if traded > 0 else None,
        status=status_of(row),
        status_message=str(row.get("message") or ""),
        raw=row,
    )


def orders_from_book(body: dict[str, Any]) -> list[BrokerOrder]:
    return [order_from_row(row) for row in body.get("orderBook") or []]


def positions_from(body: dict[str, Any]) -> list[Position]:
    positions = []
    for row in body.get("netPositions") or []:
        product = PRODUCT_FROM_FYERS.get(str(row.get("productType") or ""))
        exchange = _FNO_EXCHANGE.get(to_int(row.get("exchange")))
        if product is None or exchange is None or to_int(row.get("segment")) != _FNO_SEGMENT:
            continue  # equity, currency or commodity: outside what this platform trades
        symbol = str(row.get("symbol") or "")
        positions.append(
            Position(
                exchange=exchange,
                tradingsymbol=symbol.partition(":")[2] or symbol,
                product=product,
                quantity=to_int(row.get("netQty")),
                average_price=to_decimal(row.get("netAvg")),
                last_price=to_decimal(row.get("ltp")),
                realised_pnl=to_decimal(row.get("realized_profit")),
                unrealised_pnl=to_decimal(row.get("unrealized_profit")),
            )
        )
    return positions


# fund_limit ids: 1 Total Balance, 2 Utilized Amount, 10 Available Balance.
FUND_TOTAL, FUND_UTILIZED, FUND_AVAILABLE = 1, 2, 10


def funds_from(body: dict[str, Any]) -> Funds:
    amounts = {
        to_int(row.get("id")): to_decimal(row.get("equityAmount"))
        for row in body.get("fund_limit") or []
    }
    available = amounts.get(FUND_AVAILABLE, Decimal(0))
    used = amounts.get(FUND_UTILIZED, Decimal(0))
    return Funds(available=available, used=used, total=amounts.get(FUND_TOTAL, available + used))
