"""Brokers that refuse MARKET orders from algos get a marketable LIMIT priced from the quote the
engine resolved at T - ε; every intent records that quote as its reference price."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.test import override_settings

from brokers.angelone.adapter import AngelOneAdapter
from brokers.kite.adapter import KiteAdapter
from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.intents import marketable
from execution.market import SimulatedMarket
from execution.markettime import IST
from execution.models import OrderIntent
from execution.planning.plan import day_plan
from tests.execution.engine_factories import strategy_with_accounts

DAY = datetime.date(2026, 11, 19)  # Thursday, a session
T = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)


def test_capability_flag_says_which_brokers_take_market_orders():
    assert AngelOneAdapter.capabilities.market_orders_allowed is False
    assert KiteAdapter.capabilities.market_orders_allowed is True
    assert marketable.market_orders_allowed("angelone") is False
    assert marketable.market_orders_allowed("kite") is True


@pytest.mark.parametrize(
    ("side", "reference", "expected"),
    [
        ("BUY", Decimal("100.00"), Decimal("102.00")),
        ("BUY", Decimal("101.03"), Decimal("103.10")),  # 103.0506 rounds up to the tick
        ("SELL", Decimal("101.03"), Decimal("99.00")),  # 99.0094 rounds down to the tick
        ("SELL", Decimal("0.05"), Decimal("0.05")),  # never below one tick
    ],
)
def test_protected_limit_is_through_the_market_on_the_tick(side, reference, expected):
    price = marketable.protected_limit(
        side=side, reference=reference, percent=Decimal("2"), tick=Decimal("0.05")
    )
    assert price == expected
    assert price % Decimal("0.05") == 0


def _accounts_ready(accounts):
    for account in accounts:
        account.token_issued_at = T - datetime.timedelta(hours=1)
        account.static_ip_primary = "203.0.113.7"
        account.save()


@pytest.mark.django_db
@override_settings(EXECUTION_LIMIT_PROTECTION_PERCENT="3")
def test_angel_one_gets_marketable_limits_and_every_intent_its_reference_price():
    market = SimulatedMarket(clock=lambda: T)
    _, _, accounts = strategy_with_accounts(brokers=(Broker.KITE, Broker.ANGELONE))
    _accounts_ready(accounts)
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=market, wait=False, start_sends=False)
    assert not result.skipped and result.intents == 8
    kite = list(OrderIntent.objects.filter(account=accounts[0]))
    angel = list(OrderIntent.objects.filter(account=accounts[1]))
    assert all(i.order_type == "MARKET" and i.price is None for i in kite)
    assert all(i.reference_price is not None and i.reference_price > 0 for i in kite + angel)
    for intent in angel:
        assert intent.order_type == "LIMIT"
        assert intent.limit_protection_percent == Decimal("3")
        bound = intent.reference_price * Decimal("1.03" if intent.side == "BUY" else "0.97")
        # Through the market by the protection, on the tick, rounded away from the quote.
        assert intent.price % Decimal("0.05") == 0
        if intent.side == "BUY":
            assert bound <= intent.price < bound + Decimal("0.05")
        else:
            assert bound - Decimal("0.05") < intent.price <= bound
    # The same contract has the same reference whichever broker trades it.
    by_strike = {(i.side, i.reference_price) for i in kite}
    assert by_strike == {(i.side, i.reference_price) for i in angel}
    # The account task sends the LIMIT with its price.
    (batch,) = [b for b in result.batches if b.account_id == accounts[1].pk]
    assert {o["order_type"] for o in batch.orders} == {"LIMIT"}
    assert all(Decimal(o["price"]) > 0 for o in batch.orders)


class SpotOnlyMarket:
    def spot(self, symbol, at=None):
        return Decimal("24012.35")

    def chain(self, *args, **kwargs):
        return []


@pytest.mark.django_db
def test_without_a_quote_a_limit_only_account_is_refused_in_words():
    _, _, accounts = strategy_with_accounts(brokers=(Broker.ANGELONE,))
    _accounts_ready(accounts)
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=SpotOnlyMarket(), wait=False, start_sends=False)
    # Written before T - ε (as LIMIT orders to be priced), abandoned at T - ε: none is sent.
    assert set(OrderIntent.objects.values_list("state", flat=True)) == {"abandoned"}
    assert all(not b.orders for b in result.batches)
    (reason,) = result.skipped.values()
    assert "only LIMIT orders" in reason


@pytest.mark.django_db
def test_an_order_moved_to_an_angel_one_account_becomes_a_limit_and_back():
    from execution.protection.failover import _moved_intent
    from tests.brokers.factories import BrokerAccountFactory
    from tests.execution.engine_factories import IntentFactory

    intent = IntentFactory(side="SELL", reference_price=Decimal("120.00"))
    angel = BrokerAccountFactory(owner=intent.run.owner, broker=Broker.ANGELONE)
    moved = _moved_intent(intent, angel, "")
    assert (moved.order_type, moved.price) == ("LIMIT", Decimal("117.60"))
    assert moved.reference_price == Decimal("120.00")
    kite = BrokerAccountFactory(owner=intent.run.owner, broker=Broker.KITE)
    back = _moved_intent(moved, kite, "")
    assert (back.order_type, back.price, back.limit_protection_percent) == ("MARKET", None, None)
