"""The template contract of every adapter that speaks HTTP (brokers.base.OrderTemplate): an
order's request built before T - ε with markers in place of its contract, then filled with
the real symbol, token and price, is byte for byte the request the adapter builds with them."""

from __future__ import annotations

import string
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from brokers.base import BrokerError, Credentials
from brokers.registry import adapter_class
from execution.send import wire
from execution.send.sender import OutgoingOrder
from execution.send.template import copy_with, order_template, template_fill

HTTP_BROKERS = ["kite", "upstox", "angelone", "fyers", "dhan"]

# Real symbols carry "&" and "-" (M&M, BAJAJ-AUTO), Fyers' a prefix with ":", Upstox' keys
# a "|"; the rest are there to prove the escaping (form, JSON) whatever comes.
SYMBOL_CHARS = string.ascii_uppercase + string.digits + "&-_:|/ %+=\"'\\é"
symbols = st.one_of(
    st.sampled_from(["NIFTY26DEC24000CE", "M&M26DEC3000PE", "BAJAJ-AUTO26DEC9000CE"]),
    st.builds(lambda s: f"NSE:{s}", st.text(SYMBOL_CHARS, min_size=1, max_size=24)),
    st.text(SYMBOL_CHARS, min_size=1, max_size=30),
)
tokens = st.one_of(
    st.integers(1, 10**8).map(str),
    st.integers(1, 10**8).map(lambda n: f"NSE_FO|{n}"),
    st.text(SYMBOL_CHARS, min_size=1, max_size=20),
)
prices = st.one_of(
    st.decimals(min_value=Decimal("0.05"), max_value=Decimal("99999"), places=2),
    st.integers(1, 5000).map(Decimal),
    st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("500"), places=4),
    st.just(Decimal("100.00")),
)


def adapter_for(broker: str):
    return adapter_class(broker)(
        Credentials(api_key="key", api_secret="secret", access_token="tok", client_id="C1"),
        base_url="http://127.0.0.1:9",
    )


ADAPTERS = {broker: adapter_for(broker) for broker in HTTP_BROKERS}


def placeholder_order(
    broker,
    *,
    side="BUY",
    quantity=75,
    order_type="MARKET",
    product="NRML",
    exchange="NFO",
    algo_id="",
):
    """An entry as dispatch hands it over before T - ε: a placeholder, no token, no price."""
    return OutgoingOrder(
        intent_id=1,
        run_id=1,
        tag="E0123456789ABCDE",
        phase=0,
        exchange=exchange,
        tradingsymbol=f"?a1b2c3:0:{broker}",
        instrument_token="",
        side=side,
        quantity=quantity,
        product=product,
        order_type=order_type,
        price=None,
        algo_id=algo_id,
    )


@pytest.mark.parametrize("broker", HTTP_BROKERS)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    symbol=symbols,
    token=tokens,
    price=prices,
    side=st.sampled_from(["BUY", "SELL"]),
    quantity=st.integers(1, 200_000),
    order_type=st.sampled_from(["MARKET", "LIMIT"]),
    product=st.sampled_from(["NRML", "MIS"]),
    exchange=st.sampled_from(["NFO", "BFO"]),
    algo_id=st.sampled_from(["", "ALGO-7", "12345"]),
)
def test_a_filled_template_is_the_request_the_adapter_builds(
    broker, symbol, token, price, side, quantity, order_type, product, exchange, algo_id
):
    adapter = ADAPTERS[broker]
    order = placeholder_order(
        broker,
        side=side,
        quantity=quantity,
        order_type=order_type,
        product=product,
        exchange=exchange,
        algo_id=algo_id,
    )
    made = order_template(adapter, order)
    resolved = copy_with(
        order,
        tradingsymbol=symbol,
        instrument_token=token,
        price=str(price) if order_type == "LIMIT" else None,
    )
    try:
        built = adapter.order_request(resolved.request())
    except BrokerError:
        # Refused whatever the contract (MARKET at Angel One): never templated, so the full
        # build at the fill gives the refusal in the adapter's words.
        assert made is None
        return
    assert made is not None, f"{broker} {order_type}: not templated"
    expected = wire.serialize(built.method, built.url, built.headers, built.body)
    filled = template_fill(made, adapter.order_template, resolved)
    assert filled == expected


@pytest.mark.parametrize("broker", HTTP_BROKERS)
def test_a_limit_order_without_a_price_is_not_filled_from_its_template(broker):
    adapter = ADAPTERS[broker]
    order = placeholder_order(broker, order_type="LIMIT")
    made = order_template(adapter, order)
    assert made is not None
    resolved = copy_with(order, tradingsymbol="NIFTY26DEC24000CE", instrument_token="123")
    assert template_fill(made, adapter.order_template, resolved) is None


def test_an_adapter_that_declares_no_template_is_built_in_full():
    adapter = adapter_for("kite")
    adapter.order_template = None  # an instance attribute: the class keeps its declaration
    order = placeholder_order("kite")
    assert order_template(adapter, order) is None


def test_a_marker_left_outside_the_gaps_refuses_the_template():
    """A declaration that says a field is unwritten while the adapter writes it (here: Kite's
    symbol) must not give a template that would keep the marker on the wire."""
    from brokers.base import UNWRITTEN, OrderTemplate

    adapter = adapter_for("kite")
    adapter.order_template = OrderTemplate(
        tradingsymbol=UNWRITTEN, instrument_token=UNWRITTEN, price=UNWRITTEN
    )
    order = placeholder_order("kite")
    assert order_template(adapter, order) is None
