"""Factories for marketplace tests: a creator's strategy with a version and legs, listings in
any workflow state, subscriptions and paper broker accounts."""

from __future__ import annotations

import datetime
from decimal import Decimal

import factory

from execution.models import Underlying
from marketplace.models import Listing, ListingVersion, Plan, PlanKind, Visibility
from marketplace.services.listings import strategy_version_snapshot
from marketplace.workflow import ListingState
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import ProfileFactory
from trader.models.strategies import Leg, Strategy, StrategyVersion


def creator_user():
    return ProfileFactory().user


class UnderlyingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Underlying
        django_get_or_create = ("symbol",)

    symbol = "NIFTY"
    name = "Nifty 50"
    exchange = "NSE"
    segment = "NFO"


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Strategy
        skip_postgeneration_save = True

    owner = factory.LazyFunction(creator_user)
    name = factory.Sequence(lambda n: f"Straddle {n}")
    underlying = factory.SubFactory(UnderlyingFactory)
    status = "active"

    @factory.post_generation
    def with_version(obj, create, extracted, **kwargs):
        if not create:
            return
        version = StrategyVersion.objects.create(
            strategy=obj,
            number=1,
            entry_time=datetime.time(9, 20, 7),
            exit_time=datetime.time(15, 10, 3),
            effective_from=datetime.date(2026, 1, 1),
        )
        Leg.objects.create(
            version=version, position=1, side="SELL", option_type="CE", lots=1, strike_offset=3
        )
        Leg.objects.create(
            version=version,
            position=2,
            side="SELL",
            option_type="PE",
            lots=1,
            strike_mode="exact",
            strike_price=Decimal("24350"),
        )
        obj.current_version = version
        obj.save(update_fields=["current_version"])


class ListingFactory(factory.django.DjangoModelFactory):
    """A listing with one plan and a first version; `state` may be any workflow state, and a
    listing past approval gets its approved version as the live one."""

    class Meta:
        model = Listing
        skip_postgeneration_save = True

    strategy = factory.SubFactory(StrategyFactory)
    creator = factory.LazyAttribute(lambda o: o.strategy.owner)
    underlying = factory.LazyAttribute(lambda o: o.strategy.underlying)
    title = factory.Sequence(lambda n: f"Weekly straddle {n}")
    description = "Sells an at-the-money straddle and exits before the close."
    tags = "straddle, intraday"
    risk_level = "medium"
    capital_required = Decimal("150000")
    min_multiplier = 1
    visibility = Visibility.COPY_ALLOWED
    sebi_ra_number = ""
    state = ListingState.PUBLISHED

    @factory.post_generation
    def plan(obj, create, extracted, **kwargs):
        if not create:
            return
        terms = {"kind": PlanKind.FREE}
        terms.update(extracted or {})
        Plan.objects.create(listing=obj, **terms)

    @factory.post_generation
    def first_version(obj, create, extracted, **kwargs):
        if not create:
            return
        approved = obj.state in (
            ListingState.APPROVED,
            ListingState.PUBLISHED,
            ListingState.SUSPENDED,
            ListingState.RETIRED,
        )
        version = ListingVersion.objects.create(
            listing=obj,
            number=1,
            strategy_version=obj.strategy.current_version,
            snapshot=strategy_version_snapshot(version=obj.strategy.current_version),
            state="approved" if approved else "draft",
        )
        if approved:
            obj.live_version = version
            obj.save(update_fields=["live_version"])


class PaperAccountFactory(BrokerAccountFactory):
    """A connected paper account (the brokers app's factory, on the paper broker)."""

    owner = factory.LazyFunction(creator_user)
    broker = "paper"
    label = factory.Sequence(lambda n: f"Paper {n}")
