"""Strategy services and model constraints, for the edge cases pages do not reach."""

from __future__ import annotations

import datetime
from decimal import Decimal as D
from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction

from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import (
    BrokerAllocationFactory,
    LegFactory,
    ProfileFactory,
    StrategyFactory,
    StrategyVersionFactory,
)
from trader.models import Leg, RiskLimit, Strategy, StrategyStatus
from trader.strategies import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "fields",
    [
        {"entry_time": datetime.time(10), "exit_time": datetime.time(10)},
        {"trading_days": 0},
        {"stop_loss_mtm": D(0)},
    ],
)
def test_database_refuses_bad_versions(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        StrategyVersionFactory(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"lots": 0},
        {"position": 9},
        {"strike_mode": "exact", "strike_offset": None, "strike_price": None},
        {"strike_mode": "atm", "strike_offset": 0, "target_delta": D("0.2")},
        {"strike_mode": "delta", "strike_offset": None, "target_delta": D("1.2")},
    ],
)
def test_database_refuses_bad_legs(fields):
    version = StrategyVersionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        LegFactory(version=version, **fields)
    assert not Leg.objects.exists()


def test_database_refuses_a_non_positive_multiplier():
    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerAllocationFactory(multiplier=D(0))


def test_activation_respects_max_open_strategies():
    owner = ProfileFactory().user
    RiskLimit.objects.create(
        user=owner,
        max_lots_per_order=5,
        max_lots_per_strategy=10,
        max_open_strategies=1,
        max_daily_loss=D(1000),
    )
    account = BrokerAccountFactory(owner=owner)
    first, second = (StrategyFactory(owner=owner) for _ in range(2))
    for strategy in (first, second):
        StrategyVersionFactory(strategy=strategy)
        BrokerAllocationFactory(strategy=strategy, broker_account=account)
    services.strategy_activate(user=owner, strategy=first)
    with pytest.raises(services.StrategyStateError, match="your limit of 1"):
        services.strategy_activate(user=owner, strategy=second)
    second.refresh_from_db()
    assert second.status == StrategyStatus.DRAFT


def test_duplicate_for_another_user_copies_legs_but_not_accounts():
    strategy = StrategyFactory()
    version = StrategyVersionFactory(strategy=strategy)
    LegFactory(version=version, position=1)
    BrokerAllocationFactory(strategy=strategy)
    other = ProfileFactory().user
    copy = services.strategy_duplicate(user=other, strategy=strategy)
    assert copy.owner == other and copy.current_version.legs.count() == 1
    assert not copy.allocations.exists()


def test_demo_seed_gives_the_trader_an_active_hedged_strangle_once():
    from trader.strategy_demo import DEMO_NAME, seed

    trader = ProfileFactory().user
    paper = BrokerAccountFactory(owner=trader, broker="paper")
    users = SimpleNamespace(trader=trader, admin=None, creator=None)
    seed(users)
    seed(users)
    strategy = Strategy.objects.get(owner=trader, name=DEMO_NAME)
    assert strategy.status == StrategyStatus.ACTIVE
    assert strategy.allocations.get().broker_account == paper
    legs = list(strategy.current_version.legs.all())
    # Hedges (BUY) are further out than the shorts they protect.
    assert sorted((leg.side, leg.option_type, leg.strike_offset) for leg in legs) == [
        ("BUY", "CE", 8),
        ("BUY", "PE", -8),
        ("SELL", "CE", 4),
        ("SELL", "PE", -4),
    ]
