"""Factories for the execution engine: strategies with legs and allocations, runs, intents."""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from django.utils import timezone

from brokers.models import Broker
from execution.markettime import IST
from execution.models import (
    Boundary,
    OrderIntent,
    ScheduledRun,
    Underlying,
)
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import ProfileFactory
from trader.models import (
    BrokerAllocation,
    Leg,
    Strategy,
    StrategyStatus,
    StrategyVersion,
)


def nifty() -> Underlying:
    return Underlying.objects.get(symbol="NIFTY")


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy

    owner = factory.LazyAttribute(lambda _: ProfileFactory().user)
    name = factory.Sequence(lambda n: f"Strategy {n}")
    underlying = factory.LazyFunction(nifty)
    status = StrategyStatus.ACTIVE


class VersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StrategyVersion

    strategy = factory.SubFactory(StrategyFactory)
    number = factory.Sequence(lambda n: n + 1)
    entry_time = datetime.time(9, 20)
    exit_time = datetime.time(15, 10)
    effective_from = datetime.date(2024, 1, 1)


class LegFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Leg

    version = factory.SubFactory(VersionFactory)
    position = factory.Sequence(lambda n: n % 8 + 1)
    side = "SELL"
    option_type = "CE"
    lots = 1
    strike_mode = "atm"
    strike_offset = 0


def iron_condor(version: StrategyVersion, *, lots: int = 1) -> list[Leg]:
    """Four legs: SELL the ATM±2 wings' inner strikes, BUY the outer ones (hedges)."""
    spec = [
        ("SELL", "CE", 2),
        ("BUY", "CE", 6),
        ("SELL", "PE", -2),
        ("BUY", "PE", -6),
    ]
    return [
        LegFactory(
            version=version,
            position=index,
            side=side,
            option_type=option_type,
            strike_offset=offset,
            lots=lots,
        )
        for index, (side, option_type, offset) in enumerate(spec, start=1)
    ]


def strategy_with_accounts(
    *,
    brokers: tuple[str, ...] = (Broker.PAPER,),
    legs: int = 4,
    owner=None,
    entry: datetime.time = datetime.time(9, 20),
    exit: datetime.time = datetime.time(15, 10),
    lots: int = 1,
):
    """An active strategy with `legs` legs on one account per broker (priority by order)."""
    owner = owner or ProfileFactory().user
    strategy = StrategyFactory(owner=owner)
    version = VersionFactory(strategy=strategy, number=1, entry_time=entry, exit_time=exit)
    strategy.current_version = version
    strategy.save(update_fields=["current_version"])
    if legs == 4:
        iron_condor(version, lots=lots)
    else:
        for index in range(1, legs + 1):
            LegFactory(
                version=version,
                position=index,
                side="BUY" if index % 2 else "SELL",
                option_type="CE" if index % 4 in (1, 2) else "PE",
                strike_offset=index,
                lots=lots,
            )
    accounts = []
    for priority, broker in enumerate(brokers, start=1):
        account = BrokerAccountFactory(owner=owner, broker=broker)
        BrokerAllocation.objects.create(
            strategy=strategy,
            broker_account=account,
            multiplier=Decimal("1"),
            priority=priority,
        )
        accounts.append(account)
    return strategy, version, accounts


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ScheduledRun

    session_date = datetime.date(2026, 11, 19)  # a Thursday
    boundary = Boundary.ENTRY
    fire_at = factory.LazyAttribute(
        lambda o: datetime.datetime.combine(o.session_date, datetime.time(9, 20), tzinfo=IST)
    )
    strategy_version = factory.SubFactory(VersionFactory)
    owner = factory.LazyAttribute(lambda o: o.strategy_version.strategy.owner)
    source = "allocation"


class IntentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderIntent

    run = factory.SubFactory(RunFactory)
    account = factory.LazyAttribute(lambda o: BrokerAccountFactory(owner=o.run.owner))
    side = "BUY"
    exchange = "NFO"
    tradingsymbol = "NIFTY26N2424000CE"
    quantity = 75
    tag = factory.Sequence(lambda n: f"T{n:010d}")
    intended_at = factory.LazyFunction(timezone.now)
