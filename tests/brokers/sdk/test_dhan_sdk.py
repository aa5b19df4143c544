"""dhanhq 2.3.0 against the Dhan emulator (one port for Dhan's auth and API hosts).

dhanhq wraps every answer as `{"status": "success"|"failure", "remarks", "data"}` on the
client side (reference §5.2); failures carry Dhan's `errorCode` in `remarks`."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from tests.brokers.sdk.conftest import FOREIGN_IP, TRADING_MOMENT, option_contract, start_emulator

APP_ID, APP_SECRET, CLIENT = "dhsdkapp", "dhsdksecret", "1100001"
PIN, TOTP_SECRET = "2468", "JBSWY3DPEHPK3PXP"
REDIRECT = "http://127.0.0.1:9/brokers/callback/dhan/"


@pytest.fixture(scope="module")
def emulator(loopback_only):
    from dhanhq import DhanHTTP, DhanLogin

    running = start_emulator("dhan")
    running.add_account(
        api_key=APP_ID, api_secret=APP_SECRET, user_id=CLIENT, client_id=CLIENT,
        redirect_uri=REDIRECT, extra={"pin": PIN, "totp_secret": TOTP_SECRET},
    )  # fmt: skip
    for n, fields in enumerate(({"cash": "1000"}, {}, {"registered_ip": FOREIGN_IP}), start=2):
        running.add_account(
            api_key=f"dhapp{n}", api_secret="s", user_id=f"110000{n}",
            client_id=f"110000{n}", **fields,
        )  # fmt: skip
    saved = DhanHTTP.API_BASE_URL, DhanLogin.AUTH_BASE_URL, DhanLogin.API_BASE_URL
    DhanHTTP.API_BASE_URL = DhanLogin.API_BASE_URL = f"{running.base_url}/v2"
    DhanLogin.AUTH_BASE_URL = running.base_url
    yield running
    DhanHTTP.API_BASE_URL, DhanLogin.AUTH_BASE_URL, DhanLogin.API_BASE_URL = saved
    running.stop()


def dhan_for(emulator, client_id: str, token: str):
    from dhanhq import DhanContext, dhanhq

    return dhanhq(DhanContext(client_id, token))


@pytest.fixture(scope="module")
def day(emulator):
    contract = option_contract(emulator)
    return {"security": str(contract["exchange_token"]), "contract": contract}


def place(dhan, day, **fields):
    args = {
        "security_id": day["security"], "exchange_segment": "NSE_FNO",
        "transaction_type": "BUY", "quantity": 65, "order_type": "LIMIT",
        "product_type": "MARGIN", "price": 0.05, **fields,
    }  # fmt: skip
    return dhan.place_order(**args)


def error_code(answer: dict) -> str:
    assert answer["status"] == "failure"
    return answer["remarks"]["error_code"]


def test_consent_login_and_token(emulator, monkeypatch, day):
    from urllib.parse import parse_qs, urlsplit

    from dhanhq import DhanLogin

    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)  # the SDK opens a browser
    login = DhanLogin(CLIENT)
    consent = login.generate_login_session(APP_ID, APP_SECRET)
    assert opened == [f"{emulator.base_url}/login/consentApp-login?consentAppId={consent}"]
    redirect = emulator.approve_login(opened[0])
    token_id = parse_qs(urlsplit(redirect).query)["tokenId"][0]
    answer = login.consume_token_id(token_id, APP_ID, APP_SECRET)
    assert answer["dhanClientId"] == CLIENT
    day["token"] = answer["accessToken"]
    day["dhan"] = dhan_for(emulator, CLIENT, answer["accessToken"])


def test_totp_login(emulator):
    from dhanhq import DhanLogin

    from brokers.emulator.otp import totp

    answer = DhanLogin(CLIENT).generate_token(PIN, totp(TOTP_SECRET, TRADING_MOMENT))
    assert answer["dhanClientId"] == CLIENT and answer["accessToken"]


def test_profile_and_renew(day):
    from dhanhq import DhanLogin

    login = DhanLogin(CLIENT)
    assert login.user_profile(day["token"])["dhanClientId"] == CLIENT
    renewed = login.renew_token(day["token"])
    assert renewed["expiryTime"].startswith("2026-12-05")  # issued 3 Dec + 24 h + 24 h


def test_funds(day):
    funds = day["dhan"].get_fund_limits()
    assert funds["status"] == "success" and funds["data"]["availabelBalance"] == 1_000_000


def test_quotes_index_and_option(day):
    answer = day["dhan"].ticker_data({"IDX_I": [13], "NSE_FNO": [int(day["security"])]})
    data = answer["data"]["data"]
    assert data["IDX_I"]["13"]["last_price"] > 20_000
    assert data["NSE_FNO"][day["security"]]["last_price"] > 0


def test_instrument_master(emulator, day):
    text = requests.get(f"{emulator.base_url}/api-data/api-scrip-master.csv", timeout=5).text
    rows = {r["SEM_SMST_SECURITY_ID"]: r for r in csv.DictReader(io.StringIO(text))}
    mine = rows[day["security"]]
    assert (mine["SEM_SEGMENT"], mine["SEM_INSTRUMENT_NAME"]) == ("D", "OPTIDX")
    assert float(mine["SEM_LOT_UNITS"]) == 65 and mine["SEM_OPTION_TYPE"] == "CE"
    assert mine["SEM_EXPIRY_DATE"].startswith(day["contract"]["expiry"])
    assert mine["SEM_TRADING_SYMBOL"].startswith("NIFTY-")


def test_place_limit_with_correlation_id(day):
    answer = place(day["dhan"], day, tag="sdklimit1")
    assert answer["status"] == "success" and answer["data"]["orderStatus"] in ("TRANSIT", "PENDING")
    day["limit"] = answer["data"]["orderId"]


def test_place_market_becomes_protected_limit(day):
    answer = place(day["dhan"], day, order_type="MARKET", price=0, tag="sdkmarket1")
    day["market"] = answer["data"]["orderId"]
    order = day["dhan"].get_order_by_id(day["market"])["data"]
    assert order["orderStatus"] == "TRADED" and order["correlationId"] == "sdkmarket1"


def test_order_book_and_correlation_lookup(day):
    book = {o["orderId"]: o for o in day["dhan"].get_order_list()["data"]}
    assert book[day["limit"]]["orderStatus"] == "PENDING"
    found = day["dhan"].get_order_by_correlationID("sdklimit1")["data"]
    assert found["orderId"] == day["limit"]


def test_modify(day):
    answer = day["dhan"].modify_order(day["limit"], "LIMIT", "", 130, 0.1, 0, 0, "DAY")
    assert answer["data"]["orderId"] == day["limit"]
    order = day["dhan"].get_order_by_id(day["limit"])["data"]
    assert (order["quantity"], order["price"]) == (130, 0.1)


def test_cancel(day):
    answer = day["dhan"].cancel_order(day["limit"])
    assert answer["data"]["orderStatus"] == "CANCELLED"


def test_trades_book_and_per_order(day):
    trades = day["dhan"].get_trade_book()["data"]
    assert [t["orderId"] for t in trades] == [day["market"]]
    assert trades[0]["exchangeTradeId"] and trades[0]["tradedQuantity"] == 65
    per_order = day["dhan"].get_trade_book(day["market"])["data"]
    assert [t["exchangeTradeId"] for t in per_order] == [trades[0]["exchangeTradeId"]]
    assert day["dhan"].get_trade_book(day["limit"])["data"] == []


def test_positions(day):
    rows = day["dhan"].get_positions()["data"]
    assert [(r["securityId"], r["netQty"]) for r in rows] == [(day["security"], 65)]


def test_unknown_security(day):
    assert error_code(place(day["dhan"], day, security_id="999999")) == "DH-905"


def test_insufficient_funds(emulator, day):
    poor = dhan_for(emulator, "1100002", emulator.issue_token("dhapp2"))
    answer = place(poor, day, price=100, quantity=650)
    assert error_code(answer) == "DH-906"
    assert "Insufficient funds" in answer["remarks"]["error_message"]


def test_static_ip_refuses_writes_not_reads(emulator, day):
    remote = dhan_for(emulator, "1100004", emulator.issue_token("dhapp4"))
    assert remote.get_order_list()["data"] == []
    answer = place(remote, day)
    assert error_code(answer) == "DH-906" and "static IP" in answer["remarks"]["error_message"]


def test_eleventh_order_in_a_second_is_refused(emulator, day):
    burst = dhan_for(emulator, "1100003", emulator.issue_token("dhapp3"))
    outcomes = [place(burst, day, tag=f"b{n}")["status"] for n in range(10)]
    eleventh = place(burst, day, tag="b10")
    assert outcomes == ["success"] * 10 and error_code(eleventh) == "DH-904"


def test_bad_token(emulator):
    assert error_code(dhan_for(emulator, CLIENT, "not-a-token").get_positions()) == "DH-901"


def test_expired_token_after_24_hours(emulator, day):
    emulator.advance_clock(3 * 24 * 3600)  # past the renewed expiry too
    assert error_code(day["dhan"].get_fund_limits()) == "DH-901"
