"""Edges of the five HTTP adapters against their emulators on 127.0.0.1: modifying a resting
order's quantity and price, an order id or tag the broker does not know, a LIMIT without a
price refused before anything is sent, warming the connection (also when the broker is down),
and a login the broker did not complete. One test body, every broker."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from brokers.base import (
    AuthError,
    BrokerError,
    InputRejectedError,
    OrderStatus,
    OrderType,
    PermanentError,
)
from tests.brokers.contract.venues import make_venue

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.network,
    pytest.mark.usefixtures("calendar_loaded_today"),
]

HTTP_BROKERS = ["kite", "upstox", "angelone", "fyers", "dhan"]


@pytest.fixture(params=HTTP_BROKERS)
def live(request, settings):
    venue = make_venue(request.param, settings)
    venue.login()
    yield venue
    venue.stop()


def _tag() -> str:
    return "E" + uuid.uuid4().hex[:12].upper()


def _posts(venue) -> list[dict]:
    return [r for r in venue.emulator.order_log() if r["method"] == "POST"]


def test_a_resting_order_is_modified_at_the_broker_then_cancelled(live):
    adapter = live.adapter()
    request = live.order(tag=_tag(), order_type=OrderType.LIMIT, price=Decimal("0.05"))
    ack = adapter.place_order(request)
    adapter.modify_order(ack.broker_order_id, quantity=2 * request.quantity, price=Decimal("0.1"))
    modified = adapter.order_status(ack.broker_order_id)
    assert modified.status == OrderStatus.OPEN
    assert modified.quantity == 2 * request.quantity
    adapter.modify_order(ack.broker_order_id, price=Decimal("0.15"))  # price alone
    assert adapter.order_status(ack.broker_order_id).quantity == 2 * request.quantity
    adapter.cancel_order(ack.broker_order_id)
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.CANCELLED
    assert [o.broker_order_id for o in adapter.order_book()] == [ack.broker_order_id]


def test_an_order_id_the_broker_does_not_know_is_a_permanent_refusal(live):
    adapter = live.adapter()
    with pytest.raises(PermanentError):
        adapter.order_status("990000000001")
    assert adapter.find_order_by_tag(_tag()) is None


# Kite's and Upstox's adapters check the price themselves; the others leave it to the broker,
# which refuses it in words: either way it is a permanent refusal, never a MARKET order.
CHECKED_HERE = {"kite", "upstox"}


def test_a_limit_order_without_a_price_is_refused_never_sent_as_market(live):
    adapter = live.adapter()
    request = live.order(tag=_tag(), order_type=OrderType.LIMIT, price=Decimal("1"))
    request = type(request)(**{**request.__dict__, "price": None})
    with pytest.raises(InputRejectedError):
        adapter.place_order(request)
    if live.broker in CHECKED_HERE:
        assert _posts(live) == []
    assert adapter.find_order_by_tag(request.tag) is None


@pytest.mark.parametrize("broker", ["kite", "upstox"])
def test_warming_opens_the_connection_and_never_raises_even_when_the_broker_is_down(
    broker, settings
):
    live = make_venue(broker, settings)
    live.login()
    adapter = live.adapter()
    adapter.warm()
    live.stop()
    adapter.warm()  # the real call will report the problem in words
    with pytest.raises(BrokerError):
        adapter.funds()


@pytest.mark.parametrize("broker", ["kite", "upstox", "fyers"])
def test_a_callback_without_the_brokers_token_is_refused_in_words(broker, settings):
    venue = make_venue(broker, settings)
    try:
        with pytest.raises((AuthError, PermanentError)) as refused:
            venue.adapter().exchange_token(
                params={"status": "cancelled", "s": "error"},
                redirect_uri="http://testserver/brokers/callback/",
            )
        assert refused.value.message
    finally:
        venue.stop()
