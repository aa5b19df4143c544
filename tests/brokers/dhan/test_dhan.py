"""Dhan v2: recorded shapes against the reference (§5), and the adapter against the emulator
over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from brokers.base import (
    AmbiguousError,
    AuthError,
    Credentials,
    InputRejectedError,
    OrderStatus,
    Product,
    RateLimitedError,
    RetryableError,
    StaticIPError,
)
from brokers.dhan import parsing
from brokers.dhan.adapter import DhanAdapter
from brokers.emulator import start_in_thread
from brokers.emulator.otp import totp
from tests.brokers.fixed_market import (
    CONTRACT,
    FixedQuotes,
    order_request,
    response,
    unused_port,
)

pytestmark = pytest.mark.network

APP_ID, SECRET, CLIENT = "dhanapp1", "dhansecret1", "1100012345"
TOTP_SECRET, PIN = "JBSWY3DPEHPK3PXP", "4321"
REDIRECT = "http://127.0.0.1:9/brokers/callback/dhan/"
SECURITY = "52175"


@pytest.fixture
def emulator():
    running = start_in_thread("dhan", quotes=FixedQuotes())
    running.add_account(
        api_key=APP_ID,
        api_secret=SECRET,
        user_id="ABCD1234E",
        client_id=CLIENT,
        redirect_uri=REDIRECT,
        extra={"pin": PIN, "totp_secret": TOTP_SECRET},
    )
    running.add_instruments(
        [
            {"key": SECURITY, "exchange": "NFO", "tradingsymbol": CONTRACT,
             "broker_symbol": "NIFTY-Jun2025-24000-CE"},
            {"key": "13", "exchange": "NSE", "tradingsymbol": "NIFTY 50"},
        ]
    )  # fmt: skip
    yield running
    running.stop()


def _adapter(emulator, token: str = "", secret: str = SECRET) -> DhanAdapter:
    return DhanAdapter(
        Credentials(api_key=APP_ID, api_secret=secret, access_token=token, client_id=CLIENT),
        base_url=emulator.base_url,
        auth_url=emulator.base_url,
        login_url=emulator.login_url,
        instruments_url=f"{emulator.base_url}/api-data/api-scrip-master.csv",
    )


@pytest.fixture
def adapter(emulator) -> DhanAdapter:
    return _adapter(emulator, emulator.issue_token(APP_ID))


def _order(tag: str, **fields):
    return order_request(tag, **{"instrument_token": SECURITY, **fields})


# --- recorded shapes -----------------------------------------------------------------------
def test_recorded_answers_carry_the_documented_fields(emulator):
    token = emulator.issue_token(APP_ID)
    http = requests.Session()
    http.headers.update({"access-token": token, "client-id": CLIENT})
    base = emulator.base_url
    body = {
        "dhanClientId": CLIENT, "correlationId": "shape1", "transactionType": "BUY",
        "exchangeSegment": "NSE_FNO", "productType": "MARGIN", "orderType": "LIMIT",
        "validity": "DAY", "securityId": SECURITY, "quantity": 75, "price": 99,
    }  # fmt: skip
    place = http.post(f"{base}/v2/orders", json=body, timeout=5).json()
    assert set(place) == {"orderId", "orderStatus"}  # raw, no SDK wrapper
    assert place["orderStatus"] in ("PENDING", "TRANSIT")

    row = http.get(f"{base}/v2/orders/external/shape1", timeout=5).json()
    assert {
        "dhanClientId", "orderId", "exchangeOrderId", "correlationId", "orderStatus",
        "transactionType", "exchangeSegment", "productType", "orderType", "validity",
        "tradingSymbol", "securityId", "quantity", "disclosedQuantity", "price", "triggerPrice",
        "afterMarketOrder", "legName", "createTime", "updateTime", "exchangeTime",
        "drvExpiryDate", "drvOptionType", "drvStrikePrice", "omsErrorCode",
        "omsErrorDescription", "algoId", "remainingQuantity", "averageTradedPrice", "filledQty",
    } <= set(row)  # fmt: skip
    assert row["orderId"] == place["orderId"] and row["orderStatus"] == "PENDING"
    datetime.strptime(row["createTime"], "%Y-%m-%d %H:%M:%S")
    assert isinstance(http.get(f"{base}/v2/orders", timeout=5).json(), list)

    body.update(correlationId="shape2", orderType="MARKET", price=0)
    http.post(f"{base}/v2/orders", json=body, timeout=5)
    [position] = http.get(f"{base}/v2/positions", timeout=5).json()
    assert {"tradingSymbol", "securityId", "positionType", "exchangeSegment", "productType",
            "buyAvg", "buyQty", "sellAvg", "sellQty", "netQty", "realizedProfit",
            "unrealizedProfit", "multiplier"} <= set(position)  # fmt: skip
    assert position["positionType"] == "LONG"
    funds = http.get(f"{base}/v2/fundlimit", timeout=5).json()
    assert {"dhanClientId", "availabelBalance", "sodLimit", "collateralAmount",
            "receiveableAmount", "utilizedAmount", "blockedPayoutAmount",
            "withdrawableBalance"} == set(funds)  # fmt: skip
    ltp = http.post(f"{base}/v2/marketfeed/ltp", json={"IDX_I": [13]}, timeout=5).json()
    assert ltp == {"data": {"IDX_I": {"13": {"last_price": 24012.35}}}, "status": "success"}

    error = http.post(f"{base}/v2/orders", json={"dhanClientId": CLIENT}, timeout=5)
    assert error.status_code == 400
    assert set(error.json()) == {"errorType", "errorCode", "errorMessage"}
    assert error.json()["errorCode"] == "DH-905"


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"errorType": "Invalid_Authentication", "errorCode": "DH-901",
               "errorMessage": "Client ID or user generated access token is invalid or expired."},
         AuthError),
        (429, {"errorType": "Rate_Limit", "errorCode": "DH-904", "errorMessage": "Too many"},
         RateLimitedError),
        (400, {"errorType": "Input_Exception", "errorCode": "DH-905", "errorMessage": "bad"},
         InputRejectedError),
        (200, {"errorType": "Network_Error", "errorCode": "DH-909", "errorMessage": "backend"},
         AmbiguousError),
        (502, "<html>Bad gateway</html>", AmbiguousError),  # 5xx on a write: may exist
    ],
)  # fmt: skip
def test_error_envelopes_map_to_one_class(status, body, error):
    with pytest.raises(error):
        parsing.check(response(status, body), write=True)


def test_documented_place_answer_and_expiry_parse():
    assert parsing.check(
        response(200, {"orderId": "112111182198", "orderStatus": "PENDING"}), write=True
    ) == {"orderId": "112111182198", "orderStatus": "PENDING"}
    expiry = parsing.token_expiry("2026-11-22T09:15:00")
    assert expiry == datetime(2026, 11, 22, 3, 45, tzinfo=UTC)  # IST → UTC


# --- adapter against the emulator ----------------------------------------------------------
def test_consent_login_round_trip_checks_the_app_secret(emulator):
    adapter = _adapter(emulator)
    url = adapter.login_url(state="ignored-by-dhan", redirect_uri=REDIRECT)
    params = {k: v[0] for k, v in parse_qs(urlsplit(emulator.approve_login(url)).query).items()}
    assert set(params) == {"tokenId"}  # Dhan does not echo `state`
    grant = adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    assert grant.broker_user_id == CLIENT
    assert timedelta(hours=23) < grant.expires_at - grant.issued_at <= timedelta(hours=24)
    with pytest.raises(AuthError):  # tokenId is single-use
        adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    with pytest.raises(AuthError):
        _adapter(emulator, secret="wrong").login_url(state="s", redirect_uri=REDIRECT)


def test_totp_login(emulator):
    adapter = _adapter(emulator)
    now = datetime.now(UTC)
    grant = adapter.exchange_token(params={"pin": PIN, "totp": totp(TOTP_SECRET, now)},
                                   redirect_uri=REDIRECT)  # fmt: skip
    assert _adapter(emulator, grant.access_token).funds().available == Decimal("1000000")
    with pytest.raises(AuthError):
        adapter.exchange_token(params={"pin": "0000", "totp": totp(TOTP_SECRET, now)},
                               redirect_uri=REDIRECT)  # fmt: skip


def test_place_limit_and_market_with_tag_then_find_and_map_status(adapter):
    resting = adapter.place_order(_order("lim1"))
    filled = adapter.place_order(_order("mkt1", market=True))
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.OPEN
    found = adapter.find_order_by_tag("mkt1")
    assert found is not None and found.broker_order_id == filled.broker_order_id
    assert found.status is OrderStatus.FILLED and found.average_price == Decimal("100.1")
    assert adapter.find_order_by_tag("nosuch") is None
    adapter.modify_order(resting.broker_order_id, price=Decimal("98"))
    assert adapter.order_status(resting.broker_order_id).raw["price"] == 98
    adapter.cancel_order(resting.broker_order_id)
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.CANCELLED
    [position] = adapter.positions()
    assert (position.exchange, position.quantity, position.product) == ("NFO", 75, Product.NRML)
    assert adapter.funds().available == Decimal("1000000") - Decimal("100.1") * 75
    assert adapter.quote(["IDX_I:13"])["IDX_I:13"].last_price == Decimal("24012.35")
    [row] = [r for r in adapter.instruments() if r["SEM_SMST_SECURITY_ID"] == SECURITY]
    assert row["SEM_TRADING_SYMBOL"] == "NIFTY-Jun2025-24000-CE"


def test_rejections_and_faults_map_to_the_taxonomy(emulator, adapter):
    emulator.queue_faults("reject", "5xx", "drop", "reject-later")
    with pytest.raises(InputRejectedError):
        adapter.place_order(_order("rej1"))
    # A 5xx on a write may follow acceptance: looked up, never resent (none exists here).
    with pytest.raises(AmbiguousError) as server:
        adapter.place_order(_order("srv1"))
    assert server.value.http_status >= 500 and adapter.find_order_by_tag("srv1") is None
    with pytest.raises(AmbiguousError):
        adapter.place_order(_order("drop1"))
    assert adapter.find_order_by_tag("drop1") is not None  # accepted, answer lost
    later = adapter.place_order(_order("late1"))
    assert adapter.order_status(later.broker_order_id).status is OrderStatus.REJECTED
    with pytest.raises(InputRejectedError):
        adapter.place_order(_order("nosec", instrument_token="999"))


def test_eleventh_order_in_one_second_is_rate_limited(adapter):
    started = time.monotonic()
    for n in range(10):
        adapter.place_order(_order(f"r{n}"))
    with pytest.raises(RateLimitedError) as limited:
        adapter.place_order(_order("r10"))
    assert time.monotonic() - started < 1.0 and limited.value.code == "DH-904"


def test_unregistered_ip_is_refused_for_writes_only(emulator, adapter):
    emulator.configure(registered_ip="10.9.9.9")
    with pytest.raises(StaticIPError):
        adapter.place_order(_order("ip1"))
    assert adapter.order_book() == []


def test_token_expires_after_24_hours(emulator, adapter):
    emulator.advance_clock(timedelta(hours=23).total_seconds())
    adapter.funds()
    emulator.advance_clock(timedelta(hours=1, seconds=1).total_seconds())
    with pytest.raises(AuthError) as expired:
        adapter.funds()
    assert expired.value.code == "DH-901"


def test_connection_refused_is_retryable():
    adapter = DhanAdapter(
        Credentials(client_id=CLIENT, access_token="t"),
        base_url=f"http://127.0.0.1:{unused_port()}",
    )
    with pytest.raises(RetryableError) as refused:
        adapter.place_order(_order("conn1"))
    assert not isinstance(refused.value, AmbiguousError)


def test_load_test_accounts_take_orders_from_their_client_code():
    # An emulator with auto accounts (the benchmark's): the token names the account and its
    # dhanClientId is the token's first ten characters in capitals, as the benchmark seeds it.
    running = start_in_thread("dhan", quotes=FixedQuotes(), auto_accounts=True)
    try:
        running.add_instruments([{"key": SECURITY, "exchange": "NFO", "tradingsymbol": CONTRACT}])
        token = "b1700000000u0a4"
        adapter = DhanAdapter(
            Credentials(
                api_key=token, api_secret=token, access_token=token, client_id="B170000000"
            ),
            base_url=running.base_url,
        )
        ack = adapter.place_order(_order("LOADTEST1", market=True))
        assert ack.broker_order_id
        assert adapter.find_order_by_tag("LOADTEST1").broker_order_id == ack.broker_order_id
    finally:
        running.stop()
