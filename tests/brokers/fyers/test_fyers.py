"""Fyers v3: recorded shapes against the reference (§4), and the adapter against the emulator
over real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from brokers.base import (
    AmbiguousError,
    AuthError,
    Credentials,
    InputRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    RateLimitedError,
    RetryableError,
    Side,
    StaticIPError,
)
from brokers.emulator import start_in_thread
from brokers.fyers import parsing
from brokers.fyers.adapter import FyersAdapter, app_id_hash
from tests.brokers.fixed_market import CONTRACT, FixedQuotes, response, unused_port

pytestmark = pytest.mark.network

APP_ID, SECRET = "XA1B2C3D4-100", "fyerssecret"
REDIRECT = "http://127.0.0.1:9/brokers/callback/fyers/"


@pytest.fixture
def emulator():
    running = start_in_thread("fyers", quotes=FixedQuotes())
    running.add_account(api_key=APP_ID, api_secret=SECRET, user_id="XY01234", redirect_uri=REDIRECT)
    yield running
    running.stop()


@pytest.fixture
def adapter(emulator) -> FyersAdapter:
    token = emulator.issue_token(APP_ID)
    return _adapter(emulator, token)


def _adapter(emulator, token: str = "", secret: str = SECRET) -> FyersAdapter:
    return FyersAdapter(
        Credentials(api_key=APP_ID, api_secret=secret, access_token=token),
        base_url=emulator.base_url,
        login_url=emulator.login_url,
    )


def _order(tag: str, *, order_type=OrderType.LIMIT, price: str | None = "99", **kw):
    return OrderRequest(
        exchange="NFO",
        tradingsymbol=CONTRACT,
        side=kw.pop("side", Side.BUY),
        quantity=kw.pop("quantity", 75),
        order_type=order_type,
        product=kw.pop("product", Product.NRML),
        tag=tag,
        price=Decimal(price) if price else None,
    )


def _raw(emulator, token: str):
    session = requests.Session()
    session.headers.update({"Authorization": f"{APP_ID}:{token}", "version": "3"})
    return session


# --- recorded shapes -----------------------------------------------------------------------
def test_recorded_answers_carry_the_documented_fields(emulator):
    token = emulator.issue_token(APP_ID)
    http, base = _raw(emulator, token), emulator.base_url
    place = http.post(
        f"{base}/api/v3/orders/sync",
        json={
            "symbol": f"NSE:{CONTRACT}",
            "qty": 75,
            "type": 2,
            "side": 1,
            "productType": "MARGIN",
            "limitPrice": 0,
            "stopPrice": 0,
            "disclosedQty": 0,
            "validity": "DAY",
            "offlineOrder": False,
            "stopLoss": 0,
            "takeProfit": 0,
            "orderTag": "shape1",
        },
        timeout=5,
    ).json()
    assert set(place) == {"s", "code", "message", "id"} and place["code"] == 1101
    assert place["message"].endswith(place["id"])

    book = http.get(f"{base}/api/v3/orders", params={"order_tag": "1:shape1"}, timeout=5).json()
    row = book["orderBook"][0]
    assert {
        "id", "exchOrdId", "symbol", "qty", "remainingQuantity", "filledQty", "status",
        "message", "segment", "limitPrice", "stopPrice", "productType", "type", "side",
        "orderValidity", "orderDateTime", "tradedPrice", "orderTag", "fyToken", "exchange",
        "instrument", "offlineOrder", "orderNumStatus",
    } <= set(row)  # fmt: skip
    assert row["orderTag"] == "1:shape1" and row["status"] == 2  # traded
    # A protected MARKET rests as a LIMIT above the last price (MPP since 1-Apr-2026).
    assert row["limitPrice"] > 100 and row["type"] == 2
    time.strptime(row["orderDateTime"], "%d-%b-%Y %H:%M:%S")

    positions = http.get(f"{base}/api/v3/positions", timeout=5).json()
    position_fields = {"symbol", "id", "netQty", "netAvg", "realized_profit", "unrealized_profit",
                       "pl", "ltp", "productType", "segment", "exchange"}  # fmt: skip
    assert position_fields <= set(positions["netPositions"][0])
    assert set(positions["overall"]) == {
        "count_total", "count_open", "pl_total", "pl_realized", "pl_unrealized",
    }  # fmt: skip
    funds = http.get(f"{base}/api/v3/funds", timeout=5).json()
    assert [r["id"] for r in funds["fund_limit"]] == list(range(1, 11))
    assert {"id", "title", "equityAmount", "commodityAmount"} == set(funds["fund_limit"][0])
    quotes = http.get(
        f"{base}/data/quotes", params={"symbols": f"NSE:NIFTY50-INDEX,NSE:{CONTRACT}"}, timeout=5
    ).json()
    assert [q["n"] for q in quotes["d"]] == ["NSE:NIFTY50-INDEX", f"NSE:{CONTRACT}"]
    assert quotes["d"][0]["v"]["lp"] == 24012.35

    error = http.post(f"{base}/api/v3/orders/sync", json={"symbol": "x"}, timeout=5)
    assert error.status_code == 400
    assert set(error.json()) == {"s", "code", "message"} and error.json()["s"] == "error"
    assert error.json()["code"] < 0


def test_documented_place_answer_parses():
    documented = {
        "s": "ok",
        "code": 1101,
        "message": "Order submitted successfully. Your Order Ref. No.808058117761",
        "id": "808058117761",
    }
    assert parsing.check(response(200, documented), write=True)["id"] == "808058117761"
    assert parsing.tag_of("1:abc") == "abc" and parsing.tag_of("2:Untagged") == ""


def test_code_201_is_ambiguous(adapter):
    import json

    from brokers.base import WireAnswer

    sent_no_ack = {"s": "ok", "code": 201, "message": "Order sent", "id": ""}
    answer = WireAnswer(200, {"content-type": "application/json"}, json.dumps(sent_no_ack).encode())
    with pytest.raises(AmbiguousError):
        adapter.order_answer(answer)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"s": "error", "code": -8, "message": "Your token has expired"}, AuthError),
        (400, {"s": "error", "code": -300, "message": "Invalid symbol"}, InputRejectedError),
        (429, {"s": "error", "code": -429, "message": "request limit reached"}, RateLimitedError),
        (500, {"s": "error", "code": -99, "message": "boom"}, AmbiguousError),  # 5xx on a write
        (403, {"s": "error", "code": -99, "message": "Static IP not registered"}, StaticIPError),
    ],
)
def test_error_envelopes_map_to_one_class(status, body, error):
    with pytest.raises(error):
        parsing.check(response(status, body), write=True)


# --- adapter against the emulator ----------------------------------------------------------
def test_login_round_trip_verifies_the_app_id_hash(emulator):
    adapter = _adapter(emulator)
    url = adapter.login_url(state="st4te", redirect_uri=REDIRECT)
    params = {k: v[0] for k, v in parse_qs(urlsplit(emulator.approve_login(url)).query).items()}
    assert params["state"] == "st4te" and params["s"] == "ok"
    grant = adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    assert grant.access_token and grant.expires_at > grant.issued_at
    with pytest.raises(AuthError):  # the auth code is single-use
        adapter.exchange_token(params=params, redirect_uri=REDIRECT)

    params = parse_qs(urlsplit(emulator.approve_login(url)).query)
    with pytest.raises(AuthError) as refused:
        _adapter(emulator, secret="wrong").exchange_token(
            params={k: v[0] for k, v in params.items()}, redirect_uri=REDIRECT
        )
    assert refused.value.code == "-371"
    assert app_id_hash("A", "B") == hashlib.sha256(b"A:B").hexdigest()


def test_place_limit_and_market_with_tag_then_find_and_map_status(adapter):
    resting = adapter.place_order(_order("lim1", price="99"))
    filled = adapter.place_order(_order("mkt1", order_type=OrderType.MARKET, price=None))
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.OPEN
    found = adapter.find_order_by_tag("mkt1")
    assert found is not None and found.broker_order_id == filled.broker_order_id
    assert found.status is OrderStatus.FILLED and found.average_price == Decimal("100.1")
    assert adapter.find_order_by_tag("nosuch") is None
    adapter.cancel_order(resting.broker_order_id)
    assert adapter.order_status(resting.broker_order_id).status is OrderStatus.CANCELLED
    [position] = adapter.positions()
    assert (position.exchange, position.tradingsymbol, position.quantity) == ("NFO", CONTRACT, 75)
    assert position.product is Product.NRML
    funds = adapter.funds()
    assert funds.available == Decimal("1000000") - Decimal("100.1") * 75
    quotes = adapter.quote(["NSE:NIFTY50-INDEX", f"NSE:{CONTRACT}"])
    assert quotes["NSE:NIFTY50-INDEX"].last_price == Decimal("24012.35")
    assert quotes[f"NSE:{CONTRACT}"].ask == Decimal("100.1")


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
        adapter.place_order(_order("bad-tag!"))


def test_eleventh_order_in_one_second_is_rate_limited(adapter):
    started = time.monotonic()
    for n in range(10):
        adapter.place_order(_order(f"r{n}"))
    with pytest.raises(RateLimitedError) as limited:
        adapter.place_order(_order("r10"))
    assert time.monotonic() - started < 1.0
    assert limited.value.http_status == 429 and limited.value.code == "-429"


def test_unregistered_ip_is_refused_for_writes_only(emulator, adapter):
    emulator.configure(registered_ip="10.9.9.9")
    with pytest.raises(StaticIPError):
        adapter.place_order(_order("ip1"))
    assert adapter.order_book() == []  # reads are not IP-checked


def test_expired_token_raises_auth_error(emulator, adapter):
    emulator.advance_clock(timedelta(days=1).total_seconds())
    with pytest.raises(AuthError) as expired:
        adapter.funds()
    assert expired.value.code == "-8"


def test_connection_refused_is_retryable():
    adapter = FyersAdapter(
        Credentials(api_key=APP_ID, access_token="t"),
        base_url=f"http://127.0.0.1:{unused_port()}",
    )
    with pytest.raises(RetryableError) as refused:
        adapter.place_order(_order("conn1"))
    assert not isinstance(refused.value, AmbiguousError)
