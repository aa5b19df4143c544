"""Angel One SmartAPI: recorded shapes against the reference (§3), and the adapter against the
emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from brokers.angelone import parsing
from brokers.angelone.adapter import AngelOneAdapter
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

API_KEY, CLIENT, PIN, TOTP_SECRET = "angkey01", "A123456", "1234", "JBSWY3DPEHPK3PXP"
REDIRECT = "http://127.0.0.1:9/brokers/callback/angelone/"
ANGEL_SYMBOL, TOKEN = "NIFTY26JUN2524000CE", "43650"
HEADERS = {"X-UserType": "USER", "X-SourceID": "WEB", "X-ClientLocalIP": "127.0.0.1",
           "X-ClientPublicIP": "127.0.0.1", "X-MACAddress": "00:00:00:00:00:00",
           "X-PrivateKey": API_KEY}  # fmt: skip


@pytest.fixture
def emulator():
    running = start_in_thread("angelone", quotes=FixedQuotes())
    running.add_account(
        api_key=API_KEY,
        api_secret="unused",
        user_id=CLIENT,
        client_id=CLIENT,
        redirect_uri=REDIRECT,
        extra={"pin": PIN, "totp_secret": TOTP_SECRET},
    )
    running.add_instruments(
        [
            {"key": TOKEN, "exchange": "NFO", "tradingsymbol": CONTRACT,
             "broker_symbol": ANGEL_SYMBOL},
            {"key": "99926000", "exchange": "NSE", "tradingsymbol": "NIFTY 50",
             "broker_symbol": "Nifty 50"},
        ]
    )  # fmt: skip
    yield running
    running.stop()


def _adapter(emulator, token: str = "") -> AngelOneAdapter:
    return AngelOneAdapter(
        Credentials(api_key=API_KEY, client_id=CLIENT, access_token=token),
        base_url=emulator.base_url,
        login_url=emulator.login_url,
        instruments_url=f"{emulator.base_url}/OpenAPI_File/files/OpenAPIScripMaster.json",
    )


def _login(emulator) -> str:
    params = {"pin": PIN, "totp": totp(TOTP_SECRET, datetime.now(UTC))}
    return _adapter(emulator).exchange_token(params=params, redirect_uri=REDIRECT).access_token


@pytest.fixture
def adapter(emulator) -> AngelOneAdapter:
    return _adapter(emulator, _login(emulator))


def _order(tag: str, **fields):
    fields = {"tradingsymbol": ANGEL_SYMBOL, "instrument_token": TOKEN, **fields}
    return order_request(tag, **fields)


# --- recorded shapes -----------------------------------------------------------------------
def test_recorded_answers_carry_the_documented_fields(emulator):
    base = emulator.base_url
    http = requests.Session()
    http.headers.update(HEADERS)
    login = http.post(
        base + "/rest/auth/angelbroking/user/v1/loginByPassword",
        json={"clientcode": CLIENT, "password": PIN,
              "totp": totp(TOTP_SECRET, datetime.now(UTC))},
        timeout=5,
    ).json()  # fmt: skip
    assert login["status"] is True and login["message"] == "SUCCESS" and login["errorcode"] == ""
    assert set(login["data"]) == {"jwtToken", "refreshToken", "feedToken"}
    http.headers["Authorization"] = f"Bearer {login['data']['jwtToken']}"
    secure = base + "/rest/secure/angelbroking"

    empty = http.get(f"{secure}/order/v1/getOrderBook", timeout=5).json()
    assert empty["status"] is True and empty["data"] is None  # an empty book is null
    body = {"variety": "NORMAL", "tradingsymbol": ANGEL_SYMBOL, "symboltoken": TOKEN,
            "transactiontype": "BUY", "exchange": "NFO", "ordertype": "LIMIT",
            "producttype": "CARRYFORWARD", "duration": "DAY", "price": "101",
            "quantity": "75", "ordertag": "shape1"}  # fmt: skip
    place = http.post(f"{secure}/order/v1/placeOrder", json=body, timeout=5).json()
    assert set(place["data"]) == {"script", "orderid", "uniqueorderid"}
    [row] = http.get(f"{secure}/order/v1/getOrderBook", timeout=5).json()["data"]
    assert {
        "orderid", "uniqueorderid", "status", "orderstatus", "text", "ordertag",
        "tradingsymbol", "symboltoken", "exchange", "transactiontype", "producttype",
        "ordertype", "price", "triggerprice", "quantity", "filledshares", "unfilledshares",
        "averageprice", "updatetime",
    } <= set(row)  # fmt: skip
    assert row["status"] == "complete" and row["ordertag"] == "shape1"
    by_numeric = http.get(f"{secure}/order/v1/details/{row['orderid']}", timeout=5).json()
    assert by_numeric["status"] is False and by_numeric["errorcode"] == "AB1007"

    long_tag = http.post(
        f"{secure}/order/v1/placeOrder", json={**body, "ordertag": "x" * 21}, timeout=5
    )
    assert long_tag.status_code == 200
    assert long_tag.json() == {
        "message": "Ordertag length should not exceed 20 characters",
        "errorcode": "AB4008", "status": False, "data": None,
    }  # fmt: skip
    market = http.post(
        f"{secure}/order/v1/placeOrder", json={**body, "ordertype": "MARKET"}, timeout=5
    ).json()
    assert market["status"] is False  # no market orders from algos since 1-Apr-2026

    [position] = http.get(f"{secure}/order/v1/getPosition", timeout=5).json()["data"]
    assert {"netqty", "tradingsymbol", "symboltoken", "exchange", "producttype", "buyqty",
            "sellqty", "buyavgprice", "sellavgprice", "pnl", "realised", "unrealised",
            "ltp"} <= set(position)  # fmt: skip
    rms = http.get(f"{secure}/user/v1/getRMS", timeout=5).json()["data"]
    assert {"availablecash", "collateral", "m2munrealized", "utiliseddebits",
            "utilisedpayout", "net"} <= set(rms)  # fmt: skip
    quote = http.post(
        f"{secure}/market/v1/quote/",
        json={"mode": "LTP", "exchangeTokens": {"NSE": ["99926000"], "NFO": ["1"]}},
        timeout=5,
    ).json()["data"]
    assert quote["fetched"] == [
        {"exchange": "NSE", "tradingSymbol": "Nifty 50", "symbolToken": "99926000",
         "ltp": 24012.35}
    ]  # fmt: skip
    assert quote["unfetched"][0]["symbolToken"] == "1"

    http.headers["Authorization"] = "Bearer nonsense"
    gateway = http.get(f"{secure}/order/v1/getOrderBook", timeout=5).json()
    assert gateway == {"success": False, "message": "Invalid Token", "errorCode": "AG8001",
                       "data": ""}  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""},
         AuthError),
        (200, {"status": False, "message": "Order not found", "errorcode": "AB1007",
               "data": None}, InputRejectedError),
        (403, "Access denied because of exceeding access rate", RateLimitedError),
        (429, "Too Many Requests", RateLimitedError),
        (200, {"status": False, "message": "Something Went Wrong", "errorcode": "AB1004",
               "data": None}, AmbiguousError),
        (503, {"status": False, "message": "down", "errorcode": "", "data": None},
         RetryableError),
    ],
)  # fmt: skip
def test_error_envelopes_map_to_one_class(status, body, error):
    headers = {"Content-Type": "text/plain"} if isinstance(body, str) else None
    with pytest.raises(error):
        parsing.check(response(status, body, headers), write=True)


# --- adapter against the emulator ----------------------------------------------------------
def test_password_login_checks_pin_and_totp(emulator):
    grant = _adapter(emulator).exchange_token(
        params={"pin": PIN, "totp": totp(TOTP_SECRET, datetime.now(UTC))}, redirect_uri=REDIRECT
    )
    # The JWT's own `exp` (midnight IST in the emulator) bounds the grant.
    assert grant.expires_at - grant.issued_at <= timedelta(days=1) and grant.refresh_token
    with pytest.raises(AuthError) as wrong:
        _adapter(emulator).exchange_token(params={"pin": PIN, "totp": "000000"},
                                          redirect_uri=REDIRECT)  # fmt: skip
    assert wrong.value.code == "AB1050"


def test_publisher_login_round_trip(emulator):
    adapter = _adapter(emulator)
    url = adapter.login_url(state="st4te", redirect_uri=REDIRECT)
    params = {k: v[0] for k, v in parse_qs(urlsplit(emulator.approve_login(url)).query).items()}
    assert params["state"] == "st4te"
    grant = adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    assert _adapter(emulator, grant.access_token).funds().available == Decimal("1000000")


def test_place_limit_with_tag_find_and_map_status_and_market_is_refused(adapter):
    resting = adapter.place_order(_order("lim1"))
    filled = adapter.place_order(_order("lim2", price="101"))
    with pytest.raises(InputRejectedError):
        adapter.place_order(_order("mkt1", market=True))
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.OPEN
    found = adapter.find_order_by_tag("lim2")
    assert found is not None and found.broker_order_id == filled.broker_order_id
    assert found.status is OrderStatus.FILLED and found.average_price == Decimal("100.1")
    assert adapter.find_order_by_tag("mkt1") is None
    adapter.modify_order(resting.broker_order_id, price=Decimal("98"))
    assert adapter.order_status(resting.broker_order_id).raw["price"] == 98
    adapter.cancel_order(resting.broker_order_id)
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.CANCELLED
    [position] = adapter.positions()
    assert (position.tradingsymbol, position.quantity, position.product) == (
        ANGEL_SYMBOL, 75, Product.NRML,
    )  # fmt: skip
    assert adapter.funds().available == Decimal("1000000") - Decimal("100.1") * 75
    quote = adapter.quote([f"NFO:{TOKEN}"])[f"NFO:{TOKEN}"]
    assert (quote.last_price, quote.bid, quote.ask) == (
        Decimal("100"), Decimal("99.9"), Decimal("100.1"),
    )  # fmt: skip
    tokens = [row["token"] for row in adapter.instruments()]
    assert TOKEN in tokens and "99926000" not in tokens  # F&O rows only, no index


def test_rejections_and_faults_map_to_the_taxonomy(emulator, adapter):
    emulator.queue_faults("reject", "5xx", "drop", "reject-later")
    with pytest.raises(InputRejectedError):
        adapter.place_order(_order("rej1"))
    with pytest.raises(RetryableError) as server:
        adapter.place_order(_order("srv1"))
    assert not isinstance(server.value, AmbiguousError)
    with pytest.raises(AmbiguousError):
        adapter.place_order(_order("drop1"))
    dropped = adapter.find_order_by_tag("drop1")  # accepted, answer lost
    assert dropped is not None and dropped.broker_order_id
    later = adapter.place_order(_order("late1"))
    assert adapter.order_status(later.broker_order_id).status is OrderStatus.REJECTED
    with pytest.raises(InputRejectedError) as long_tag:
        adapter.place_order(_order("x" * 21))
    assert long_tag.value.code == "AB4008"


def test_eleventh_order_in_one_second_is_rate_limited(adapter):
    started = time.monotonic()
    for n in range(10):
        adapter.place_order(_order(f"r{n}"))
    with pytest.raises(RateLimitedError) as limited:
        adapter.place_order(_order("r10"))
    assert time.monotonic() - started < 1.0 and limited.value.http_status == 429


def test_unregistered_ip_is_refused_for_writes_only(emulator, adapter):
    emulator.configure(registered_ip="10.9.9.9")
    with pytest.raises(StaticIPError):
        adapter.place_order(_order("ip1"))
    assert adapter.order_book() == []


def test_expired_token_raises_auth_error(emulator, adapter):
    emulator.advance_clock(timedelta(days=1).total_seconds())
    with pytest.raises(AuthError) as expired:
        adapter.order_book()
    assert expired.value.code == "AG8001"


def test_connection_refused_is_retryable():
    adapter = AngelOneAdapter(
        Credentials(api_key=API_KEY, access_token="t"),
        base_url=f"http://127.0.0.1:{unused_port()}",
    )
    with pytest.raises(RetryableError) as refused:
        adapter.place_order(_order("conn1"))
    assert not isinstance(refused.value, AmbiguousError)
