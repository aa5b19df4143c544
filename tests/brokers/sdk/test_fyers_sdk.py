"""fyers-apiv3 3.2.0 against the Fyers emulator (its hosts are module constants: patched).

FyersModel returns the answer's JSON for HTTP errors too (`s: error`, negative `code`)."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from tests.brokers.sdk.conftest import FOREIGN_IP, option_contract, start_emulator

APP_ID, SECRET = "FYSDKAPP-100", "fysdksecret"
REDIRECT = "http://127.0.0.1:9/brokers/callback/fyers/"


@pytest.fixture(scope="module")
def emulator(loopback_only):
    from fyers_apiv3.fyersModel import Config

    running = start_emulator("fyers")
    running.add_account(api_key=APP_ID, api_secret=SECRET, user_id="FY1001", redirect_uri=REDIRECT)
    running.add_account(api_key="FYPOOR-100", api_secret="s", user_id="FY1002", cash="1000")
    running.add_account(api_key="FYBURST-100", api_secret="s", user_id="FY1003")
    running.add_account(
        api_key="FYREMOTE-100", api_secret="s", user_id="FY1004", registered_ip=FOREIGN_IP
    )
    saved = Config.API, Config.DATA_API
    Config.API, Config.DATA_API = f"{running.base_url}/api/v3", f"{running.base_url}/data"
    yield running
    Config.API, Config.DATA_API = saved
    running.stop()


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("fyers-logs"))


def model_for(emulator, logs, app_id: str, token: str | None = None):
    from fyers_apiv3.fyersModel import FyersModel

    token = token or emulator.issue_token(app_id)
    return FyersModel(client_id=app_id, token=token, is_async=False, log_path=logs)


@pytest.fixture(scope="module")
def day(emulator):
    from brokers.emulator.fyers import fy_token, fyers_symbol
    from brokers.emulator.master import Contract

    contract = Contract.from_json(option_contract(emulator))
    return {"symbol": fyers_symbol(contract), "fy_token": fy_token(contract)}


def order(day, **fields) -> dict:
    return {
        "symbol": day["symbol"], "qty": 65, "type": 1, "side": 1, "productType": "MARGIN",
        "limitPrice": 0.05, "stopPrice": 0, "validity": "DAY", "disclosedQty": 0,
        "offlineOrder": False, "stopLoss": 0, "takeProfit": 0, **fields,
    }  # fmt: skip


def test_login_auth_code_and_token(emulator, logs, day):
    from urllib.parse import parse_qs, urlsplit

    from fyers_apiv3.fyersModel import SessionModel

    session = SessionModel(
        client_id=APP_ID, secret_key=SECRET, redirect_uri=REDIRECT, response_type="code",
        grant_type="authorization_code", state="s1",
    )  # fmt: skip
    redirect = emulator.approve_login(session.generate_authcode())
    query = parse_qs(urlsplit(redirect).query)
    assert query["s"] == ["ok"] and query["state"] == ["s1"]
    session.set_token(query["auth_code"][0])
    answer = session.generate_token()
    assert answer["s"] == "ok"
    day["fyers"] = model_for(emulator, logs, APP_ID, answer["access_token"])


def test_wrong_secret_is_minus_371(emulator):
    from fyers_apiv3.fyersModel import SessionModel

    session = SessionModel(
        client_id=APP_ID, secret_key="wrong", redirect_uri=REDIRECT, response_type="code",
        grant_type="authorization_code",
    )  # fmt: skip
    redirect = emulator.approve_login(session.generate_authcode())
    session.set_token(redirect.split("auth_code=")[1].split("&")[0])
    assert session.generate_token()["code"] == -371


def test_profile(day):
    assert day["fyers"].get_profile()["data"]["fy_id"] == "FY1001"


def test_funds(day):
    funds = {row["id"]: row for row in day["fyers"].funds()["fund_limit"]}
    assert funds[10]["equityAmount"] == 1_000_000


def test_quotes_index_and_option(day):
    answer = day["fyers"].quotes({"symbols": f"NSE:NIFTY50-INDEX,{day['symbol']}"})
    by_name = {row["n"]: row["v"] for row in answer["d"]}
    assert by_name["NSE:NIFTY50-INDEX"]["lp"] > 20_000
    assert by_name[day["symbol"]]["ask"] >= by_name[day["symbol"]]["bid"] > 0


def test_instrument_master(emulator, day):
    text = requests.get(f"{emulator.base_url}/sym_details/NSE_FO.csv", timeout=5).text
    rows = list(csv.reader(io.StringIO(text)))
    mine = next(r for r in rows if r[9] == day["symbol"])
    assert len(mine) == 21 and mine[0] == day["fy_token"]
    assert (mine[3], mine[16], mine[13]) == ("65", "CE", "NIFTY")


def test_place_limit_with_tag(day):
    answer = day["fyers"].place_order(order(day, orderTag="sdklimit1"))
    assert (answer["s"], answer["code"]) == ("ok", 1101)
    day["limit"] = answer["id"]


def test_place_market_becomes_protected_with_tag(day):
    answer = day["fyers"].place_order(order(day, type=2, limitPrice=0, orderTag="sdkmarket1"))
    assert answer["code"] == 1101
    day["market"] = answer["id"]


def test_order_book_and_by_id_and_by_tag(day):
    book = {o["id"]: o for o in day["fyers"].orderbook()["orderBook"]}
    assert book[day["limit"]]["status"] == 6 and book[day["limit"]]["orderTag"] == "1:sdklimit1"
    assert book[day["market"]]["status"] == 2
    assert book[day["market"]]["fyToken"] == day["fy_token"]
    by_id = day["fyers"].orderbook({"id": day["market"]})["orderBook"]
    assert [o["id"] for o in by_id] == [day["market"]]
    by_tag = day["fyers"].orderbook({"order_tag": "1:sdklimit1"})["orderBook"]
    assert [o["id"] for o in by_tag] == [day["limit"]]


def test_modify_without_type_sdk_disagrees_docs_win(day):
    """The docs require `type` on modify; the SDK's docstring calls it optional."""
    answer = day["fyers"].modify_order({"id": day["limit"], "limitPrice": 0.1})
    assert answer["s"] == "error" and answer["code"] == -50


def test_modify(day):
    answer = day["fyers"].modify_order(
        {"id": day["limit"], "type": 1, "limitPrice": 0.1, "qty": 130}
    )
    assert (answer["code"], answer["id"]) == (1101, day["limit"])
    row = day["fyers"].orderbook({"id": day["limit"]})["orderBook"][0]
    assert (row["qty"], row["limitPrice"]) == (130, 0.1)


def test_cancel(day):
    answer = day["fyers"].cancel_order({"id": day["limit"]})
    assert answer["code"] == 1103
    assert day["fyers"].orderbook({"id": day["limit"]})["orderBook"][0]["status"] == 1


def test_trades_book_and_per_order(day):
    """Fyers has no per-order trade call: the book filtered by `orderNumber`."""
    trades = day["fyers"].tradebook()["tradeBook"]
    assert [t["orderNumber"] for t in trades] == [day["market"]]
    assert trades[0]["tradeNumber"] and trades[0]["tradedQty"] == 65
    assert trades[0]["orderTag"] == "1:sdkmarket1"
    assert [t for t in trades if t["orderNumber"] == day["limit"]] == []


def test_positions(day):
    rows = day["fyers"].positions()["netPositions"]
    assert [(r["symbol"], r["netQty"]) for r in rows] == [(day["symbol"], 65)]


def test_unknown_symbol(day):
    answer = day["fyers"].place_order(order(day, symbol="NSE:NIFTY26DEC99999CE"))
    assert answer["s"] == "error" and "unknown instrument" in answer["message"]


def test_insufficient_funds(emulator, logs, day):
    poor = model_for(emulator, logs, "FYPOOR-100")
    answer = poor.place_order(order(day, limitPrice=100, qty=650))
    assert answer["s"] == "error" and "Insufficient funds" in answer["message"]


def test_static_ip_refuses_writes_not_reads(emulator, logs, day):
    remote = model_for(emulator, logs, "FYREMOTE-100")
    assert remote.orderbook()["orderBook"] == []
    answer = remote.place_order(order(day))
    assert answer["s"] == "error" and "static IP" in answer["message"]


def test_eleventh_order_in_a_second_is_minus_429(emulator, logs, day):
    burst = model_for(emulator, logs, "FYBURST-100")
    codes = [burst.place_order(order(day, orderTag=f"b{n}"))["code"] for n in range(11)]
    assert codes == [1101] * 10 + [-429]


def test_bad_token(emulator, logs):
    answer = model_for(emulator, logs, APP_ID, "not-a-token").get_profile()
    assert answer["code"] == -15


def test_expired_token(emulator, day):
    emulator.advance_clock(24 * 3600)
    assert day["fyers"].get_profile()["code"] == -8


def test_logout(emulator, logs):
    fyers = model_for(emulator, logs, APP_ID)
    assert fyers.logout()["s"] == "ok"
    assert fyers.get_profile()["s"] == "error"
