"""smartapi-python 1.5.5 against the Angel One emulator.

smartapi-python raises only for transport and JSON problems: Angel's application errors come
back as dicts with `status: false` (HTTP 200), and the gateway's with `success: false`.
"""

from __future__ import annotations

import contextlib
import tempfile

import pytest
import requests

from tests.brokers.sdk.conftest import FOREIGN_IP, TRADING_MOMENT, option_contract, start_emulator

API_KEY, CLIENT, PIN, TOTP_SECRET = "angsdkkey", "A1001", "4321", "JBSWY3DPEHPK3PXP"
LOG_DIR = tempfile.mkdtemp(prefix="smartapi-logs-")


@pytest.fixture(scope="module")
def emulator(loopback_only):
    running = start_emulator("angelone")
    for api_key, client, fields in (
        (API_KEY, CLIENT, {}),
        ("angpoor", "A1002", {"cash": "1000"}),
        ("angburst", "A1003", {}),
        ("angremote", "A1004", {"registered_ip": FOREIGN_IP}),
    ):
        running.add_account(
            api_key=api_key, api_secret="s", user_id=client, client_id=client,
            extra={"pin": PIN, "totp_secret": TOTP_SECRET}, **fields,
        )  # fmt: skip
    yield running
    running.stop()


def smart_for(emulator, api_key: str = API_KEY, token: str | None = None):
    from SmartApi import SmartConnect

    # SmartConnect opens `logs/<date>/app.log` under the working directory: keep it out of
    # the repository.
    with contextlib.chdir(LOG_DIR):
        smart = SmartConnect(api_key=api_key, access_token=token, root=emulator.base_url)
    # individual_order_details() builds its URL from the class constant, not `root`.
    smart._rootUrl = emulator.base_url
    return smart


@pytest.fixture(scope="module")
def day(emulator):
    from brokers.emulator.angelone import angel_symbol
    from brokers.emulator.master import Contract

    contract = option_contract(emulator)
    return {
        "token": str(contract["exchange_token"]),
        "symbol": angel_symbol(Contract.from_json(contract)),
        "smart": smart_for(emulator),
    }


def order(day, **fields) -> dict:
    return {
        "variety": "NORMAL", "tradingsymbol": day["symbol"], "symboltoken": day["token"],
        "transactiontype": "BUY", "exchange": "NFO", "ordertype": "LIMIT",
        "producttype": "CARRYFORWARD", "duration": "DAY", "price": "0.05", "quantity": "65",
        **fields,
    }  # fmt: skip


def test_login_with_pin_and_totp_then_profile(day):
    from brokers.emulator.otp import totp

    session = day["smart"].generateSession(CLIENT, PIN, totp(TOTP_SECRET, TRADING_MOMENT))
    assert session["status"] is True
    assert session["data"]["clientcode"] == CLIENT  # generateSession reads getProfile
    assert session["data"]["jwtToken"].startswith("Bearer ")


def test_profile(day):
    assert day["smart"].getProfile(day["smart"].refresh_token)["data"]["clientcode"] == CLIENT


def test_funds(day):
    rms = day["smart"].rmsLimit()["data"]
    assert rms["availablecash"] == "1000000.00"


def test_quotes_index_and_option(day):
    answer = day["smart"].getMarketData("FULL", {"NSE": ["99926000"], "NFO": [day["token"]]})
    fetched = {row["symbolToken"]: row for row in answer["data"]["fetched"]}
    assert fetched["99926000"]["ltp"] > 20_000
    assert fetched[day["token"]]["depth"]["buy"][0]["price"] > 0
    ltp = day["smart"].ltpData("NFO", day["symbol"], day["token"])
    assert ltp["data"]["ltp"] > 0 and ltp["data"]["tradingsymbol"] == day["symbol"]


def test_instrument_master(emulator, day):
    rows = requests.get(
        f"{emulator.base_url}/OpenAPI_File/files/OpenAPIScripMaster.json", timeout=5
    ).json()
    mine = next(r for r in rows if r["token"] == day["token"])
    assert mine["symbol"] == day["symbol"] and mine["lotsize"] == "65"
    assert mine["instrumenttype"] == "OPTIDX" and mine["exch_seg"] == "NFO"
    assert float(mine["strike"]) / 100 == float(option_contract(emulator)["strike"])
    assert any(r["token"] == "99926000" and r["instrumenttype"] == "AMXIDX" for r in rows)


def test_place_limit_with_tag(day):
    answer = day["smart"].placeOrderFullResponse(order(day, ordertag="sdklimit1"))
    assert answer["status"] is True
    day["limit"], day["limit_unique"] = answer["data"]["orderid"], answer["data"]["uniqueorderid"]


def test_market_is_refused_for_algos_so_a_marketable_limit_is_sent(day):
    """From 1-Apr-2026 Angel One refuses MARKET (and IOC) orders from API algos; the
    protected form is a LIMIT through the touch."""
    refused = day["smart"].placeOrderFullResponse(order(day, ordertype="MARKET", price="0"))
    assert refused["status"] is False and "Market" in refused["message"]
    ask = day["smart"].getMarketData("FULL", {"NFO": [day["token"]]})["data"]["fetched"][0]
    price = f"{ask['depth']['sell'][0]['price'] * 1.02:.2f}"
    answer = day["smart"].placeOrderFullResponse(order(day, price=price, ordertag="sdkmkt1"))
    day["market"] = answer["data"]["orderid"]
    day["market_unique"] = answer["data"]["uniqueorderid"]


def test_long_ordertag_is_ab4008(day):
    answer = day["smart"].placeOrderFullResponse(order(day, ordertag="x" * 21))
    assert (answer["status"], answer["errorcode"]) == (False, "AB4008")


def test_order_book(day):
    book = {o["orderid"]: o for o in day["smart"].orderBook()["data"]}
    assert book[day["limit"]]["status"] == "open" and book[day["limit"]]["ordertag"] == "sdklimit1"
    assert book[day["market"]]["status"] == "complete"


def test_details_by_unique_order_id(day):
    details = day["smart"].individual_order_details(day["market_unique"])
    assert details["data"]["orderid"] == day["market"]
    assert details["data"]["status"] == "complete"


def test_modify(day):
    answer = day["smart"].modifyOrder(
        {**order(day, price="0.10", quantity="130"), "orderid": day["limit"]}
    )
    assert answer["data"]["orderid"] == day["limit"]
    row = day["smart"].individual_order_details(day["limit_unique"])["data"]
    assert (row["quantity"], row["price"]) == ("130", 0.1)


def test_cancel(day):
    answer = day["smart"].cancelOrder(day["limit"], "NORMAL")
    assert answer["data"]["orderid"] == day["limit"]
    assert day["smart"].individual_order_details(day["limit_unique"])["data"]["status"] == (
        "cancelled"
    )


def test_trades_book_and_per_order(day):
    """Angel has no per-order trade call: the book filtered by `orderid` is the per-order
    view."""
    trades = day["smart"].tradeBook()["data"]
    assert [t["orderid"] for t in trades] == [day["market"]]
    assert trades[0]["fillid"] and trades[0]["fillsize"] == "65"
    assert [t for t in trades if t["orderid"] == day["limit"]] == []


def test_positions(day):
    rows = day["smart"].position()["data"]
    assert [(r["symboltoken"], r["netqty"]) for r in rows] == [(day["token"], "65")]


def test_unknown_symbol(day):
    answer = day["smart"].placeOrderFullResponse(order(day, symboltoken="999999"))
    assert answer["status"] is False and "symboltoken" in answer["message"]


def test_insufficient_funds(emulator, day):
    poor = smart_for(emulator, "angpoor", emulator.issue_token("angpoor"))
    answer = poor.placeOrderFullResponse(order(day, price="100", quantity="650"))
    assert answer["status"] is False and "Insufficient funds" in answer["message"]


def test_static_ip_refuses_writes_not_reads(emulator, day):
    remote = smart_for(emulator, "angremote", emulator.issue_token("angremote"))
    assert remote.orderBook()["data"] is None  # reads are not IP-checked; empty is null
    answer = remote.placeOrderFullResponse(order(day))
    assert answer["status"] is False and "static IP" in answer["message"]


def test_eleventh_order_plain_text_429_sdk_cannot_parse_docs_win(emulator, day):
    """Angel answers a rate breach with plain text (reference §3.3); smartapi-python expects
    JSON and raises DataException. The emulator keeps the documented body."""
    from SmartApi.smartExceptions import DataException

    burst = smart_for(emulator, "angburst", emulator.issue_token("angburst"))
    outcomes = []
    for n in range(11):
        try:
            outcomes.append(burst.placeOrderFullResponse(order(day, ordertag=f"b{n}"))["status"])
        except DataException as err:
            outcomes.append(str(err))
    assert outcomes[:10] == [True] * 10
    assert "exceeding access rate" in outcomes[10]


def test_bad_token_is_ag8001(emulator):
    answer = smart_for(emulator, API_KEY, "not-a-jwt").getProfile("x")
    assert (answer["success"], answer["errorCode"]) == (False, "AG8001")


def test_expired_token_at_midnight_ist(emulator, day):
    emulator.advance_clock(24 * 3600)
    answer = day["smart"].rmsLimit()
    assert answer["errorCode"] == "AG8001"


def test_terminate_session(emulator):
    smart = smart_for(emulator, API_KEY, emulator.issue_token(API_KEY))
    assert smart.terminateSession(CLIENT)["status"] is True
    assert smart.rmsLimit()["errorCode"] == "AG8001"
