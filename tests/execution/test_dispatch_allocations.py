"""How many lots each account of a run gets at dispatch, and the runs that get none: fixed
lots, multipliers that round a leg below one lot, an account deleted since the plan, a test
run allocated to a live account, a version without legs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.models import OrderIntent, RunState, ScheduledRun
from execution.planning.plan import day_plan
from tests.execution.engine_factories import strategy_with_accounts
from tests.execution.test_dispatch import DAY, FlatMarket, T, _accounts_ready
from trader.models import BrokerAllocation, Leg

pytestmark = pytest.mark.django_db


def _planned(**allocation):
    """One iron condor (one lot a leg) on one ready Kite account, its allocation changed by
    `allocation`, planned for DAY; (run, account)."""
    strategy, _version, (account,) = strategy_with_accounts(brokers=(Broker.KITE,))
    _accounts_ready([account])
    BrokerAllocation.objects.filter(strategy=strategy).update(**allocation)
    day_plan(day=DAY)
    return ScheduledRun.objects.get(boundary="entry", strategy_version__strategy=strategy), account


def _dispatch():
    return boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)


def test_fixed_lots_give_every_leg_that_many_lots_whatever_the_leg_says():
    run, _account = _planned(sizing="fixed", fixed_lots=3, multiplier=None)
    result = _dispatch()
    assert result.intents == 4 and not result.skipped
    intents = list(OrderIntent.objects.filter(run=run))
    assert {i.quantity // i.lot_size for i in intents} == {3}
    assert all(i.quantity % i.lot_size == 0 for i in intents)


def test_a_multiplier_rounding_a_leg_below_one_lot_refuses_the_run_in_words():
    run, account = _planned(multiplier=Decimal("0.5"))
    result = _dispatch()
    assert OrderIntent.objects.count() == 0
    run.refresh_from_db()
    assert run.state == RunState.SKIPPED
    assert f"{account.label}: a leg would be less than one lot." in result.skipped[run.pk]


def test_an_account_deleted_since_the_plan_is_named_and_sends_nothing():
    run, account = _planned()
    account_id = account.pk
    BrokerAllocation.objects.filter(broker_account=account).delete()
    account.delete()
    result = _dispatch()
    assert OrderIntent.objects.count() == 0
    assert f"Account {account_id} no longer exists." in result.skipped[run.pk]


def test_a_test_run_never_reaches_a_live_account():
    run, _account = _planned()
    ScheduledRun.objects.filter(pk=run.pk).update(is_test=True, source="paper_test")
    result = _dispatch()
    assert OrderIntent.objects.count() == 0
    run.refresh_from_db()
    assert result.skipped[run.pk] == "No account to trade on."
    assert run.state == RunState.SKIPPED


def test_a_version_without_legs_is_refused_in_words():
    run, _account = _planned()
    Leg.objects.filter(version=run.strategy_version).delete()
    result = _dispatch()
    assert OrderIntent.objects.count() == 0
    assert result.skipped[run.pk] == "The strategy version has no legs."


class _NoOptionQuotes(FlatMarket):
    """A spot, but no quote for the contract asked for."""

    def option_quote(self, symbol, expiry, strike, option_type, at=None):
        raise LookupError(f"no quote for {symbol} {strike} {option_type}")


def test_a_contract_without_a_quote_is_still_sent_where_market_orders_are_taken():
    run, _account = _planned()
    result = boundary_dispatch(fire_at=T, market=_NoOptionQuotes(), wait=False, start_sends=False)
    assert result.intents == 4 and not result.skipped
    intents = list(OrderIntent.objects.filter(run=run))
    assert {i.reference_price for i in intents} == {None}
    assert {i.order_type for i in intents} == {"MARKET"}
