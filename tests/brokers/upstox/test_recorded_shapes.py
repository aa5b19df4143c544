"""One recorded answer of each kind from the Upstox emulator, checked against the field names
shared/reference/broker-apis.md §2 documents, and read back by our parser."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from brokers.upstox import parsing
from tests.brokers.upstox.conftest import CLIENT_ID, CLIENT_SECRET, KEY, REDIRECT

pytestmark = pytest.mark.network

TOKEN_FIELDS = {
    "email", "exchanges", "products", "broker", "user_id", "user_name", "order_types",
    "user_type", "poa", "is_active", "access_token",
}  # fmt: skip
ORDER_FIELDS = {
    "order_id", "exchange_order_id", "parent_order_id", "status", "status_message",
    "status_message_raw", "tag", "instrument_token", "trading_symbol", "tradingsymbol",
    "exchange", "product", "order_type", "transaction_type", "validity", "price",
    "trigger_price", "quantity", "filled_quantity", "pending_quantity", "average_price",
    "disclosed_quantity", "variety", "order_timestamp", "exchange_timestamp", "is_amo",
    "order_request_id", "order_ref_id", "placed_by",
}  # fmt: skip
POSITION_FIELDS = {
    "instrument_token", "tradingsymbol", "exchange", "product", "quantity", "multiplier",
    "average_price", "last_price", "close_price", "pnl", "realised", "unrealised", "buy_value",
    "buy_price", "sell_value", "sell_price", "day_buy_quantity", "day_sell_quantity",
    "overnight_quantity", "value",
}  # fmt: skip
FUNDS_FIELDS = {
    "used_margin", "payin_amount", "span_margin", "adhoc_margin", "notional_cash",
    "available_margin", "exposure_margin",
}  # fmt: skip
ERROR_FIELDS = {
    "errorCode", "message", "propertyPath", "invalidValue", "error_code", "property_path",
    "invalid_value",
}  # fmt: skip


@pytest.fixture
def recorded(emulator):
    api, hft = emulator.base_urls["api"], emulator.base_urls["hft"]
    dialog = (
        emulator.login_url
        + "?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT,
                "state": "r",
            }
        )
    )
    code = parse_qs(urlsplit(emulator.approve_login(dialog)).query)["code"][0]
    http = requests.Session()
    token = http.post(
        api + "/v2/login/authorization/token",
        data={
            "code": code,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": REDIRECT,
            "grant_type": "authorization_code",
        },
        headers={"Accept": "application/json"},
    )
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    order = {
        "quantity": 75, "product": "D", "validity": "DAY", "price": 0, "tag": "rec1",
        "instrument_token": KEY, "order_type": "MARKET", "transaction_type": "BUY",
        "disclosed_quantity": 0, "trigger_price": 0, "is_amo": False,
    }  # fmt: skip
    place = http.post(hft + "/v3/order/place", json=order, headers=headers)
    return {
        "token": token,
        "place": place,
        "orders": http.get(api + "/v2/order/retrieve-all", headers=headers),
        "history": http.get(api + "/v2/order/history", params={"tag": "rec1"}, headers=headers),
        "positions": http.get(api + "/v2/portfolio/short-term-positions", headers=headers),
        "funds": http.get(api + "/v2/user/get-funds-and-margin", headers=headers),
        "missing_field": http.post(
            hft + "/v3/order/place",
            json={k: v for k, v in order.items() if k != "validity"},
            headers=headers,
        ),
        "bad_token": http.get(
            api + "/v2/order/retrieve-all", headers={"Authorization": "Bearer nope"}
        ),
    }


def test_token_answer_is_flat(recorded):
    body = recorded["token"].json()
    assert set(body) >= TOKEN_FIELDS
    assert "status" not in body and body["broker"] == "UPSTOX"


def test_v3_place_answer(recorded):
    body = recorded["place"].json()
    assert set(body) == {"status", "data", "metadata"}
    assert len(body["data"]["order_ids"]) == 1
    assert isinstance(body["metadata"]["latency"], int)


def test_order_book_and_history_answers(recorded):
    [row] = recorded["orders"].json()["data"]
    assert set(row) >= ORDER_FIELDS
    assert row["status"] == "complete"
    assert parsing.to_broker_order(row).tag == "rec1"
    statuses = [r["status"] for r in recorded["history"].json()["data"]]
    assert statuses == [
        "put order req received",
        "validation pending",
        "open pending",
        "open",
        "complete",
    ]


def test_positions_and_funds_answers(recorded):
    [position] = recorded["positions"].json()["data"]
    assert set(position) >= POSITION_FIELDS
    data = recorded["funds"].json()["data"]
    assert set(data) == {"equity", "commodity"}
    assert set(data["equity"]) >= FUNDS_FIELDS


def test_error_answers_carry_camel_and_snake_keys(recorded):
    bad = recorded["bad_token"]
    assert bad.status_code == 401
    [error] = bad.json()["errors"]
    assert set(error) == ERROR_FIELDS
    assert error["errorCode"] == error["error_code"] == "UDAPI100050"
    missing = recorded["missing_field"]
    assert missing.status_code == 400
    assert missing.json()["errors"][0]["errorCode"] == "UDAPI100036"
