"""Dhan's and Angel One's answers classed into the one error taxonomy (resend, look up, log in
again, give up), and their position rows read for long, short and flat legs. Payloads are shaped
as the brokers document them (shared/reference/broker-apis.md); each case could be misread."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from brokers.angelone import parsing as angel
from brokers.base import (
    AmbiguousError,
    AuthError,
    InputRejectedError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    StaticIPError,
    WireAnswer,
)
from brokers.dhan import parsing as dhan
from execution.send.sender import error_class


def _answer(status: int, body) -> WireAnswer:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return WireAnswer.of(status, {}, raw)


# --- Dhan ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "write", "expected"),
    [
        (400, {"errorCode": "DH-904", "errorMessage": "Too many requests"}, True, RateLimitedError),
        (400, {"data": {"805": "Too many requests on the data API"}}, False, RateLimitedError),
        (400, {"errorCode": "DH-902", "errorMessage": "No API access"}, True, PermanentError),
        (500, {"errorCode": "DH-908", "errorMessage": "Internal error"}, True, AmbiguousError),
        (400, {"errorCode": "DH-909", "errorMessage": "Backend unreachable"}, True, AmbiguousError),
        (
            400,
            {"errorCode": "DH-909", "errorMessage": "Backend unreachable"},
            False,
            RetryableError,
        ),
        (400, {"data": {"807": "Access token expired"}}, False, AuthError),
        (401, {"errorMessage": "Unauthorised"}, False, AuthError),
        (
            400,
            {"errorCode": "DH-905", "errorMessage": "Request from unregistered IP address"},
            True,
            StaticIPError,
        ),
        (400, {"errorCode": "DH-906", "errorMessage": "Invalid price"}, True, InputRejectedError),
        (200, {"status": "failure", "remarks": "Order rejected"}, True, InputRejectedError),
    ],
)
def test_dhan_answers_are_classed_once(status, body, write, expected):
    with pytest.raises(expected) as raised:
        dhan.check(_answer(status, body), write=write)
    assert type(raised.value) is expected
    assert raised.value.message  # in words, for the trader and the audit


def test_dhan_login_refusals_always_mean_log_in_again():
    with pytest.raises(AuthError, match="Log in again"):
        dhan.check(
            _answer(400, {"errorCode": "DH-906", "errorMessage": "bad"}), write=False, login=True
        )


def test_dhan_reads_long_short_and_flat_positions_and_skips_other_segments():
    rows = [
        {"productType": "MARGIN", "exchangeSegment": "NSE_FNO", "tradingSymbol": "L",
         "netQty": 75, "buyAvg": "100.5", "sellAvg": "0", "realizedProfit": "0"},
        {"productType": "INTRADAY", "exchangeSegment": "BSE_FNO", "tradingSymbol": "S",
         "netQty": -20, "buyAvg": "0", "sellAvg": "210.25", "unrealizedProfit": "-40"},
        {"productType": "MARGIN", "exchangeSegment": "NSE_FNO", "tradingSymbol": "F",
         "netQty": 0, "buyAvg": "90", "sellAvg": "95", "realizedProfit": "375"},
        {"productType": "CNC", "exchangeSegment": "NSE_EQ", "tradingSymbol": "INFY", "netQty": 5},
    ]  # fmt: skip
    long, short, flat = dhan.positions_from(rows)
    assert (long.exchange, long.quantity, long.average_price) == ("NFO", 75, Decimal("100.5"))
    assert (short.exchange, short.quantity, short.average_price) == ("BFO", -20, Decimal("210.25"))
    assert short.unrealised_pnl == Decimal("-40")
    assert (flat.quantity, flat.average_price, flat.realised_pnl) == (0, 0, Decimal("375"))


def test_dhan_timestamps_and_token_expiry_are_ist_and_zeros_mean_none():
    assert dhan.token_expiry("2026-12-05T08:00:00").isoformat() == "2026-12-05T02:30:00+00:00"
    assert dhan.token_expiry("2026-12-05T08:00:00+00:00").hour == 8
    assert dhan.token_expiry("never") is None
    assert dhan._ist_timestamp("0000-00-00 00:00:00") is None


# --- Angel One ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "write", "expected"),
    [
        (
            200,
            {"success": False, "errorCode": "AG8001", "message": "Invalid Token"},
            False,
            AuthError,
        ),
        (
            200,
            {"success": False, "errorCode": "AB1004", "message": "Something went wrong"},
            True,
            AmbiguousError,
        ),
        (
            200,
            {"status": False, "errorcode": "AB1004", "message": "Something went wrong"},
            False,
            RetryableError,
        ),
        (
            200,
            {"status": False, "errorcode": "AB2000", "message": "Error not specified"},
            True,
            AmbiguousError,
        ),
        (
            200,
            {"status": False, "errorcode": "AB1010", "message": "AMX Session Expired"},
            False,
            AuthError,
        ),
        (403, {"status": False, "errorcode": "AB9000", "message": "Forbidden"}, False, AuthError),
        (
            200,
            {
                "status": False,
                "errorcode": "AB4008",
                "message": "Request from unregistered IP address",
            },
            True,
            StaticIPError,
        ),
        (
            200,
            {"status": False, "errorcode": "AB1012", "message": "Invalid product type"},
            True,
            InputRejectedError,
        ),
    ],
)
def test_angel_one_answers_are_classed_once(status, body, write, expected):
    with pytest.raises(expected) as raised:
        angel.check(_answer(status, body), write=write)
    assert type(raised.value) is expected


def test_angel_one_plain_text_rate_limit_is_retryable_and_other_text_is_unreadable():
    with pytest.raises(RateLimitedError) as limited:
        angel.check(_answer(403, b"Access denied because of exceeding access rate"), write=True)
    assert error_class(limited.value) == "retryable"
    with pytest.raises(AmbiguousError):
        angel.check(_answer(200, b"<html>gateway</html>"), write=True)


def test_angel_one_reads_long_short_and_flat_positions_and_skips_delivery():
    body = {
        "data": [
            {"producttype": "CARRYFORWARD", "exchange": "NFO", "tradingsymbol": "L",
             "netqty": "75", "buyavgprice": "100.5", "sellavgprice": "0", "ltp": "101"},
            {"producttype": "INTRADAY", "exchange": "NFO", "tradingsymbol": "S",
             "netqty": "-75", "buyavgprice": "0", "sellavgprice": "120", "ltp": "119"},
            {"producttype": "NRML", "exchange": "BFO", "tradingsymbol": "F",
             "netqty": "0", "avgnetprice": "3.5", "ltp": "0"},
            {"producttype": "DELIVERY", "exchange": "NSE", "tradingsymbol": "INFY", "netqty": "1"},
        ]
    }  # fmt: skip
    long, short, flat = angel.positions_from(body)
    assert (long.quantity, long.average_price) == (75, Decimal("100.5"))
    assert (short.quantity, short.average_price) == (-75, Decimal("120"))
    assert (flat.exchange, flat.quantity, flat.average_price) == ("BFO", 0, Decimal("3.5"))


def test_angel_one_status_of_an_open_order_with_fills_is_partially_filled():
    assert angel.status_of({"status": "open", "filledshares": "25"}).value == "partially_filled"
    assert angel.status_of({"orderstatus": "open", "filledshares": "0"}).value == "open"
    assert angel.status_of({"status": "validation pending"}).value == "pending"
