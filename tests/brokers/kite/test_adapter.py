"""KiteAdapter against the Kite emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from brokers.base import (
    AmbiguousError,
    AuthError,
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
from brokers.kite import KiteAdapter
from execution.markettime import IST
from tests.brokers.kite.conftest import API_KEY, REDIRECT, make_adapter

pytestmark = pytest.mark.network
SYMBOL = "NIFTY25D1624000CE"


def order(tag: str, **changes) -> OrderRequest:
    fields = {
        "exchange": "NFO",
        "tradingsymbol": SYMBOL,
        "side": Side.BUY,
        "quantity": 75,
        "order_type": OrderType.MARKET,
        "product": Product.NRML,
        "tag": tag,
        "market_protection": Decimal("2"),
        **changes,
    }
    return OrderRequest(**fields)


def test_login_round_trip_returns_state_and_token_until_six_am(emulator):
    adapter = make_adapter(emulator)
    url = adapter.login_url(state="st4te", redirect_uri=REDIRECT)
    assert url.startswith(emulator.login_url + "?v=3&api_key=" + API_KEY)
    emulator.set_clock(datetime(2026, 11, 23, 9, 10, tzinfo=IST))
    back = emulator.approve_login(url)
    assert back.startswith(REDIRECT)
    params = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
    assert params["state"] == "st4te"
    grant = adapter.exchange_token(params=params, redirect_uri=REDIRECT)
    assert grant.broker_user_id == "ZK4321"
    assert grant.expires_at == datetime(2026, 11, 24, 6, 0, tzinfo=IST)
    assert "access_token" not in grant.raw
    authed = make_adapter(emulator, token=grant.access_token)
    assert authed.funds().available == Decimal("1000000")


def test_wrong_checksum_is_refused_and_the_request_token_is_spent(emulator):
    url = make_adapter(emulator).login_url(state="s", redirect_uri=REDIRECT)
    params = {k: v[0] for k, v in parse_qs(urlsplit(emulator.approve_login(url)).query).items()}
    with pytest.raises(AuthError, match="checksum"):
        make_adapter(emulator, secret="wrong").exchange_token(params=params, redirect_uri=REDIRECT)
    with pytest.raises(AuthError):
        make_adapter(emulator).exchange_token(params=params, redirect_uri=REDIRECT)


def test_market_and_limit_orders_with_tags_are_found_and_mapped(adapter):
    market = adapter.place_order(order("mkt1"))
    limit = adapter.place_order(
        order("lim1", order_type=OrderType.LIMIT, price=Decimal("95"), market_protection=None)
    )
    assert market.broker_order_id != limit.broker_order_id
    filled = adapter.find_order_by_tag("mkt1")
    assert (filled.status, filled.filled_quantity, filled.average_price) == (
        OrderStatus.FILLED,
        75,
        Decimal("100.1"),
    )
    resting = adapter.order_status(limit.broker_order_id)
    assert (resting.status, resting.tag) == (OrderStatus.OPEN, "lim1")
    assert adapter.find_order_by_tag("nosuchtag") is None


def test_pending_status_before_the_fill(emulator, adapter):
    emulator.configure(fill_delay_ms=150)
    ack = adapter.place_order(order("slow1"))
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.PENDING
    time.sleep(0.2)
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.FILLED


def test_rejected_after_acknowledgement(emulator, adapter):
    emulator.queue_faults("reject-later")
    ack = adapter.place_order(order("rej1"))
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.REJECTED


def test_cancel_and_modify_a_resting_limit(adapter):
    ack = adapter.place_order(
        order("mod1", order_type=OrderType.LIMIT, price=Decimal("90"), market_protection=None)
    )
    adapter.modify_order(ack.broker_order_id, price=Decimal("91.5"))
    assert adapter.order_status(ack.broker_order_id).raw["price"] == 91.5
    adapter.cancel_order(ack.broker_order_id)
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.CANCELLED
    with pytest.raises(InputRejectedError):
        adapter.cancel_order(ack.broker_order_id)


def test_positions_funds_and_quotes(adapter):
    adapter.place_order(order("pos1", quantity=150))
    adapter.place_order(order("pos2", side=Side.SELL, quantity=75))
    [position] = adapter.positions()
    assert (position.tradingsymbol, position.quantity, position.product) == (
        SYMBOL,
        75,
        Product.NRML,
    )
    assert position.realised_pnl == Decimal("-15.00")  # bought at 100.1, sold at 99.9
    funds = adapter.funds()
    assert funds.available == Decimal("1000000") - Decimal("150") * Decimal("100.1") + Decimal(
        "75"
    ) * Decimal("99.9")
    quotes = adapter.quote([f"NFO:{SYMBOL}", "NSE:NIFTY 50"])
    assert quotes[f"NFO:{SYMBOL}"].ask == Decimal("100.1")
    assert quotes["NSE:NIFTY 50"].last_price == Decimal("24012.35")


def test_market_without_protection_is_refused_before_and_by_the_broker(adapter):
    with pytest.raises(InputRejectedError):
        adapter.place_order(order("np1", market_protection=None))
    with pytest.raises(InputRejectedError, match="market protection"):
        adapter.place_order(order("np2", market_protection=Decimal("0")))


def test_eleventh_order_in_a_second_is_rate_limited_with_retry_after(adapter):
    for i in range(10):
        adapter.place_order(order(f"burst{i}"))
    with pytest.raises(RateLimitedError) as caught:
        adapter.place_order(order("burst10"))
    assert caught.value.retry_after == 1.0
    assert caught.value.http_status == 429


def test_5xx_is_retryable_and_no_order_exists(emulator, adapter):
    emulator.queue_faults("5xx")
    with pytest.raises(RetryableError) as caught:
        adapter.place_order(order("fx1"))
    assert not isinstance(caught.value, RateLimitedError)
    assert adapter.find_order_by_tag("fx1") is None


@pytest.mark.parametrize("fault", ["drop", "hang"])
def test_lost_answer_is_ambiguous_and_the_order_exists(emulator, fault):
    adapter = make_adapter(emulator, token=emulator.issue_token(API_KEY), read_timeout=0.3)
    emulator.queue_faults(fault)
    with pytest.raises(AmbiguousError):
        adapter.place_order(order("amb1"))
    assert adapter.find_order_by_tag("amb1").status == OrderStatus.FILLED


def test_refused_connection_is_retryable_not_ambiguous(emulator):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    credentials_adapter = make_adapter(emulator, token="t")
    credentials_adapter.client.base_url = f"http://127.0.0.1:{port}"
    with pytest.raises(RetryableError):
        credentials_adapter.place_order(order("nc1"))


def test_unregistered_ip_is_a_static_ip_error(emulator, adapter):
    emulator.configure(registered_ip="203.0.113.9")
    with pytest.raises(StaticIPError):
        adapter.place_order(order("ip1"))
    assert adapter.order_book() == []  # reads are not IP-checked


def test_token_expires_at_six_am_ist(emulator):
    emulator.set_clock(datetime(2026, 11, 24, 5, 59, 30, tzinfo=IST))
    adapter = make_adapter(emulator, token=emulator.issue_token(API_KEY))
    adapter.funds()
    emulator.advance_clock(31)
    with pytest.raises(AuthError) as caught:
        adapter.funds()
    assert caught.value.http_status == 403


def test_adapter_is_registered_for_kite():
    from brokers.registry import adapter_class

    assert adapter_class("kite") is KiteAdapter
