"""Margin needed (issue 13, item 6): the broker's basket margin estimate of a strategy's entry
orders, from the Kite emulator's /margins/basket, on the strategy page and in the ready
check."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.urls import reverse

from brokers.base import Funds, OrderRequest, OrderType, Product, Side
from brokers.registry import get_adapter
from execution.margin import strategy_margin_needed
from execution.models import OrderIntent
from execution.services import margin_ready_check
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.execution.test_live_prices import DAY, T, dispatch, kite, live_strategy  # noqa: F401

pytestmark = pytest.mark.django_db
BEFORE_T = T - datetime.timedelta(seconds=4)


def expected_margin(kite_emulator, intents) -> Decimal:
    """The emulator's model: longs pay the ask; a short blocks 12% of its strike notional less
    its premium, at most the width to the long of its type (the condor's wings)."""
    total = Decimal(0)
    longs = {i.tradingsymbol[-2:]: i for i in intents if i.side == "BUY"}
    for intent in intents:
        quote = kite_emulator.market.quote("NFO", intent.tradingsymbol)
        strike = Decimal(intent.tradingsymbol[10:-2])
        if intent.side == "BUY":
            total += quote.ask * intent.quantity
            continue
        blocked = strike * intent.quantity * Decimal("0.12") - quote.bid * intent.quantity
        wing = Decimal(longs[intent.tradingsymbol[-2:]].tradingsymbol[10:-2])
        total += min(blocked, abs(wing - strike) * intent.quantity)
    return total.quantize(Decimal("0.01"))


def test_the_brokers_basket_estimate_counts_the_condors_hedges(kite, live_strategy):  # noqa: F811
    strategy, account = live_strategy
    dispatch()  # the same legs dispatch resolves, for the expected figure
    intents = list(OrderIntent.objects.all())
    OrderIntent.objects.all().delete()
    with time_machine.travel(BEFORE_T, tick=False):
        needed = strategy_margin_needed(version=strategy.current_version, account=account)
        orders = [
            OrderRequest(
                exchange="NFO", tradingsymbol=i.tradingsymbol, side=Side(i.side),
                quantity=i.quantity, order_type=OrderType.MARKET, product=Product(i.product),
                tag="m",
            )
            for i in intents
        ]  # fmt: skip
        estimate = get_adapter(account).basket_margin(orders)
    assert not needed.problem and needed.amount == expected_margin(kite, intents)
    assert estimate.final == needed.amount and estimate.initial > estimate.final


def test_the_ready_check_refuses_when_the_margin_exceeds_the_funds(kite, live_strategy):  # noqa: F811
    _strategy, account = live_strategy
    with time_machine.travel(BEFORE_T, tick=False):
        plenty = Funds(available=Decimal("10000000"), used=Decimal(0), total=Decimal("10000000"))
        assert margin_ready_check(account=account, day=DAY, funds=plenty) == []
        short = Funds(available=Decimal("1000"), used=Decimal(0), total=Decimal("1000"))
        [problem] = margin_ready_check(account=account, day=DAY, funds=short)
    assert "margin needed for today's strategies" in problem and "₹1,000.00 available" in problem


def test_strategy_page_shows_margin_needed_per_account(kite, live_strategy, client):  # noqa: F811
    strategy, account = live_strategy
    PaperBookFactory(account__owner=strategy.owner)
    client.force_login(strategy.owner)
    url = reverse("execution:strategy-margin", args=[strategy.pk])
    detail = client.get(reverse("strategies:detail", args=[strategy.pk])).content.decode()
    assert url in detail and "Margin needed" in detail
    with time_machine.travel(BEFORE_T, tick=False):
        fragment = client.get(url).content.decode()
    assert f'data-account="{account.pk}"' in fragment and "data-margin" in fragment
    assert "₹" in fragment
    client.force_login(BrokerAccountFactory().owner)
    assert client.get(url).status_code == 404


def test_a_broker_without_an_estimate_says_so(live_strategy):  # noqa: F811
    strategy, _account = live_strategy
    fyers = BrokerAccountFactory(owner=strategy.owner, broker="fyers")
    needed = strategy_margin_needed(version=strategy.current_version, account=fyers)
    assert needed.amount is None and "Fyers gives no basket margin estimate" in needed.problem
