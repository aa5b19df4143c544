"""DhanHQ v2 fields, statuses and errors, mapped to ours (broker-apis.md §5).

Successful calls answer raw JSON (no wrapper); failures `{"errorType", "errorCode": "DH-9xx",
"errorMessage"}`. DH-901/902 are verified; DH-903…910 follow Dhan's annexure as quoted by a
third party (reference §6 lists the full table as unverified).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import requests

from brokers.base import (
    AmbiguousError,
    AuthError,
    BrokerError,
    BrokerOrder,
    Funds,
    InputRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentError,
    Position,
    Product,
    RateLimitedError,
    RetryableError,
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
from execution.markettime import IST

SEGMENT_TO_DHAN = {"NFO": "NSE_FNO", "BFO": "BSE_FNO"}
SEGMENT_FROM_DHAN = {dhan: ours for ours, dhan in SEGMENT_TO_DHAN.items()}
PRODUCT_TO_DHAN = {Product.NRML: "MARGIN", Product.MIS: "INTRADAY"}
PRODUCT_FROM_DHAN = {"MARGIN": Product.NRML, "INTRADAY": Product.MIS}

_STATUS = {
    "TRANSIT": OrderStatus.PENDING,
    "PENDING": OrderStatus.OPEN,
    "PART_TRADED": OrderStatus.PARTIALLY_FILLED,
    "TRADED": OrderStatus.FILLED,
    "REJECTED": OrderStatus.REJECTED,
    "CANCELLED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.CANCELLED,  # a day order the exchange ended unfilled
}

AUTH_CODE = "DH-901"
RATE_CODE = "DH-904"
_PERMANENT_CODES = {"DH-902", "DH-903"}  # no API access / account not enabled for the segment
_SERVER_CODES = {"DH-908", "DH-909"}  # Dhan could not process or reach its backend
# Market-feed (data API) codes: 805 too many requests; 806…810 subscription and token.
_DATA_RATE_CODES = {"805"}
_DATA_AUTH_CODES = {"806", "807", "808", "809", "810"}
_STATIC_IP_TEXT = re.compile(r"static ip|\bip address\b|\bregistered ip\b", re.IGNORECASE)


def limit_price(price: Decimal | None) -> float:
    """`price` of a LIMIT order (a JSON number; 0 for none)."""
    return float(price if price else Decimal(0))


def order_payload(order: OrderRequest, *, client_id: str) -> dict[str, Any]:
    """POST /v2/orders body. `correlationId` carries our tag so the order can be found after
    a lost answer. MARKET has no protection field: Dhan itself makes it a protected LIMIT."""
    limit = order.price if order.order_type is OrderType.LIMIT else None
    return {
        "dhanClientId": client_id,
        "correlationId": order.tag,
        "transactionType": order.side.value,
        "exchangeSegment": SEGMENT_TO_DHAN[order.exchange],
        "productType": PRODUCT_TO_DHAN[order.product],
        "orderType": order.order_type.value,
        "validity": "DAY",
        "securityId": order.instrument_token,
        "quantity": order.quantity,
        "disclosedQuantity": 0,
        "price": limit_price(limit),
        "triggerPrice": 0,
        "afterMarketOrder": False,
    }


def check(response: requests.Response, *, write: bool, login: bool = False) -> Any:
    """The decoded body of a successful answer; otherwise raise the one matching BrokerError."""
    body = json_body(response)
    code = str(body.get("errorCode") or "") if isinstance(body, dict) else ""
    message = _message(body)
    if code == RATE_CODE:
        raise RateLimitedError(
            f"Dhan: {message or 'too many requests'}.",
            retry_after=retry_after_seconds(response),
            code=code,
            http_status=response.status_code,
            raw=body,
        )
    common = classify_transport_status(response, write=write, body=body, message=message)
    if common is not None:
        raise common
    if body is None:
        raise unreadable_answer(response, write=write, broker="Dhan")
    failed = isinstance(body, dict) and (
        code or body.get("status") in ("failure", "failed", "error")
    )
    if response.ok and not failed:
        return body
    raise _error(body, code, message, response.status_code, write=write, login=login)


def _message(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    text = body.get("errorMessage") or body.get("message") or body.get("remarks") or ""
    if not text and isinstance(body.get("data"), dict):  # data API: {"data": {"805": "…"}}
        text = " ".join(str(v) for v in body["data"].values())
    return str(text).strip()


def _error(
    body: Any, code: str, message: str, http_status: int, *, write: bool, login: bool
) -> BrokerError:
    words = f"Dhan: {message or 'request refused'}"
    data = body.get("data") if isinstance(body, dict) else None
    data_codes = set(data) if isinstance(data, dict) else set()
    kwargs: dict[str, Any] = {"code": code, "http_status": http_status, "raw": body}
    if _STATIC_IP_TEXT.search(message):
        return StaticIPError(words + ". Register this server's static IP with Dhan.", **kwargs)
    if data_codes & _DATA_RATE_CODES:
        return RateLimitedError(words, **kwargs)
    if login or code == AUTH_CODE or http_status == 401 or data_codes & _DATA_AUTH_CODES:
        return AuthError(words + ". Log in again.", **kwargs)
    if code in _PERMANENT_CODES:
        return PermanentError(words, **kwargs)
    if code in _SERVER_CODES:
        if write:
            return AmbiguousError(words + ". The order may exist: look it up by tag.", **kwargs)
        return RetryableError(words, **kwargs)
    return InputRejectedError(words, **kwargs)


def status_of(row: dict[str, Any]) -> OrderStatus:
    return _STATUS.get(str(row.get("orderStatus") or "").upper(), OrderStatus.PENDING)


def _ist_timestamp(value: Any) -> datetime | None:
    """Dhan's 'YYYY-MM-DD HH:MM:SS' (IST, no zone); Dhan sends zeros when there is none."""
    try:
        naive = datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return naive.replace(tzinfo=IST).astimezone(UTC)


def order_from_row(row: dict[str, Any]) -> BrokerOrder:
    average = to_decimal(row.get("averageTradedPrice"))
    reason = row.get("omsErrorDescription") or ""
    return BrokerOrder(
        broker_order_id=str(row.get("orderId") or ""),
        tag=str(row.get("correlationId") or ""),
        tradingsymbol=str(row.get("tradingSymbol") or ""),
        side=Side(str(row.get("transactionType") or "BUY").upper()),
        quantity=to_int(row.get("quantity")),
        filled_quantity=to_int(row.get("filledQty")),
        average_price=average if average > 0 else None,
        status=status_of(row),
        status_message=str(reason),
        placed_at=_ist_timestamp(row.get("createTime")),
        raw=row,
    )


def positions_from(rows: Any) -> list[Position]:
    positions = []
    for row in rows or []:
        product = PRODUCT_FROM_DHAN.get(str(row.get("productType") or ""))
        exchange = SEGMENT_FROM_DHAN.get(str(row.get("exchangeSegment") or ""))
        if product is None or exchange is None:
            continue  # equity, currency or commodity: outside what this platform trades
        net = to_int(row.get("netQty"))
        if net > 0:
            average = to_decimal(row.get("buyAvg"))
        elif net < 0:
            average = to_decimal(row.get("sellAvg"))
        else:
            average = Decimal(0)
        positions.append(
            Position(
                exchange=exchange,
                tradingsymbol=str(row.get("tradingSymbol") or ""),
                product=product,
                quantity=net,
                average_price=average,
                # Dhan's position rows carry no last price; P&L is given directly.
                last_price=Decimal(0),
                realised_pnl=to_decimal(row.get("realizedProfit")),
                unrealised_pnl=to_decimal(row.get("unrealizedProfit")),
            )
        )
    return positions


def funds_from(body: dict[str, Any]) -> Funds:
    # `availabelBalance` is Dhan's own spelling.
    available = to_decimal(body.get("availabelBalance"))
    used = to_decimal(body.get("utilizedAmount"))
    return Funds(available=available, used=used, total=available + used)


def token_expiry(value: Any) -> datetime | None:
    """`expiryTime` is ISO without a zone: Dhan means IST."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=IST)
    return moment.astimezone(UTC)
