"""The paper broker's refusals and its book beyond the fills: bad orders refused in words,
modify and cancel of resting orders, a short flipped long, quotes, positions and logins that
must fail. On a still market, so every figure is exact."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.base import (
    AuthError,
    Credentials,
    InputRejectedError,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentError,
    Product,
    Side,
)
from brokers.models import PaperAccount
from brokers.paper.adapter import PaperAdapter
from brokers.registry import get_adapter
from brokers.services import paper_account_log_in
from tests.brokers.factories import PaperBookFactory
from tests.brokers.paper_market import nifty_contract, still_market  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]


@pytest.fixture
def paper(still_market):  # noqa: F811
    book = PaperBookFactory(slippage_pct=Decimal("0"))
    return get_adapter(paper_account_log_in(account=book.account, actor=book.account.owner))


def _order(tag, *, side=Side.BUY, lots=1, order_type=OrderType.MARKET, price=None, qty=None):
    symbol, lot = nifty_contract()
    return OrderRequest(
        exchange="NFO",
        tradingsymbol=symbol,
        side=side,
        quantity=lot * lots if qty is None else qty,
        order_type=order_type,
        product=Product.NRML,
        tag=tag,
        price=price,
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"tag": ""}, "tag"),
        ({"tag": "X" * 21}, "tag"),
        ({"tag": "BAD-TAG"}, "tag"),
        ({"qty": 0}, "quantity"),
        ({"order_type": OrderType.LIMIT, "price": None}, "price"),
        ({"order_type": OrderType.LIMIT, "price": Decimal("0")}, "price"),
    ],
)
def test_an_order_the_gateway_cannot_read_is_refused_before_it_is_booked(paper, changes, code):
    tag = changes.pop("tag", "GOOD1")
    with pytest.raises(InputRejectedError) as refused:
        paper.place_order(_order(tag, **changes))
    assert refused.value.code == code
    assert paper.order_book() == []


def test_a_resting_limit_is_modified_and_then_filled_at_its_new_price(paper, still_market):  # noqa: F811
    ack = paper.place_order(_order("REST1", order_type=OrderType.LIMIT, price=Decimal("50")))
    assert paper.order_status(ack.broker_order_id).status == OrderStatus.OPEN
    _, lot = nifty_contract()
    paper.modify_order(ack.broker_order_id, quantity=2 * lot, price=Decimal("101"))
    done = paper.order_status(ack.broker_order_id)
    # The new price crosses the ask (100.50): filled there, for the new quantity.
    assert (done.status, done.filled_quantity, done.average_price) == (
        OrderStatus.FILLED,
        2 * lot,
        Decimal("100.50"),
    )
    with pytest.raises(InputRejectedError) as finished:
        paper.modify_order(ack.broker_order_id, price=Decimal("90"))
    assert finished.value.code == "not_open"


@pytest.mark.parametrize(
    ("changes", "code"), [({"quantity": 0}, "quantity"), ({"price": Decimal("-1")}, "price")]
)
def test_a_modification_that_makes_no_sense_is_refused(paper, changes, code):
    ack = paper.place_order(_order("REST2", order_type=OrderType.LIMIT, price=Decimal("50")))
    with pytest.raises(InputRejectedError) as refused:
        paper.modify_order(ack.broker_order_id, **changes)
    assert refused.value.code == code
    order = paper.order_status(ack.broker_order_id)
    assert order.status == OrderStatus.OPEN and order.quantity == nifty_contract()[1]


def test_unknown_and_finished_orders_cannot_be_cancelled(paper):
    with pytest.raises(InputRejectedError) as unknown:
        paper.cancel_order("PAPERNOSUCH")
    assert unknown.value.code == "not_found"
    with pytest.raises(InputRejectedError):
        paper.order_status("PAPERNOSUCH")
    filled = paper.place_order(_order("FILLED1"))
    with pytest.raises(InputRejectedError) as finished:
        paper.cancel_order(filled.broker_order_id)
    assert finished.value.code == "not_open"
    resting = paper.place_order(_order("REST3", order_type=OrderType.LIMIT, price=Decimal("50")))
    paper.cancel_order(resting.broker_order_id)
    assert paper.order_status(resting.broker_order_id).status == OrderStatus.CANCELLED
    assert paper.find_order_by_tag("REST3").status == OrderStatus.CANCELLED
    assert paper.find_order_by_tag("NEVERSENT") is None


def test_selling_more_than_held_flips_the_position_and_books_the_closed_part(
    paper,
    still_market,  # noqa: F811
):
    _, lot = nifty_contract()
    paper.place_order(_order("LONG1"))  # long 1 lot at the ask, 100.50
    still_market.set_touch("110.00", "111.00", "110.50")
    paper.place_order(_order("FLIP1", side=Side.SELL, lots=3))  # sells 3 lots at the bid, 110
    (position,) = paper.positions()
    assert position.quantity == -2 * lot
    assert position.average_price == Decimal("110.00")  # the remainder opened at the fill
    assert position.realised_pnl == (Decimal("110.00") - Decimal("100.50")) * lot
    # Marked at the last price: short 2 lots from 110.00, last 110.50.
    assert position.unrealised_pnl == Decimal("-0.50") * 2 * lot
    paper.place_order(_order("CLOSE1", lots=2))  # bought back at the ask, 111.00
    (flat,) = paper.positions()
    assert (flat.quantity, flat.average_price, flat.unrealised_pnl) == (0, 0, 0)


def test_quotes_name_the_spot_of_an_underlying_and_the_touch_of_an_option(paper):
    symbol, _ = nifty_contract()
    quotes = paper.quote(["nifty", symbol])
    assert quotes["nifty"].last_price == Decimal("25000") and quotes["nifty"].bid is None
    option = quotes[symbol]
    assert (option.bid, option.ask, option.last_price) == (
        Decimal("99.50"),
        Decimal("100.50"),
        Decimal("100.00"),
    )
    # An unknown name is refused in words (not a BrokerError: the paper market's own error).
    from brokers.paper.market import UnknownContractError

    with pytest.raises(UnknownContractError, match="not an option symbol"):
        paper.quote(["NOTASYMBOL"])


def test_the_paper_broker_needs_its_account_and_its_book():
    with pytest.raises(PermanentError, match="account id"):
        PaperAdapter(Credentials())
    orphan = PaperAdapter(Credentials(extra={"account_id": "999999"}))
    with pytest.raises(PermanentError, match="no paper book"):
        orphan.login_url(state="s", redirect_uri="http://testserver/cb/")


def test_a_request_token_works_once_and_only_for_its_own_account():
    first, second = PaperBookFactory(), PaperBookFactory()
    adapter = get_adapter(first.account)
    url = adapter.login_url(state="s", redirect_uri="http://testserver/cb/?x=1")
    assert "?x=1&request_token=" in url
    token = url.split("request_token=")[1].split("&")[0]
    from urllib.parse import unquote

    params = {"request_token": unquote(token)}
    with pytest.raises(AuthError) as other:
        get_adapter(second.account).exchange_token(params=params, redirect_uri="")
    assert other.value.code == "checksum"
    grant = adapter.exchange_token(params=params, redirect_uri="")
    assert grant.access_token and grant.broker_user_id == f"PAPER{first.account.pk}"
    with pytest.raises(AuthError) as reused:
        adapter.exchange_token(params=params, redirect_uri="")
    assert reused.value.code == "reused"
    assert PaperAccount.objects.get(pk=first.pk).pending_login_nonce == ""
