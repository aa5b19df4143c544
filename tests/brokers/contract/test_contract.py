"""The adapter contract, the same for all six adapters: paper in-process, the five brokers
against their emulators over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from brokers.base import (
    AmbiguousError,
    AuthError,
    BrokerOrder,
    OrderStatus,
    OrderType,
    PermanentError,
    RateLimitedError,
    RetryableError,
    Side,
)
from brokers.models import AccountStatus
from brokers.services import account_record_broker_error
from tests.brokers.contract.venues import BROKERS, make_venue
from tests.brokers.paper_market import still_market  # noqa: F401 (fixture)

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.network]


@pytest.fixture(params=BROKERS)
def venue(request, settings, still_market):  # noqa: F811
    made = make_venue(request.param, settings)
    yield made
    made.stop()


@pytest.fixture
def live(venue):
    venue.login()
    return venue


def _tag() -> str:
    return "T" + uuid.uuid4().hex[:12].upper()


def _wait(adapter, order_id: str, until, seconds: float = 3.0) -> BrokerOrder:
    deadline = time.monotonic() + seconds
    while True:
        order = adapter.order_status(order_id)
        if until(order) or time.monotonic() > deadline:
            return order
        time.sleep(0.05)


def test_login_exchanges_the_token_and_a_wrong_checksum_is_refused(venue):
    account = venue.login()
    assert account.access_token and account.token_expires_at > timezone.now()
    adapter, params = venue.bad_login_adapter()
    with pytest.raises(PermanentError):
        adapter.exchange_token(params=params, redirect_uri="http://testserver/")


def test_market_order_with_tag_is_found_by_tag_and_fills(live):
    adapter = live.adapter()
    tag = _tag()
    ack = adapter.place_order(live.order(tag=tag))
    assert ack.broker_order_id
    found = adapter.find_order_by_tag(tag)
    assert found is not None and found.broker_order_id == ack.broker_order_id
    assert found.tag.endswith(tag)
    done = _wait(adapter, ack.broker_order_id, lambda o: o.status.is_terminal)
    assert done.status == OrderStatus.FILLED
    assert done.filled_quantity == done.quantity and done.average_price > 0
    assert adapter.find_order_by_tag(_tag()) is None


def test_trade_book_lists_each_fill_with_its_trade_id_and_funds_show_margin_used(live):
    if live.broker == "paper":
        pytest.skip("the paper broker keeps no trade book: its fills are its own")
    adapter = live.adapter()
    before = adapter.funds()
    # A LIMIT far through the ask fills at the ask whatever the simulated market's level.
    ack = adapter.place_order(
        live.order(tag=_tag(), order_type=OrderType.LIMIT, price=Decimal("5000"))
    )
    done = _wait(adapter, ack.broker_order_id, lambda o: o.status.is_terminal)
    resting = adapter.place_order(
        live.order(tag=_tag(), order_type=OrderType.LIMIT, price=Decimal("0.05"))
    )
    trades = adapter.trade_book()
    assert [t.broker_order_id for t in trades] == [ack.broker_order_id]
    [trade] = trades
    assert trade.trade_id and trade.quantity == done.quantity and trade.price > 0
    assert trade.side == Side.BUY and trade.filled_at is not None
    assert adapter.trade_book(ack.broker_order_id) == trades
    assert adapter.trade_book(resting.broker_order_id) == []
    after = adapter.funds()
    assert after.used == before.used + trade.price * trade.quantity
    assert after.available == before.available - trade.price * trade.quantity


def test_limit_order_rests_open_and_cancels(live):
    adapter = live.adapter()
    tag = _tag()
    ack = adapter.place_order(
        live.order(tag=tag, order_type=OrderType.LIMIT, price=Decimal("0.05"))
    )
    order = _wait(adapter, ack.broker_order_id, lambda o: o.status == OrderStatus.OPEN)
    assert order.status == OrderStatus.OPEN and order.filled_quantity == 0
    adapter.cancel_order(ack.broker_order_id)
    order = _wait(adapter, ack.broker_order_id, lambda o: o.status.is_terminal)
    assert order.status == OrderStatus.CANCELLED
    assert adapter.find_order_by_tag(tag).status == OrderStatus.CANCELLED


def test_rejection_after_the_ack_maps_to_rejected(live):
    adapter = live.adapter()
    live.fault("reject-later")
    ack = adapter.place_order(live.order(tag=_tag()))
    order = _wait(adapter, ack.broker_order_id, lambda o: o.status.is_terminal)
    assert order.status == OrderStatus.REJECTED and order.status_message


def test_refused_order_is_a_permanent_error(live):
    adapter = live.adapter()
    order = live.order(tag=_tag())
    if live.broker == "paper":
        order = type(order)(**{**order.__dict__, "tradingsymbol": "NOSUCH26D0199999CE"})
    else:
        live.fault("reject")
    with pytest.raises(PermanentError) as excinfo:
        adapter.place_order(order)
    assert not isinstance(excinfo.value, RetryableError | AmbiguousError)
    assert excinfo.value.message


def test_server_error_before_acceptance_is_retryable(live):
    if not live.supports_5xx:
        pytest.skip("the paper broker has no server to fail; its retryable error is the 429")
    adapter = live.adapter()
    tag = _tag()
    live.fault("5xx")
    with pytest.raises(RetryableError) as excinfo:
        adapter.place_order(live.order(tag=tag))
    assert excinfo.value.retry_after >= 0
    assert adapter.find_order_by_tag(tag) is None


def test_lost_answer_is_ambiguous_and_the_order_is_found_by_tag(live):
    adapter = live.adapter()
    tag = _tag()
    live.fault("drop")
    with pytest.raises(AmbiguousError):
        adapter.place_order(live.order(tag=tag))
    live.clear_faults()
    found = adapter.find_order_by_tag(tag)
    assert found is not None and found.tag.endswith(tag)


def test_eleventh_order_in_a_second_gets_429_with_retry_after(live):
    adapter = live.adapter()
    orders = [
        live.order(tag=_tag(), order_type=OrderType.LIMIT, price=Decimal("0.05")) for _ in range(11)
    ]
    started = time.monotonic()
    for order in orders[:10]:
        adapter.place_order(order)
    with pytest.raises(RateLimitedError) as excinfo:
        adapter.place_order(orders[10])
    assert time.monotonic() - started < 1.0, "too slow to test a one-second window"
    assert 0 < excinfo.value.retry_after <= 1.0


def test_expired_session_marks_the_account_expired_and_the_trader_sees_why(live):
    live.end_session()
    adapter = live.adapter()
    with pytest.raises(AuthError) as excinfo:
        adapter.funds()
    account = live.account
    account_record_broker_error(account=account, error=excinfo.value)
    account.refresh_from_db()
    assert account.status == AccountStatus.EXPIRED
    client = Client()
    client.force_login(account.owner)
    page = client.get(reverse("brokers:list")).content.decode()
    assert "Log in again" in page and excinfo.value.message.split(":")[0] in page
