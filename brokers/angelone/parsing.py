"""Angel One SmartAPI fields, statuses and errors, mapped to ours (broker-apis.md §3).

Angel answers most application errors with HTTP 200 and `"status": false`; its gateway uses
another envelope (`"success": false`, `errorCode` AG8xxx); rate-limit replies may be plain text.
Everything is classified here, once.
"""

from __future__ import annotations

import re
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

PRODUCT_TO_ANGEL = {Product.NRML: "CARRYFORWARD", Product.MIS: "INTRADAY"}
PRODUCT_FROM_ANGEL = {"CARRYFORWARD": Product.NRML, "NRML": Product.NRML, "INTRADAY": Product.MIS}

# Lower-case `status` values of the order book. Transient states before the exchange confirms
# the order are "pending" for us; anything unknown is too (non-terminal: we keep polling).
_STATUS = {
    "open": OrderStatus.OPEN,
    "trigger pending": OrderStatus.OPEN,
    "complete": OrderStatus.FILLED,
    "rejected": OrderStatus.REJECTED,
    "cancelled": OrderStatus.CANCELLED,
}

# Token missing/invalid/expired (gateway AG8xxx; AB1010 session expired, AB1011 not logged in;
# AB8050/AB8051 refresh token invalid/expired).
_AUTH_CODES = {"AB1010", "AB1011", "AB8050", "AB8051"}
# "Something went wrong / internal error": the OMS may or may not have acted.
_UNKNOWN_OUTCOME_CODES = {"AB1004", "AB2000", "AB2001"}
ORDER_NOT_FOUND_CODES = {"AB1007", "AB1013"}

_RATE_TEXT = re.compile(r"exceeding access rate|too many requests", re.IGNORECASE)
_STATIC_IP_TEXT = re.compile(r"static ip|\bip address\b|\bregistered ip\b", re.IGNORECASE)


def order_payload(order: OrderRequest) -> dict[str, str]:
    """placeOrder body. SmartAPI takes string values; quantity is in units."""
    payload = {
        "variety": "NORMAL",
        "tradingsymbol": order.tradingsymbol,
        "symboltoken": order.instrument_token,
        "transactiontype": order.side.value,
        "exchange": order.exchange,
        "ordertype": order.order_type.value,
        "producttype": PRODUCT_TO_ANGEL[order.product],
        "duration": "DAY",
        "price": price_text(order.price if order.order_type is OrderType.LIMIT else None),
        "triggerprice": "0",
        "squareoff": "0",
        "stoploss": "0",
        "quantity": str(order.quantity),
        "ordertag": order.tag,
    }
    return payload


def price_text(price: Decimal | None) -> str:
    """A price as placeOrder takes it (a string; "0" for none)."""
    return "0" if price is None else format(price, "f")


def check(response: requests.Response, *, write: bool, login: bool = False) -> dict[str, Any]:
    """The decoded body of a successful answer; otherwise raise the one matching BrokerError.

    `login` marks the login endpoints, where any refusal means the credentials are wrong.
    """
    body = json_body(response)
    if body is None and _RATE_TEXT.search(response.text or ""):
        raise RateLimitedError(
            "Angel One: too many requests.",
            retry_after=retry_after_seconds(response),
            http_status=response.status_code,
            raw=response.text[:200],
        )
    message = _message(body)
    common = classify_transport_status(response, write=write, body=body, message=message)
    if common is not None:
        raise common
    if not isinstance(body, dict):
        raise unreadable_answer(response, write=write, broker="Angel One")
    if body.get("success") is False:  # gateway envelope
        code = str(body.get("errorCode") or "")
        if code.startswith("AG8"):
            raise AuthError(
                f"Angel One: {message or 'invalid token'}. Log in again.",
                code=code,
                http_status=response.status_code,
                raw=body,
            )
        raise _app_error(body, code, message, response.status_code, write=write, login=login)
    if body.get("status") is True and response.ok:
        return body
    code = str(body.get("errorcode") or body.get("errorCode") or "")
    raise _app_error(body, code, message, response.status_code, write=write, login=login)


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or "").strip()
    return ""


def _app_error(
    body: dict[str, Any], code: str, message: str, http_status: int, *, write: bool, login: bool
) -> BrokerError:
    words = f"Angel One: {message or 'request refused'}"
    kwargs: dict[str, Any] = {"code": code, "http_status": http_status, "raw": body}
    if _STATIC_IP_TEXT.search(message):
        return StaticIPError(words + ". Register this server's static IP with Angel One.", **kwargs)
    if login or code in _AUTH_CODES or http_status in (401, 403):
        return AuthError(words + ". Log in again.", **kwargs)
    if code in _UNKNOWN_OUTCOME_CODES:
        if write:
            return AmbiguousError(words + ". The order may exist: look it up by tag.", **kwargs)
        return RetryableError(words, **kwargs)
    return InputRejectedError(words, **kwargs)


def status_of(row: dict[str, Any]) -> OrderStatus:
    status = _STATUS.get(str(row.get("status") or row.get("orderstatus") or "").lower())
    if status is None:
        return OrderStatus.PENDING
    if status is OrderStatus.OPEN and to_int(row.get("filledshares")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def order_from_row(row: dict[str, Any]) -> BrokerOrder:
    """One order-book (or order-details) row. Our id is `uniqueorderid`, the one key the
    details endpoint accepts; the numeric `orderid` stays in `raw` for modify and cancel."""
    average = to_decimal(row.get("averageprice"))
    return BrokerOrder(
        broker_order_id=str(row.get("uniqueorderid") or row.get("orderid") or ""),
        tag=str(row.get("ordertag") or ""),
        tradingsymbol=str(row.get("tradingsymbol") or ""),
        side=Side(str(row.get("transactiontype") or "BUY").upper()),
        quantity=to_int(row.get("quantity")),
        filled_quantity=to_int(row.get("filledshares")),
        average_price=average if average > 0 else None,
        status=status_of(row),
        status_message=str(row.get("text") or ""),
        raw=row,
    )


def orders_from_book(body: dict[str, Any]) -> list[BrokerOrder]:
    # An empty book is `"data": null`, not a list.
    return [order_from_row(row) for row in body.get("data") or []]


def positions_from(body: dict[str, Any]) -> list[Position]:
    positions = []
    for row in body.get("data") or []:
        product = PRODUCT_FROM_ANGEL.get(str(row.get("producttype") or "").upper())
        if product is None:
            continue  # delivery or margin-funded equity: outside what this platform trades
        net = to_int(row.get("netqty"))
        if net > 0:
            average = to_decimal(row.get("buyavgprice"))
        elif net < 0:
            average = to_decimal(row.get("sellavgprice"))
        else:
            average = to_decimal(row.get("avgnetprice"))
        positions.append(
            Position(
                exchange=str(row.get("exchange") or ""),
                tradingsymbol=str(row.get("tradingsymbol") or ""),
                product=product,
                quantity=net,
                average_price=average,
                last_price=to_decimal(row.get("ltp")),
                realised_pnl=to_decimal(row.get("realised")),
                unrealised_pnl=to_decimal(row.get("unrealised")),
            )
        )
    return positions


def funds_from(body: dict[str, Any]) -> Funds:
    data = body.get("data") or {}
    # `net` is the usable margin; `availablecash` carries the same figure on most accounts.
    available = to_decimal(data.get("net"), to_decimal(data.get("availablecash")))
    used = to_decimal(data.get("utiliseddebits"))
    return Funds(available=available, used=used, total=available + used)
