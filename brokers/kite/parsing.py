"""Kite's fields, statuses and errors → ours (shared/reference/broker-apis.md §1).

Errors are classified here, once. The body is `{"status":"error","message","error_type"}`;
the HTTP status decides 429/5xx first (common to all brokers), then `error_type`:
TokenException → AuthError; a PermissionException about the IP (the emulator's assumed shape
for the SEBI static-IP refusal, §7) → StaticIPError; Input/Order/Margin/Holding → input
rejected; everything else permanent.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

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
IST = ZoneInfo("Asia/Kolkata")

# 502 is "the backend OMS is down" (shared/reference/broker-apis.md §1.3, from Kite's
# exceptions page): the API could not hand the order to the OMS, so it was not accepted. Kite's
# other 5xx (500, 503, 504) may follow an accepted order: ambiguous on a write.
NOT_ACCEPTED_5XX = frozenset({502})
INPUT_ERRORS = {"InputException", "OrderException", "MarginException", "HoldingException"}
STATIC_IP = re.compile(r"\bIP\b|static ip", re.IGNORECASE)
# Live statuses other than these (the *PENDING / REQ RECEIVED transients) are "pending".
STATUSES = {
    "COMPLETE": OrderStatus.FILLED,
    "REJECTED": OrderStatus.REJECTED,
    "CANCELLED": OrderStatus.CANCELLED,
    "OPEN": OrderStatus.OPEN,
    "TRIGGER PENDING": OrderStatus.OPEN,
    "MODIFIED": OrderStatus.OPEN,
    "MODIFY PENDING": OrderStatus.OPEN,
    "MODIFY VALIDATION PENDING": OrderStatus.OPEN,
    "CANCEL PENDING": OrderStatus.OPEN,
}


def error_for(response: AnswerLike, body: Any, *, write: bool) -> BrokerError:
    payload = body if isinstance(body, dict) else {}
    message = str(payload.get("message") or f"Kite answered HTTP {response.status_code}.")
    error_type = str(payload.get("error_type") or "")
    common = classify_transport_status(
        response, write=write, body=body, message=message, not_accepted=NOT_ACCEPTED_5XX
    )
    if common is not None:
        common.code = common.code or error_type
        return common
    if not isinstance(body, dict):
        # Not the broker's JSON: a 2xx may still be an accepted order (ambiguous on a write).
        return unreadable_answer(response, write=write, broker="Kite")
    kwargs: dict[str, Any] = {"code": error_type, "http_status": response.status_code, "raw": body}
    if error_type == "TokenException":
        return AuthError(message, **kwargs)
    if error_type == "PermissionException" and STATIC_IP.search(message):
        return StaticIPError(message, **kwargs)
    if error_type in INPUT_ERRORS:
        return InputRejectedError(message, **kwargs)
    return PermanentError(message, **kwargs)


def order_status(row: dict[str, Any]) -> OrderStatus:
    raw = str(row.get("status") or "")
    status = STATUSES.get(raw)
    if status is None:
        if raw.endswith(("PENDING", "RECEIVED")):
            return OrderStatus.PENDING
        logger.warning("Unknown Kite order status %r; treated as pending", raw)
        return OrderStatus.PENDING
    if status == OrderStatus.OPEN and to_int(row.get("filled_quantity")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def to_broker_order(row: dict[str, Any]) -> BrokerOrder:
    average = to_decimal(row.get("average_price"))
    return BrokerOrder(
        broker_order_id=str(row["order_id"]),
        tag=str(row.get("tag") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
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
    """None for products outside our F&O scope (CNC, MTF)."""
    try:
        product = Product(str(row.get("product")))
    except ValueError:
        return None
    return Position(
        exchange=str(row["exchange"]),
        tradingsymbol=str(row["tradingsymbol"]),
        product=product,
        quantity=to_int(row.get("quantity")),
        average_price=to_decimal(row.get("average_price")),
        last_price=to_decimal(row.get("last_price")),
        realised_pnl=to_decimal(row.get("realised")),
        unrealised_pnl=to_decimal(row.get("unrealised")),
    )


def to_funds(equity: dict[str, Any]) -> Funds:
    available = to_decimal(equity.get("net"))
    used = to_decimal((equity.get("utilised") or {}).get("debits"))
    return Funds(available=available, used=used, total=available + used)


def to_quote(key: str, row: dict[str, Any]) -> Quote:
    depth = row.get("depth") or {}

    def best(side: str) -> Decimal | None:
        levels = depth.get(side) or []
        price = to_decimal(levels[0].get("price")) if levels else Decimal(0)
        return price or None

    return Quote(
        tradingsymbol=key.partition(":")[2] or key,
        last_price=to_decimal(row.get("last_price")),
        bid=best("buy"),
        ask=best("sell"),
        oi=int(to_decimal(row["oi"])) if row.get("oi") not in (None, "") else None,
    )
