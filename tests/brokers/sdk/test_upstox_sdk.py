"""upstox-python-sdk 2.30.0 against the Upstox emulator (two hosts: api and hft)."""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from tests.brokers.sdk.conftest import FOREIGN_IP, option_contract, start_emulator

API_KEY, API_SECRET = "upsdkapp", "upsdksecret"
REDIRECT = "http://127.0.0.1:9/brokers/callback/upstox/"
V = "2.0"


@pytest.fixture(scope="module")
def emulator(loopback_only):
    running = start_emulator("upstox")
    running.add_account(
        api_key=API_KEY, api_secret=API_SECRET, user_id="UP1001", redirect_uri=REDIRECT
    )
    running.add_account(api_key="uppoor", api_secret="s", user_id="UP1002", cash="1000")
    running.add_account(api_key="upburst", api_secret="s", user_id="UP1003")
    running.add_account(
        api_key="upremote", api_secret="s", user_id="UP1004", registered_ip=FOREIGN_IP
    )
    yield running
    running.stop()


def client_for(emulator, token: str = ""):
    import upstox_client

    configuration = upstox_client.Configuration()
    configuration.host = emulator.base_urls["api"]
    configuration.order_host = emulator.base_urls["hft"]
    configuration.access_token = token
    return upstox_client.ApiClient(configuration)


@pytest.fixture(scope="module")
def day(emulator):
    contract = option_contract(emulator)
    return {"key": f"NSE_FO|{contract['exchange_token']}", "contract": contract}


def v3_order(key: str, **fields):
    import upstox_client

    body = {
        "quantity": 65, "product": "D", "validity": "DAY", "price": 0.0, "tag": "",
        "instrument_token": key, "order_type": "LIMIT", "transaction_type": "BUY",
        "disclosed_quantity": 0, "trigger_price": 0.0, "is_amo": False, **fields,
    }  # fmt: skip
    return upstox_client.PlaceOrderV3Request(**body)


def test_authorize_without_response_type_sdk_disagrees_docs_win(emulator):
    """The docs make `response_type=code` part of the dialog URL; LoginApi.authorize does not
    send it, so the emulator refuses the SDK's call. The browser URL with it works."""
    import upstox_client
    from upstox_client.rest import ApiException

    with pytest.raises(ApiException) as raised:
        upstox_client.LoginApi(client_for(emulator)).authorize(API_KEY, REDIRECT, V)
    assert raised.value.status == 400
    assert "response_type" in raised.value.body.decode()


def test_login_and_token_exchange(emulator, day):
    from urllib.parse import parse_qs, urlencode, urlsplit

    import upstox_client

    query = urlencode({"response_type": "code", "client_id": API_KEY, "redirect_uri": REDIRECT})
    redirect = emulator.approve_login(f"{emulator.login_url}?{query}")
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    token = upstox_client.LoginApi(client_for(emulator)).token(
        V, code=code, client_id=API_KEY, client_secret=API_SECRET, redirect_uri=REDIRECT,
        grant_type="authorization_code",
    )  # fmt: skip
    assert token.user_id == "UP1001" and token.broker == "UPSTOX"
    day["api"] = client_for(emulator, token.access_token)


def test_profile(day):
    import upstox_client

    assert upstox_client.UserApi(day["api"]).get_profile(V).data.user_id == "UP1001"


def test_funds(day):
    import upstox_client

    funds = upstox_client.UserApi(day["api"]).get_user_fund_margin(V).data
    assert funds["equity"].available_margin == 1_000_000


def test_quotes_index_and_option_v3(day):
    import upstox_client

    quotes = upstox_client.MarketQuoteV3Api(day["api"]).get_ltp(
        instrument_key=f"NSE_INDEX|Nifty 50,{day['key']}"
    )
    by_key = {q.instrument_token: q for q in quotes.data.values()}
    assert by_key["NSE_INDEX|Nifty 50"].last_price > 20_000
    assert by_key[day["key"]].last_price > 0


def test_basket_margin(day):
    import upstox_client

    instrument = upstox_client.Instrument(
        instrument_key=day["key"], quantity=65, product="D", transaction_type="SELL", price=0
    )
    answer = upstox_client.ChargeApi(day["api"]).post_margin(
        upstox_client.MarginRequest(instruments=[instrument])
    )
    # A lone short: no hedge benefit, so the final margin is the required one.
    assert answer.data.required_margin > 0
    assert answer.data.final_margin == answer.data.required_margin


def test_ltp_by_symbol_sdk_disagrees_docs_win(day):
    """MarketQuoteApi.ltp sends `symbol=`; the documented parameter is `instrument_key`."""
    import upstox_client
    from upstox_client.rest import ApiException

    with pytest.raises(ApiException) as raised:
        upstox_client.MarketQuoteApi(day["api"]).ltp(day["key"], V)
    assert raised.value.status == 400 and "instrument_key" in raised.value.body.decode()


def test_instrument_master(emulator, day):
    answer = requests.get(
        emulator.base_urls["api"] + "/market-quote/instruments/exchange/complete.json.gz",
        timeout=5,
    )
    rows = json.loads(gzip.decompress(answer.content))
    mine = next(r for r in rows if r["instrument_key"] == day["key"])
    assert mine["lot_size"] == 65 and mine["instrument_type"] == "CE"
    assert mine["underlying_key"] == "NSE_INDEX|Nifty 50"
    assert mine["trading_symbol"].startswith("NIFTY ") and mine["trading_symbol"].endswith(" 26")


def test_place_limit_v3_with_tag(day):
    import upstox_client

    answer = upstox_client.OrderApiV3(day["api"]).place_order(
        v3_order(day["key"], price=0.05, tag="sdklimit1")
    )
    day["limit"] = answer.data.order_ids[0]
    assert answer.metadata.latency >= 0


def test_place_market_v2_route_with_tag(day):
    """The deprecated v2 place (MPP applied by default to MARKET)."""
    import upstox_client

    body = upstox_client.PlaceOrderRequest(
        quantity=65, product="D", validity="DAY", price=0.0, tag="sdkmarket1",
        instrument_token=day["key"], order_type="MARKET", transaction_type="BUY",
        disclosed_quantity=0, trigger_price=0.0, is_amo=False,
    )  # fmt: skip
    day["market"] = upstox_client.OrderApi(day["api"]).place_order(body, V).data.order_id
    assert day["market"] != day["limit"]


def test_order_book(day):
    import upstox_client

    book = {o.order_id: o for o in upstox_client.OrderApi(day["api"]).get_order_book(V).data}
    assert book[day["limit"]].status == "open" and book[day["limit"]].tag == "sdklimit1"
    assert book[day["market"]].status == "complete"


def test_history_by_id_and_by_tag(day):
    import upstox_client

    orders = upstox_client.OrderApi(day["api"])
    history = orders.get_order_details(V, order_id=day["market"]).data
    assert history[0].status == "put order req received" and history[-1].status == "complete"
    by_tag = orders.get_order_details(V, tag="sdklimit1").data
    assert {row.order_id for row in by_tag} == {day["limit"]}
    assert orders.get_order_status(order_id=day["limit"]).data.status == "open"


def test_modify(day):
    import upstox_client

    body = upstox_client.ModifyOrderRequest(
        quantity=130, validity="DAY", price=0.1, order_id=day["limit"], order_type="LIMIT",
        disclosed_quantity=0, trigger_price=0.0,
    )  # fmt: skip
    assert upstox_client.OrderApiV3(day["api"]).modify_order(body).data.order_id == day["limit"]
    status = upstox_client.OrderApi(day["api"]).get_order_status(order_id=day["limit"]).data
    assert status.quantity == 130 and status.price == 0.1


def test_cancel(day):
    import upstox_client

    answer = upstox_client.OrderApiV3(day["api"]).cancel_order(day["limit"])
    assert answer.data.order_id == day["limit"]
    status = upstox_client.OrderApi(day["api"]).get_order_status(order_id=day["limit"]).data
    assert status.status == "cancelled"


def test_trades_book_and_per_order(day):
    import upstox_client

    orders = upstox_client.OrderApi(day["api"])
    trades = orders.get_trade_history(V).data
    assert [t.order_id for t in trades] == [day["market"]] and trades[0].trade_id
    per_order = orders.get_trades_by_order(day["market"], V).data
    assert [t.trade_id for t in per_order] == [trades[0].trade_id]
    assert per_order[0].quantity == 65


def test_positions(day):
    import upstox_client

    positions = upstox_client.PortfolioApi(day["api"]).get_positions(V).data
    assert [(p.instrument_token, p.quantity) for p in positions] == [(day["key"], 65)]


def test_unknown_instrument(day):
    import upstox_client
    from upstox_client.rest import ApiException

    with pytest.raises(ApiException) as raised:
        upstox_client.OrderApiV3(day["api"]).place_order(v3_order("NSE_FO|999999", price=1.0))
    assert json.loads(raised.value.body)["errors"][0]["errorCode"] == "UDAPI100038"


def _write_error(api, key: str, **fields) -> dict:
    import upstox_client
    from upstox_client.rest import ApiException

    with pytest.raises(ApiException) as raised:
        upstox_client.OrderApiV3(api).place_order(v3_order(key, **fields))
    return {"status": raised.value.status, **json.loads(raised.value.body)["errors"][0]}


def test_insufficient_funds(emulator, day):
    poor = client_for(emulator, emulator.issue_token("uppoor"))
    error = _write_error(poor, day["key"], price=100.0, quantity=650)
    assert error["status"] == 400 and "Insufficient funds" in error["message"]


def test_static_ip_refuses_writes_not_reads(emulator, day):
    import upstox_client

    remote = client_for(emulator, emulator.issue_token("upremote"))
    assert upstox_client.OrderApi(remote).get_order_book(V).data == []
    error = _write_error(remote, day["key"], price=1.0)
    assert error["status"] == 403


def test_eleventh_order_in_a_second_is_refused(emulator, day):
    import upstox_client
    from upstox_client.rest import ApiException

    burst = upstox_client.OrderApiV3(client_for(emulator, emulator.issue_token("upburst")))
    refused = []
    for n in range(11):
        try:
            burst.place_order(v3_order(day["key"], price=0.05, tag=f"burst{n}"))
        except ApiException as err:
            refused.append((n, err.status, json.loads(err.body)["errors"][0]["errorCode"]))
    assert refused == [(10, 429, "UDAPI10005")]


def test_bad_token(emulator):
    import upstox_client
    from upstox_client.rest import ApiException

    with pytest.raises(ApiException) as raised:
        upstox_client.UserApi(client_for(emulator, "not-a-token")).get_profile(V)
    assert raised.value.status == 401 and "UDAPI100050" in raised.value.body.decode()


def test_expired_token_after_0330_ist(emulator, day):
    import upstox_client
    from upstox_client.rest import ApiException

    emulator.advance_clock(24 * 3600)
    with pytest.raises(ApiException) as raised:
        upstox_client.UserApi(day["api"]).get_profile(V)
    assert raised.value.status == 401


def test_logout_invalidates(emulator):
    import upstox_client
    from upstox_client.rest import ApiException

    api = client_for(emulator, emulator.issue_token(API_KEY))
    upstox_client.LoginApi(api).logout(V)
    with pytest.raises(ApiException):
        upstox_client.UserApi(api).get_profile(V)
