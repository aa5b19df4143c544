"""The paper broker's fills and book, on a still market so prices can be asserted exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import AuthError, OrderRequest, OrderStatus, OrderType, Product, Side
from brokers.models import PaperAccount
from brokers.registry import get_adapter
from brokers.services import paper_account_log_in
from tests.brokers.factories import PaperBookFactory
from tests.brokers.paper_market import nifty_contract, still_market  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def paper(still_market):  # noqa: F811
    book = PaperBookFactory(slippage_pct=Decimal("1.00"))
    account = paper_account_log_in(account=book.account, actor=book.account.owner)
    return account


def _order(tag, side=Side.BUY, lots=1, order_type=OrderType.MARKET, price=None, strike=25000):
    symbol, lot = nifty_contract(strike)
    return OrderRequest(
        exchange="NFO",
        tradingsymbol=symbol,
        side=side,
        quantity=lot * lots,
        order_type=order_type,
        product=Product.NRML,
        tag=tag,
        price=price,
    )


def test_market_buy_pays_the_ask_plus_slippage_and_debits_cash(paper):
    adapter = get_adapter(paper)
    order = _order("B1")
    ack = adapter.place_order(order)
    filled = adapter.order_status(ack.broker_order_id)
    assert filled.status == OrderStatus.FILLED
    assert filled.average_price == Decimal("101.51")  # ask 100.50 + 1 %
    funds = adapter.funds()
    assert funds.available == Decimal("1000000") - Decimal("101.51") * order.quantity


def test_limit_rests_until_the_market_reaches_it(paper, still_market):  # noqa: F811
    adapter = get_adapter(paper)
    ack = adapter.place_order(_order("L1", order_type=OrderType.LIMIT, price=Decimal("90")))
    assert adapter.order_status(ack.broker_order_id).status == OrderStatus.OPEN
    still_market.set_touch("88.00", "89.00")
    # A different process (a new adapter) sees the same book and matches the resting order.
    later = get_adapter(type(paper).objects.get(pk=paper.pk)).order_status(ack.broker_order_id)
    assert later.status == OrderStatus.FILLED and later.average_price == Decimal("89.00")


def test_quantity_off_the_lot_is_rejected_after_the_ack(paper):
    adapter = get_adapter(paper)
    symbol, lot = nifty_contract()
    order = OrderRequest(
        exchange="NFO",
        tradingsymbol=symbol,
        side=Side.BUY,
        quantity=lot + 1,
        order_type=OrderType.MARKET,
        product=Product.NRML,
        tag="ODD",
    )
    status = adapter.order_status(adapter.place_order(order).broker_order_id)
    assert status.status == OrderStatus.REJECTED and f"lot size {lot}" in status.status_message


def test_short_needs_margin_and_is_rejected_without_it(paper):
    PaperAccount.objects.filter(account=paper).update(cash=Decimal("1000"))
    adapter = get_adapter(paper)
    ack = adapter.place_order(_order("S1", side=Side.SELL))
    status = adapter.order_status(ack.broker_order_id)
    assert status.status == OrderStatus.REJECTED
    assert status.status_message.startswith("Insufficient funds")


def test_closing_a_long_books_realised_pnl(paper, still_market):  # noqa: F811
    adapter = get_adapter(paper)
    adapter.place_order(_order("O1"))  # buys at 101.51
    still_market.set_touch("120.00", "121.00", "120.50")
    adapter.place_order(_order("C1", side=Side.SELL))  # sells at 120.00 - 1 % = 118.80
    (position,) = adapter.positions()
    _, lot = nifty_contract()
    assert position.quantity == 0
    assert position.realised_pnl == (Decimal("118.80") - Decimal("101.51")) * lot


def test_altered_token_is_refused(paper):
    last = paper.access_token[-1]
    paper.access_token = paper.access_token[:-1] + ("A" if last != "A" else "B")
    with pytest.raises(AuthError):
        get_adapter(paper).funds()


def test_instrument_master_names_listed_contracts_in_kite_notation(paper):
    from execution.models import Instrument, Underlying
    from execution.reference.contracts import expiries, lot_size
    from tests.brokers.paper_market import today_ist

    nifty = Underlying.objects.get(symbol="NIFTY")
    expiry = expiries("NIFTY", today_ist())[0]
    Instrument.objects.create(
        underlying=nifty,
        expiry=expiry,
        strike=Decimal("25000"),
        option_type="CE",
        lot_size=lot_size("NIFTY", expiry),
        tick_size=Decimal("0.05"),
        source="grid",
    )
    [row] = get_adapter(paper).instruments()
    assert row["tradingsymbol"] == nifty_contract(25000)[0]
    assert row["strike"] == "25000.00"
    assert row["expiry"] == expiry.isoformat()
