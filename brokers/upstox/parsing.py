"""Upstox fields, statuses and errors → ours (shared/reference/broker-apis.md §2).

Errors are `{"status":"error","errors":[{"errorCode"|"error_code","message",…}]}`. Classified
once: 429/5xx first (common to all brokers); then invalid token or credentials (401,
UDAPI100050, UDAPI100016, UDAPI100067) → AuthError; a 403 about the IP (static-IP rule, no
documented code) → StaticIPError; other 4xx → input rejected (UDAPI100036/38 invalid input,
UDAPI100010 order not found, UDAPI100040 finished order…).
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

from brokers.base import (
    AuthError,
    BrokerError,
    BrokerOrder,
    Funds,
    InputRejectedError,
    OrderStatus,
    PermanentError,
    Position,
    Product,
    Quote,
    Side,
    StaticIPError,
)
from brokers.httpclient import (
    AnswerLike,
    classify_transport_status,
    to_decimal,
    to_int,
    unreadable_answer,
)
from brokers.httpclient import parse_ist_timestamp as parse_timestamp

logger = logging.getLogger(__name__)

AUTH_CODES = {"UDAPI100050", "UDAPI100016", "UDAPI100067"}
NOT_FOUND = "UDAPI100010"
STATIC_IP = re.compile(r"\bIP\b|static ip", re.IGNORECASE)
PRODUCTS = {"D": Product.NRML, "I": Product.MIS}
PRODUCT_CODES = {v: k for k, v in PRODUCTS.items()}
STATUSES = {
    "complete": OrderStatus.FILLED,
    "rejected": OrderStatus.REJECTED,
    "cancelled": OrderStatus.CANCELLED,
    "open": OrderStatus.OPEN,
    "trigger pending": OrderStatus.OPEN,
    "modified": OrderStatus.OPEN,
    "modify pending": OrderStatus.OPEN,
    "modify validation pending": OrderStatus.OPEN,
    "cancel pending": OrderStatus.OPEN,
}


def first_error(body: Any) -> tuple[str, str]:
    """(code, message) of the first entry of `errors[]`, camel or snake case."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return "", ""
    error = errors[0]
    code = error.get("errorCode") or error.get("error_code") or ""
    return str(code), str(error.get("message") or "")


def error_for(response: AnswerLike, body: Any, *, write: bool) -> BrokerError:
    code, message = first_error(body)
    message = message or f"Upstox answered HTTP {response.status_code}."
    common = classify_transport_status(response, write=write, body=body, message=message)
    if common is not None:
        common.code = common.code or code
        return common
    if not isinstance(body, dict):
        # Not the broker's JSON: a 2xx may still be an accepted order (ambiguous on a write).
        return unreadable_answer(response, write=write, broker="Upstox")
    kwargs: dict[str, Any] = {"code": code, "http_status": response.status_code, "raw": body}
    if response.status_code == 401 or code in AUTH_CODES:
        return AuthError(message, **kwargs)
    if response.status_code == 403 and STATIC_IP.search(message):
        return StaticIPError(message, **kwargs)
    if 400 <= response.status_code < 500:
        return InputRejectedError(message, **kwargs)
    return PermanentError(message, **kwargs)


def order_status(row: dict[str, Any]) -> OrderStatus:
    raw = str(row.get("status") or "").lower()
    status = STATUSES.get(raw)
    if status is None:
        if not raw.endswith(("pending", "received")):
            logger.warning("Unknown Upstox order status %r; treated as pending", raw)
        return OrderStatus.PENDING
    if status == OrderStatus.OPEN and to_int(row.get("filled_quantity")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def to_broker_order(row: dict[str, Any]) -> BrokerOrder:
    average = to_decimal(row.get("average_price"))
    return BrokerOrder(
        broker_order_id=str(row["order_id"]),
        tag=str(row.get("tag") or ""),
        tradingsymbol=str(row.get("trading_symbol") or row.get("tradingsymbol") or ""),
        side=Side(row["transaction_type"]),
        quantity=to_int(row.get("quantity")),
        filled_quantity=to_int(row.get("filled_quantity")),
        average_price=average or None,
        status=order_status(row),
        status_message=str(row.get("status_message") or ""),
        placed_at=parse_timestamp(row.get("order_timestamp")),
        raw=row,
    )


def to_position(row: dict[str, Any]) -> Position | None:
    """None for products outside our F&O scope (MTF, CO…)."""
    product = PRODUCTS.get(str(row.get("product")))
    if product is None:
        return None
    return Position(
        exchange=str(row["exchange"]),
        tradingsymbol=str(row.get("tradingsymbol") or row.get("trading_symbol") or ""),
        product=product,
        quantity=to_int(row.get("quantity")),
        average_price=to_decimal(row.get("average_price")),
        last_price=to_decimal(row.get("last_price")),
        realised_pnl=to_decimal(row.get("realised")),
        unrealised_pnl=to_decimal(row.get("unrealised")),
    )


def to_funds(equity: dict[str, Any]) -> Funds:
    available = to_decimal(equity.get("available_margin"))
    used = to_decimal(equity.get("used_margin"))
    return Funds(available=available, used=used, total=available + used)


def to_quotes(data: dict[str, Any], asked: list[str]) -> dict[str, Quote]:
    """The LTP answer is keyed `<segment>:<symbol>`; map it back to the keys asked for."""
    result = {}
    for name, row in data.items():
        key = str(row.get("instrument_token") or "")
        if key in asked:
            result[key] = Quote(
                tradingsymbol=name.partition(":")[2] or name,
                last_price=to_decimal(row.get("last_price")),
            )
    return result


def price_text(value: Decimal | None) -> float:
    """Upstox takes prices as JSON numbers."""
    return float(value) if value is not None else 0.0
