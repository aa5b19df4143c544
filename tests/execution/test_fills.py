"""Fills from the trade book, counted once with postbacks (item 5)."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest

from brokers.base import Credentials, OrderRequest, OrderType, Product, Side
from brokers.emulator import start_in_thread
from brokers.kite import KiteAdapter
from execution.models.engine import Fill, IntentState, Position
from execution.orders.fills import trade_book_reconcile, trades_apply
from execution.orders.lifecycle import kite_postback_apply
from tests.brokers.factories import BrokerAccountFactory
from tests.brokers.fixed_market import CONTRACT, FixedQuotes
from tests.execution.engine_factories import IntentFactory, RunFactory

pytestmark = pytest.mark.django_db

API_KEY, SECRET = "fillsapp", "fillssecret"


@pytest.fixture
def kite(request):
    partial = getattr(request, "param", False)
    emulator = start_in_thread(
        "kite", quotes=FixedQuotes(), partial_fills=partial, fill_delay_ms=1000 if partial else 0
    )
    emulator.add_account(api_key=API_KEY, api_secret=SECRET, user_id="ZF0001")
    yield emulator
    emulator.stop()


def filled_order(kite, *, wait_for_all: bool = True):
    """A BUY of 75 CONTRACT at the Kite emulator and our intent for it, acknowledged."""
    import time

    token = kite.issue_token(API_KEY)
    adapter = KiteAdapter(
        Credentials(api_key=API_KEY, api_secret=SECRET, access_token=token),
        base_url=kite.base_url,
    )
    account = BrokerAccountFactory(
        broker="kite", api_key=API_KEY, api_secret=SECRET, access_token=token
    )
    intent = IntentFactory(
        state=IntentState.ACKNOWLEDGED,
        tradingsymbol=CONTRACT,
        run=RunFactory(owner=account.owner),
        account=account,
    )
    ack = adapter.place_order(
        OrderRequest(
            exchange="NFO", tradingsymbol=CONTRACT, side=Side.BUY, quantity=75,
            order_type=OrderType.MARKET, product=Product.NRML, tag=intent.tag,
            market_protection=Decimal("5"),
        )
    )  # fmt: skip
    intent.broker_order_id = ack.broker_order_id
    intent.save(update_fields=["broker_order_id"])
    deadline = time.monotonic() + 3
    while wait_for_all and adapter.order_status(ack.broker_order_id).filled_quantity < 75:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return adapter, intent


def postback(adapter, intent) -> dict:
    """Kite's postback for the order as the book shows it now, with a valid checksum."""
    order = adapter.order_status(intent.broker_order_id)
    row = order.raw
    digest = hashlib.sha256(
        (intent.broker_order_id + row["order_timestamp"] + SECRET).encode()
    ).hexdigest()
    return {**row, "checksum": digest}


def test_same_trade_by_postback_then_trade_book_counts_once(kite):
    adapter, intent = filled_order(kite)
    kite_postback_apply(payload=postback(adapter, intent))
    result = trade_book_reconcile(account_id=intent.account_id, adapter=adapter)
    result_again = trade_book_reconcile(account_id=intent.account_id, adapter=adapter)
    assert result == {"trades": 1, "orders": 0, "foreign": 0}  # already FILLED: not open
    assert result_again == result
    trades_apply(intent=intent, trades=adapter.trade_book(intent.broker_order_id))
    [fill] = Fill.objects.filter(intent=intent)
    assert (fill.quantity, fill.source) == (75, "postback")
    assert fill.trade_id == adapter.trade_book()[0].trade_id  # the book's id is kept
    position = Position.objects.get()
    assert position.net_quantity == 75 and position.buy_value == Decimal("100.10") * 75


def test_same_trade_by_trade_book_then_postback_counts_once(kite):
    adapter, intent = filled_order(kite)
    assert trade_book_reconcile(account_id=intent.account_id, adapter=adapter)["orders"] == 1
    kite_postback_apply(payload=postback(adapter, intent))
    kite_postback_apply(payload=postback(adapter, intent))  # Kite may post twice
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED and intent.filled_quantity == 75
    [fill] = Fill.objects.filter(intent=intent)
    assert fill.source == "tradebook" and fill.trade_id
    assert Position.objects.get().net_quantity == 75


@pytest.mark.parametrize("kite", [True], indirect=True)
def test_partial_fills_postback_of_the_first_then_the_book_of_both(kite):
    import time

    adapter, intent = filled_order(kite, wait_for_all=False)
    # The emulator fills 37 after 1 s and the other 38 a second later.
    deadline = time.monotonic() + 5
    while adapter.order_status(intent.broker_order_id).filled_quantity == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    kite_postback_apply(payload=postback(adapter, intent))  # 37 of 75
    while adapter.order_status(intent.broker_order_id).filled_quantity < 75:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    trade_book_reconcile(account_id=intent.account_id, adapter=adapter)
    fills = list(Fill.objects.filter(intent=intent).order_by("cumulative_quantity"))
    assert [(f.cumulative_quantity, f.quantity, f.source) for f in fills] == [
        (37, 37, "postback"),
        (75, 38, "tradebook"),
    ]
    assert all(f.trade_id for f in fills)
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED
    assert Position.objects.get().net_quantity == 75


def test_trades_of_orders_placed_outside_the_platform_are_counted_not_applied(kite):
    adapter, intent = filled_order(kite)
    intent.broker_order_id = "not-this-one"
    intent.save(update_fields=["broker_order_id"])
    assert trade_book_reconcile(account_id=intent.account_id, adapter=adapter) == {
        "trades": 1, "orders": 0, "foreign": 1,
    }  # fmt: skip
    assert not Fill.objects.exists()


def test_the_periodic_task_reads_each_account_with_open_orders_once(kite, settings):
    from execution.tasks import trade_books_reconcile_task

    settings.BROKER_BASE_URLS = {**settings.BROKER_BASE_URLS, "kite": kite.base_url}
    _, intent = filled_order(kite)
    assert trade_books_reconcile_task() == {"accounts": 1, "trades": 1, "orders": 1, "foreign": 0}
    intent.refresh_from_db()
    assert intent.state == IntentState.FILLED
    assert trade_books_reconcile_task()["accounts"] == 0  # nothing open any more
