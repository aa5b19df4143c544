"""UpstoxAdapter against the Upstox emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from brokers.base import (
    AmbiguousError,
    AuthError,
    InputRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    RateLimitedError,
    Side,
    StaticIPError,
)
from brokers.upstox import UpstoxAdapter
from execution.markettime import IST
from tests.brokers.upstox.conftest import BROKER_SYMBOL, CLIENT_ID, KEY, REDIRECT, make_adapter

pytestmark = pytest.mark.network


def upstox_order(tag: str, **changes) -> OrderRequest:
    return OrderRequest(
        **{
            "exchange": "NFO",
            "tradingsymbol": BROKER_SYMBOL,
            "instrument_token": KEY,
            "side": Side.BUY,
            "quantity": 75,
            "order_type": OrderType.MARKET,
            "product": Product.MIS,
            "tag": tag,
            **changes,
        }
    )


def callback_params(emulator, url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(emulator.approve_login(url)).query).items()}


def test_oauth_round_trip_and_token_dies_at_0330_ist(emulator):
    adapter = make_adapter(emulator)
    emulator.set_clock(datetime(2026, 11, 24, 2, 30, tzinfo=IST))
    params = callback_params(emulator, adapter.login_url(state="xyz", redirect_uri=REDIRECT))
    assert params["state"] == "xyz"
    grant = adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    assert grant.broker_user_id == "7UPX01"
    assert grant.raw["broker"] == "UPSTOX"
    authed = make_adapter(emulator, token=grant.access_token)
    assert authed.funds().available == Decimal("1000000")
    emulator.advance_clock(3600)  # 03:30 IST the same day
    with pytest.raises(AuthError) as caught:
        authed.funds()
    assert caught.value.code == "UDAPI100050"


def test_wrong_secret_is_refused_and_the_code_cannot_be_reused(emulator):
    adapter = make_adapter(emulator)
    params = callback_params(emulator, adapter.login_url(state="s1", redirect_uri=REDIRECT))
    with pytest.raises(AuthError):
        make_adapter(emulator, secret="bad").exchange_token(params=params, redirect_uri=REDIRECT)
    with pytest.raises(AuthError):
        adapter.exchange_token(params=params, redirect_uri=REDIRECT)


def test_unregistered_redirect_uri_is_refused_at_the_dialog(emulator):
    url = make_adapter(emulator).login_url(state="s", redirect_uri="http://evil.example/cb")
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["errorCode"] == "UDAPI100068"


def test_orders_found_by_tag_with_mapped_statuses(emulator, adapter):
    market = adapter.place_order(upstox_order("up1"))
    assert market.raw["order_ids"] == [market.broker_order_id]
    found = adapter.find_order_by_tag("up1")
    assert (found.broker_order_id, found.status, found.average_price) == (
        market.broker_order_id,
        OrderStatus.FILLED,
        Decimal("100.1"),
    )
    resting = adapter.place_order(
        upstox_order("up2", order_type=OrderType.LIMIT, price=Decimal("95.5"))
    )
    assert adapter.order_status(resting.broker_order_id).status == OrderStatus.OPEN
    assert adapter.find_order_by_tag("none") is None
    emulator.queue_faults("reject-later")
    rejected = adapter.place_order(upstox_order("up3"))
    assert adapter.find_order_by_tag("up3").broker_order_id == rejected.broker_order_id
    assert adapter.find_order_by_tag("up3").status == OrderStatus.REJECTED


def test_pending_until_filled(emulator, adapter):
    emulator.configure(fill_delay_ms=150)
    ack = adapter.place_order(upstox_order("slowup"))
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.PENDING
    time.sleep(0.2)
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.FILLED


def test_writes_go_to_the_hft_host_only(emulator, adapter):
    on_api_host = requests.post(
        emulator.base_urls["api"] + "/v3/order/place",
        json={},
        headers=adapter.client.headers(),
        timeout=5,
    )
    assert on_api_host.status_code in (404, 405)


def test_modify_cancel_positions_funds_quote(adapter):
    ack = adapter.place_order(upstox_order("mc1", order_type=OrderType.LIMIT, price=Decimal("90")))
    adapter.modify_order(ack.broker_order_id, price=Decimal("92"))
    assert adapter.order_status(ack.broker_order_id).raw["price"] == 92
    adapter.cancel_order(ack.broker_order_id)
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.CANCELLED
    with pytest.raises(InputRejectedError) as caught:
        adapter.cancel_order(ack.broker_order_id)
    assert caught.value.code == "UDAPI100040"
    adapter.place_order(upstox_order("mc2", quantity=150))
    [position] = adapter.positions()
    assert (position.tradingsymbol, position.quantity, position.product) == (
        BROKER_SYMBOL,
        150,
        Product.MIS,
    )
    assert adapter.funds().used == Decimal("15015")  # premium: 150 at 100.1
    assert adapter.quote([KEY])[KEY].last_price == Decimal("100")


def test_unknown_instrument_is_input_rejected(adapter):
    with pytest.raises(InputRejectedError):
        adapter.place_order(upstox_order("bad1", instrument_token="NSE_FO|1"))
    with pytest.raises(InputRejectedError):
        adapter.place_order(upstox_order("bad2", instrument_token=""))


def test_rate_limit_5xx_and_static_ip(emulator, adapter):
    emulator.queue_faults("5xx")
    # Upstox documents no 5xx as "not accepted": ambiguous on a write (looked up, not resent).
    with pytest.raises(AmbiguousError) as server:
        adapter.place_order(upstox_order("e0"))
    assert server.value.http_status == 503
    for i in range(9):
        adapter.place_order(upstox_order(f"e{i + 1}"))
    with pytest.raises(RateLimitedError) as limited:
        adapter.place_order(upstox_order("e10"))
    assert (limited.value.code, limited.value.retry_after) == ("UDAPI10005", 1.0)
    emulator.configure(registered_ip="198.51.100.4")
    time.sleep(1.0)
    with pytest.raises(StaticIPError):
        adapter.place_order(upstox_order("e11"))


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_lost_answers_are_ambiguous_and_found_by_tag(emulator, fault):
    adapter = make_adapter(emulator, token=emulator.issue_token(CLIENT_ID), read_timeout=0.3)
    emulator.queue_faults(fault)
    with pytest.raises(AmbiguousError):
        adapter.place_order(upstox_order("lost"))
    assert adapter.find_order_by_tag("lost").status == OrderStatus.FILLED


def test_adapter_is_registered_for_upstox():
    from brokers.registry import adapter_class

    assert adapter_class("upstox") is UpstoxAdapter
