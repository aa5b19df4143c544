"""pykiteconnect (kiteconnect 5.2.2) against the Kite emulator: a trader's day, in order."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.brokers.sdk.conftest import FOREIGN_IP, option_contract, start_emulator

API_KEY, API_SECRET = "kitesdkapp", "kitesdksecret"
REDIRECT = "http://127.0.0.1:9/brokers/callback/kite/"


@pytest.fixture(scope="module")
def emulator(loopback_only):
    running = start_emulator("kite")
    running.add_account(
        api_key=API_KEY, api_secret=API_SECRET, user_id="ZS1001", redirect_uri=REDIRECT
    )
    running.add_account(
        api_key="kitepoor", api_secret="kitepoorsecret", user_id="ZS1002", cash="1000"
    )
    running.add_account(api_key="kiteburst", api_secret="s", user_id="ZS1004")
    running.add_account(
        api_key="kiteremote", api_secret="s", user_id="ZS1003", registered_ip=FOREIGN_IP
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def kite(emulator):
    from kiteconnect import KiteConnect

    return KiteConnect(api_key=API_KEY, root=emulator.base_url, disable_ssl=True)


@pytest.fixture(scope="module")
def day(emulator):
    """What the day's steps hand each other (order ids, the contract)."""
    contract = option_contract(emulator)
    return {"contract": contract, "contract_symbol": kite_symbol(contract)}


def sdk_for(emulator, api_key: str):
    from kiteconnect import KiteConnect

    return KiteConnect(
        api_key=api_key, access_token=emulator.issue_token(api_key), root=emulator.base_url
    )


def test_login_and_token_exchange(emulator, kite):
    from urllib.parse import parse_qs, urlsplit

    redirect = emulator.approve_login(f"{emulator.login_url}?v=3&api_key={API_KEY}")
    request_token = parse_qs(urlsplit(redirect).query)["request_token"][0]
    session = kite.generate_session(request_token, api_secret=API_SECRET)
    assert session["user_id"] == "ZS1001"
    assert session["login_time"].year == 2026  # the SDK parsed the documented format
    assert kite.access_token == session["access_token"]


def test_profile(kite):
    profile = kite.profile()
    assert profile["user_id"] == "ZS1001"
    assert profile["broker"] == "ZERODHA"


def test_funds(kite):
    margins = kite.margins()
    assert margins["equity"]["available"]["live_balance"] == 1_000_000
    assert kite.margins("equity")["net"] == 1_000_000


def test_quotes_index_and_option(kite, day):
    symbol = day["contract_symbol"]
    quotes = kite.quote(["NSE:NIFTY 50", f"NFO:{symbol}"])
    assert quotes["NSE:NIFTY 50"]["instrument_token"] == 256265
    assert quotes[f"NFO:{symbol}"]["last_price"] > 0
    ltp = kite.ltp(f"NFO:{symbol}")
    assert ltp[f"NFO:{symbol}"]["instrument_token"] == day["contract"]["exchange_token"] * 256 + 2


def test_instrument_master(kite, day):
    rows = kite.instruments("NFO")
    mine = [r for r in rows if r["tradingsymbol"] == day["contract_symbol"]]
    assert len(mine) == 1
    assert mine[0]["expiry"] == date.fromisoformat(day["contract"]["expiry"])
    assert mine[0]["lot_size"] == 65 and mine[0]["instrument_type"] == "CE"
    assert all(r["exchange"] == "NFO" for r in rows)
    assert any(r["tradingsymbol"] == "NIFTY 50" for r in kite.instruments())


def test_basket_margins(kite, day):
    short = {
        "exchange": "NFO", "tradingsymbol": day["contract_symbol"], "transaction_type": "SELL",
        "variety": "regular", "product": "NRML", "order_type": "MARKET", "quantity": 65,
        "price": 0, "trigger_price": 0,
    }  # fmt: skip
    margins = kite.basket_order_margins([short], consider_positions=True)
    # A lone short: no hedge benefit, so the final total is the initial one.
    assert margins["initial"]["total"] > 0
    assert margins["final"]["total"] == margins["initial"]["total"]


def test_place_limit_with_tag(kite, day):
    order_id = kite.place_order(
        variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
        transaction_type="BUY", quantity=65, product="NRML", order_type="LIMIT",
        price=0.05, tag="sdklimit1",
    )  # fmt: skip
    day["limit"] = order_id
    assert order_id.isdigit()


def test_place_market_with_protection_and_tag(kite, day):
    order_id = kite.place_order(
        variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
        transaction_type="BUY", quantity=65, product="NRML", order_type="MARKET",
        market_protection=-1, tag="sdkmarket1",
    )  # fmt: skip
    day["market"] = order_id
    assert order_id != day["limit"]


def test_market_without_protection_is_refused(kite, day):
    from kiteconnect.exceptions import InputException

    with pytest.raises(InputException, match="market protection"):
        kite.place_order(
            variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
            transaction_type="BUY", quantity=65, product="NRML", order_type="MARKET",
        )  # fmt: skip


def test_order_book(kite, day):
    book = {o["order_id"]: o for o in kite.orders()}
    assert book[day["limit"]]["status"] == "OPEN"
    assert book[day["limit"]]["tag"] == "sdklimit1"
    assert book[day["market"]]["status"] == "COMPLETE"
    assert book[day["market"]]["order_timestamp"].year == 2026


def test_history_by_id_oldest_first(kite, day):
    history = kite.order_history(day["market"])
    statuses = [row["status"] for row in history]
    assert statuses[0] == "PUT ORDER REQ RECEIVED"
    assert statuses[-1] == "COMPLETE"


def test_modify(kite, day):
    assert kite.modify_order("regular", day["limit"], price=0.1, quantity=130) == day["limit"]
    row = kite.order_history(day["limit"])[-1]
    assert row["price"] == 0.1 and row["quantity"] == 130


def test_cancel(kite, day):
    assert kite.cancel_order("regular", day["limit"]) == day["limit"]
    assert kite.order_history(day["limit"])[-1]["status"] == "CANCELLED"


def test_trades_book_and_per_order(kite, day):
    trades = kite.trades()
    assert [t["order_id"] for t in trades] == [day["market"]]
    assert trades[0]["trade_id"] and trades[0]["quantity"] == 65
    assert trades[0]["fill_timestamp"].year == 2026
    per_order = kite.order_trades(day["market"])
    assert [t["trade_id"] for t in per_order] == [trades[0]["trade_id"]]
    assert kite.order_trades(day["limit"]) == []


def test_positions(kite, day):
    net = kite.positions()["net"]
    assert [(p["tradingsymbol"], p["quantity"]) for p in net] == [(day["contract_symbol"], 65)]


def test_unknown_symbol_is_an_input_error(kite):
    from kiteconnect.exceptions import InputException

    with pytest.raises(InputException, match="unknown instrument"):
        kite.place_order(
            variety="regular", exchange="NFO", tradingsymbol="NIFTY26DEC99999CE",
            transaction_type="BUY", quantity=65, product="NRML", order_type="LIMIT", price=1,
        )  # fmt: skip


def test_insufficient_funds_sdk_lacks_margin_exception_docs_win(emulator, day):
    """Kite documents `error_type: MarginException`; pykiteconnect has no such class and maps
    unknown types to GeneralException. The emulator keeps the documented type."""
    import requests
    from kiteconnect.exceptions import GeneralException

    poor = sdk_for(emulator, "kitepoor")
    with pytest.raises(GeneralException, match="Insufficient funds") as raised:
        poor.place_order(
            variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
            transaction_type="BUY", quantity=650, product="NRML", order_type="LIMIT",
            price=100,
        )  # fmt: skip
    assert type(raised.value) is GeneralException and raised.value.code == 400
    raw = requests.post(
        f"{emulator.base_url}/orders/regular",
        data={"exchange": "NFO", "tradingsymbol": day["contract_symbol"], "quantity": "650",
              "transaction_type": "BUY", "product": "NRML", "order_type": "LIMIT", "price": "100"},
        headers={"X-Kite-Version": "3", "Authorization": f"token kitepoor:{poor.access_token}"},
        timeout=5,
    )  # fmt: skip
    assert raw.json()["error_type"] == "MarginException"


def test_static_ip_refuses_writes_not_reads(emulator, day):
    from kiteconnect.exceptions import PermissionException

    remote = sdk_for(emulator, "kiteremote")
    assert remote.orders() == []  # reads are not IP-checked
    with pytest.raises(PermissionException, match="static IP"):
        remote.place_order(
            variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
            transaction_type="BUY", quantity=65, product="NRML", order_type="LIMIT", price=1,
        )  # fmt: skip


def test_eleventh_order_in_a_second_is_refused(emulator, day):
    from kiteconnect.exceptions import NetworkException

    burst = sdk_for(emulator, "kiteburst")
    refused = []
    for n in range(11):
        try:
            burst.place_order(
                variety="regular", exchange="NFO", tradingsymbol=day["contract_symbol"],
                transaction_type="SELL", quantity=65, product="NRML", order_type="LIMIT",
                price=5000, tag=f"burst{n}",
            )  # fmt: skip
        except NetworkException as err:
            refused.append((n, err.code))
    assert refused == [(10, 429)]


def test_bad_token(emulator):
    from kiteconnect import KiteConnect
    from kiteconnect.exceptions import TokenException

    stranger = KiteConnect(api_key=API_KEY, access_token="not-a-token", root=emulator.base_url)
    with pytest.raises(TokenException):
        stranger.profile()


def test_expired_token_after_six_ist(emulator, kite):
    from kiteconnect.exceptions import TokenException

    emulator.advance_clock(timedelta(days=1).total_seconds())  # 10:30 IST the next day
    with pytest.raises(TokenException):
        kite.profile()


def test_logout_invalidates(emulator):
    from kiteconnect.exceptions import TokenException

    fresh = sdk_for(emulator, API_KEY)
    assert fresh.invalidate_access_token() is True
    with pytest.raises(TokenException):
        fresh.profile()


def kite_symbol(contract: dict) -> str:
    from decimal import Decimal

    from execution.market.symbols import kite_tradingsymbol

    return kite_tradingsymbol(
        contract["underlying"],
        date.fromisoformat(contract["expiry"]),
        Decimal(contract["strike"]),
        contract["option_type"],
        monthly=contract["monthly"],
    )
