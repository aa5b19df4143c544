"""One recorded answer of each kind from the Kite emulator, checked against the field names
shared/reference/broker-apis.md §1 documents, and read back by our parser."""

from __future__ import annotations

import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from brokers.kite import parsing
from tests.brokers.kite.conftest import API_KEY, API_SECRET

pytestmark = pytest.mark.network

SESSION_FIELDS = {
    "access_token", "public_token", "refresh_token", "user_id", "user_name", "user_shortname",
    "email", "user_type", "broker", "exchanges", "products", "order_types", "login_time",
    "api_key", "meta",
}  # fmt: skip
ORDER_FIELDS = {
    "order_id", "exchange_order_id", "parent_order_id", "status", "status_message",
    "status_message_raw", "order_timestamp", "exchange_timestamp", "exchange_update_timestamp",
    "variety", "modified", "exchange", "tradingsymbol", "instrument_token", "order_type",
    "transaction_type", "validity", "product", "quantity", "disclosed_quantity", "price",
    "trigger_price", "average_price", "filled_quantity", "pending_quantity",
    "cancelled_quantity", "market_protection", "tag", "guid", "placed_by", "meta",
}  # fmt: skip
POSITION_FIELDS = {
    "tradingsymbol", "exchange", "instrument_token", "product", "quantity",
    "overnight_quantity", "multiplier", "average_price", "last_price", "close_price", "value",
    "pnl", "m2m", "realised", "unrealised", "buy_quantity", "buy_price", "buy_value",
    "sell_quantity", "sell_price", "sell_value", "day_buy_quantity", "day_sell_quantity",
}  # fmt: skip
AVAILABLE_FIELDS = {
    "cash", "opening_balance", "live_balance", "collateral", "intraday_payin", "adhoc_margin",
}  # fmt: skip
UTILISED_FIELDS = {
    "debits", "exposure", "span", "option_premium", "m2m_realised", "m2m_unrealised",
    "payout", "holding_sales", "turnover",
}  # fmt: skip
ERROR_FIELDS = {"status", "message", "data", "error_type"}


@pytest.fixture
def recorded(emulator):
    """Answers recorded from the emulator, as the adapter would receive them."""
    http = requests.Session()
    login = emulator.approve_login(f"{emulator.login_url}?v=3&api_key={API_KEY}")
    request_token = parse_qs(urlsplit(login).query)["request_token"][0]
    checksum = hashlib.sha256((API_KEY + request_token + API_SECRET).encode()).hexdigest()
    session = http.post(
        emulator.base_url + "/session/token",
        data={"api_key": API_KEY, "request_token": request_token, "checksum": checksum},
        headers={"X-Kite-Version": "3"},
    )
    token = session.json()["data"]["access_token"]
    headers = {"X-Kite-Version": "3", "Authorization": f"token {API_KEY}:{token}"}
    form = {
        "tradingsymbol": "NIFTY25D1624000CE",
        "exchange": "NFO",
        "transaction_type": "BUY",
        "order_type": "MARKET",
        "market_protection": "-1",
        "quantity": "75",
        "product": "NRML",
        "tag": "rec1",
    }
    base = emulator.base_url
    place = http.post(base + "/orders/regular", data=form, headers=headers)
    order_id = place.json()["data"]["order_id"]
    return {
        "session": session,
        "place": place,
        "orders": http.get(base + "/orders", headers=headers),
        "history": http.get(f"{base}/orders/{order_id}", headers=headers),
        "positions": http.get(base + "/portfolio/positions", headers=headers),
        "margins": http.get(base + "/user/margins", headers=headers),
        "unprotected": http.post(
            base + "/orders/regular", data={**form, "market_protection": "0"}, headers=headers
        ),
        "bad_token": http.get(
            base + "/orders", headers={**headers, "Authorization": f"token {API_KEY}:nope"}
        ),
    }


def test_session_token_answer(recorded):
    body = recorded["session"].json()
    assert body["status"] == "success"
    assert set(body["data"]) >= SESSION_FIELDS
    assert body["data"]["broker"] == "ZERODHA"


def test_place_order_answer(recorded):
    body = recorded["place"].json()
    assert body == {"status": "success", "data": {"order_id": body["data"]["order_id"]}}
    assert body["data"]["order_id"].isdigit()


def test_order_book_and_history_answers(recorded):
    [row] = recorded["orders"].json()["data"]
    assert set(row) >= ORDER_FIELDS
    assert parsing.to_broker_order(row).tag == "rec1"
    history = recorded["history"].json()["data"]
    assert [h["status"] for h in history] == [
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "COMPLETE",
    ]


def test_positions_answer(recorded):
    data = recorded["positions"].json()["data"]
    assert set(data) == {"net", "day"}
    assert set(data["net"][0]) >= POSITION_FIELDS


def test_margins_answer(recorded):
    data = recorded["margins"].json()["data"]
    assert set(data) == {"equity", "commodity"}
    equity = data["equity"]
    assert {"enabled", "net", "available", "utilised"} <= set(equity)
    assert set(equity["available"]) >= AVAILABLE_FIELDS
    assert set(equity["utilised"]) >= UTILISED_FIELDS


def test_error_answers(recorded):
    unprotected = recorded["unprotected"]
    assert unprotected.status_code == 400
    assert set(unprotected.json()) == ERROR_FIELDS
    assert unprotected.json()["error_type"] == "InputException"
    assert unprotected.json()["message"].startswith(
        "Market orders without market protection are not allowed via API"
    )
    bad = recorded["bad_token"]
    assert (bad.status_code, bad.json()["error_type"]) == (403, "TokenException")
