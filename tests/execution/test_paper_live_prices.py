"""Paper on live prices (issue 13, item 2) and the price age of each position (item 3): a
paper test run priced by the owner's Kite account (the emulator's NIFTY at 21,000 while the
simulator says about 26,000), filled and marked at Kite's prices, never sent to Kite; and the
owner emailed when a live run is held for no fresh price."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.core import mail
from django.urls import reverse

from brokers.base import OrderRequest, OrderType, Product, Side
from brokers.models import BrokerAccount
from brokers.registry import get_adapter
from brokers.services import paper_account_log_in
from execution.models import ExecutionEvent, OrderIntent, Position, RunState, ScheduledRun
from execution.services import PaperTestError, paper_test_run, runs_held_notify
from execution.watch import runs_watch
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.execution.test_live_prices import (  # noqa: F401
    API_KEY,
    DAY,
    T,
    dispatch,
    kite,
    live_strategy,
)

pytestmark = pytest.mark.django_db
BEFORE_T = T - datetime.timedelta(seconds=4)


@pytest.fixture
def paper(live_strategy):  # noqa: F811
    strategy, account = live_strategy
    with time_machine.travel(T - datetime.timedelta(hours=1), tick=False):
        book = PaperBookFactory(account__owner=strategy.owner)
        paper_account_log_in(account=book.account, actor=strategy.owner)
    return strategy, account, BrokerAccount.objects.get(pk=book.account_id)


def test_a_paper_test_priced_by_the_owners_kite_account(kite, paper):  # noqa: F811
    strategy, kite_account, paper_account = paper
    with time_machine.travel(BEFORE_T, tick=False):
        run = paper_test_run(user=strategy.owner, strategy=strategy, price_account=kite_account)
    run.refresh_from_db()
    assert run.state == RunState.DISPATCHED and run.price_account_id == kite_account.pk
    assert run.price_source == f"Zerodha Kite quotes ({kite_account.label}), paper"
    intents = list(OrderIntent.objects.filter(run=run))
    # Strikes around Kite's 21,000, on the paper account only (nothing to Kite).
    assert {i.account_id for i in intents} == {paper_account.pk}
    strikes = {21100: "CE", 21300: "CE", 20900: "PE", 20700: "PE"}
    assert {i.tradingsymbol for i in intents} == {f"NIFTY26D08{k}{v}" for k, v in strikes.items()}
    assert kite.orders(API_KEY) == []

    # The paper book fills a market order at Kite's ask, not at the simulator's price
    # (a 21,100 call is some 5,000 in the money on a simulated NIFTY near 26,000).
    short_call = next(i for i in intents if i.tradingsymbol.endswith("21100CE"))
    with time_machine.travel(BEFORE_T, tick=False):
        live = kite.market.quote("NFO", short_call.tradingsymbol)
        adapter = get_adapter(paper_account)
        ack = adapter.place_order(
            OrderRequest(
                exchange="NFO", tradingsymbol=short_call.tradingsymbol, side=Side.BUY,
                quantity=short_call.quantity, order_type=OrderType.MARKET,
                product=Product.MIS, tag="paperlive1",
            )
        )  # fmt: skip
        filled = adapter.order_status(ack.broker_order_id)
    assert filled.status == "filled" and filled.average_price == live.ask


def test_paper_positions_are_marked_with_the_chosen_accounts_quotes_and_their_age(
    kite,  # noqa: F811
    paper,
    client,
):
    strategy, kite_account, paper_account = paper
    with time_machine.travel(BEFORE_T, tick=False):
        run = paper_test_run(user=strategy.owner, strategy=strategy, price_account=kite_account)
    intent = OrderIntent.objects.filter(run=run, side="SELL").first()
    position = Position.objects.create(
        run=run, account=paper_account, owner=run.owner, leg=intent.leg, exchange="NFO",
        tradingsymbol=intent.tradingsymbol, lot_size=intent.lot_size,
        net_quantity=-intent.quantity, sell_quantity=intent.quantity,
        sell_value=intent.reference_price * intent.quantity,
    )  # fmt: skip
    kite.market.prices = {intent.tradingsymbol: Decimal("123.45")}
    kite.market.age = datetime.timedelta(seconds=3)
    with time_machine.travel(BEFORE_T, tick=False):
        runs_watch(now=BEFORE_T, send=False)
    position.refresh_from_db()
    assert position.last_price == Decimal("123.45")
    assert position.last_price_at == BEFORE_T - datetime.timedelta(seconds=3)  # Kite's own time

    client.force_login(strategy.owner)
    with time_machine.travel(BEFORE_T, tick=False):
        page = client.get(reverse("execution:run-detail", args=[run.pk])).content.decode()
    assert "paper on live prices" in page and f"({kite_account.label}), paper" in page
    assert "3 s old" in page

    # The chosen account logs out: the paper position is not marked by the simulator instead.
    BrokerAccount.objects.filter(pk=kite_account.pk).update(status="expired")
    kite.market.prices[intent.tradingsymbol] = Decimal("150")
    with time_machine.travel(BEFORE_T, tick=False):
        runs_watch(now=BEFORE_T, send=False)
    position.refresh_from_db()
    assert position.last_price == Decimal("123.45")
    assert ExecutionEvent.objects.filter(kind="price.stale", run_id=run.pk).exists()


def test_a_paper_run_whose_price_account_cannot_quote_is_held(kite, paper):  # noqa: F811
    strategy, kite_account, _paper = paper
    BrokerAccount.objects.filter(pk=kite_account.pk).update(status="expired")
    kite_account.refresh_from_db()
    with time_machine.travel(BEFORE_T, tick=False):
        run = paper_test_run(user=strategy.owner, strategy=strategy, price_account=kite_account)
    run.refresh_from_db()
    assert run.state == RunState.SKIPPED and "is not connected: not sent" in run.note
    assert not OrderIntent.objects.filter(run=run).exists()


def test_only_the_owners_live_accounts_can_price_a_paper_test(kite, paper, client):  # noqa: F811
    strategy, kite_account, paper_account = paper
    stranger_account = BrokerAccountFactory()
    with pytest.raises(PaperTestError):
        paper_test_run(user=strategy.owner, strategy=strategy, price_account=stranger_account)
    client.force_login(strategy.owner)
    url = reverse("execution:paper-test", args=[strategy.pk])
    for refused in (stranger_account.pk, paper_account.pk, "x"):
        response = client.post(url, {"price_account": refused}, follow=True)
        assert "Choose one of your own live accounts" in response.content.decode()
    assert not ScheduledRun.objects.filter(is_test=True).exists()
    with time_machine.travel(BEFORE_T, tick=False):
        runs = client.get(reverse("execution:runs")).content.decode()
    assert f'<option value="{kite_account.pk}">' in runs and "data-price-source" in runs


def test_the_owner_is_emailed_once_when_a_live_run_is_held_for_no_fresh_price(
    kite,  # noqa: F811
    live_strategy,  # noqa: F811
):
    strategy, _account = live_strategy
    kite.market.age = datetime.timedelta(seconds=30)
    result = dispatch()
    [run_id] = result.skipped
    assert runs_held_notify(run_ids=[run_id]) == 1
    [message] = mail.outbox
    assert message.to == [strategy.owner.email] and "no fresh price" in message.body
    assert "30 s old" in message.body
    assert runs_held_notify(run_ids=[run_id]) == 0 and len(mail.outbox) == 1


def test_a_long_account_label_still_fits_the_runs_price_source(kite, paper):  # noqa: F811
    strategy, kite_account, _paper = paper
    BrokerAccount.objects.filter(pk=kite_account.pk).update(label="L" * 60)
    kite_account.refresh_from_db()
    with time_machine.travel(BEFORE_T, tick=False):
        run = paper_test_run(user=strategy.owner, strategy=strategy, price_account=kite_account)
    run.refresh_from_db()
    assert run.state == RunState.DISPATCHED
    assert run.price_source.endswith("), paper") and len(run.price_source) <= 80


def test_a_paper_strategy_planned_on_live_prices(kite, paper, client):  # noqa: F811
    from execution.planning import day_plan
    from tests.execution.engine_factories import strategy_with_accounts
    from trader.models import BrokerAllocation

    live_strategy_, kite_account, paper_account = paper
    owner = live_strategy_.owner
    with time_machine.travel(T - datetime.timedelta(hours=1), tick=False):
        strategy, _version, _ = strategy_with_accounts(brokers=(), owner=owner)
        BrokerAllocation.objects.create(
            strategy=strategy, broker_account=paper_account, multiplier=Decimal(1), priority=1
        )
        client.force_login(owner)
        url = reverse("execution:strategy-paper-price", args=[strategy.pk])
        refused = client.post(url, {"price_account": paper_account.pk}, follow=True)
        assert "Choose one of your own live accounts" in refused.content.decode()
        client.post(url, {"price_account": kite_account.pk})
        strategy.refresh_from_db()
        assert strategy.paper_price_account_id == kite_account.pk
        fragment = client.get(reverse("execution:strategy-margin", args=[strategy.pk]))
        assert f'<option value="{kite_account.pk}" selected>' in fragment.content.decode()
        day_plan(day=DAY)
    paper_run = ScheduledRun.objects.get(strategy_version__strategy=strategy, boundary="entry")
    live_run = ScheduledRun.objects.get(strategy_version__strategy=live_strategy_, boundary="entry")
    assert paper_run.price_account_id == kite_account.pk
    assert live_run.price_account_id is None  # a live allocation is priced by its own broker
    dispatch()
    paper_run.refresh_from_db()
    assert paper_run.state == RunState.DISPATCHED
    assert paper_run.price_source.endswith(", paper")
    symbols = set(OrderIntent.objects.filter(run=paper_run).values_list("tradingsymbol", flat=True))
    assert symbols == {"NIFTY26D0821100CE", "NIFTY26D0821300CE", "NIFTY26D0820900PE",
                       "NIFTY26D0820700PE"}  # fmt: skip
