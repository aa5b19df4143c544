from __future__ import annotations

import datetime
from decimal import Decimal

import factory
from allauth.account.models import EmailAddress

from trader.models import Profile, User


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("correct-horse-battery")

    @factory.post_generation
    def verified_email(obj, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.create(user=obj, email=obj.email, verified=True, primary=True)


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    user = factory.SubFactory(UserFactory)
    full_name = factory.Faker("name", locale="en_IN")
    mobile = factory.Sequence(lambda n: f"+9198{n:08d}")
    state = "MH"
    city = "Mumbai"
    pin_code = "400001"


def _nifty():
    from execution.models import Underlying

    # Seeded by execution's reference-data migration.
    return Underlying.objects.get(symbol="NIFTY")


class StrategyFactory(factory.django.DjangoModelFactory):
    """A draft NIFTY strategy; add versions with StrategyVersionFactory(strategy=...)."""

    class Meta:
        model = "trader.Strategy"

    owner = factory.LazyAttribute(lambda _: ProfileFactory().user)
    name = factory.Sequence(lambda n: f"Strategy {n}")
    underlying = factory.LazyFunction(_nifty)


class StrategyVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "trader.StrategyVersion"
        skip_postgeneration_save = True

    strategy = factory.SubFactory(StrategyFactory)
    number = factory.Sequence(lambda n: n + 1)
    entry_time = datetime.time(9, 20)
    exit_time = datetime.time(15, 15)
    effective_from = factory.LazyFunction(datetime.date.today)

    @factory.post_generation
    def make_current(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            obj.strategy.current_version = obj
            obj.strategy.save(update_fields=["current_version"])


class LegFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "trader.Leg"

    version = factory.SubFactory(StrategyVersionFactory)
    position = factory.Sequence(lambda n: n % 8 + 1)
    side = "SELL"
    option_type = "CE"
    lots = 1
    strike_mode = "atm"
    strike_offset = 0


class BrokerAllocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "trader.BrokerAllocation"

    strategy = factory.SubFactory(StrategyFactory)
    broker_account = factory.LazyAttribute(lambda o: _account_for(o.strategy.owner))
    multiplier = Decimal("1")
    priority = 1


def _account_for(owner):
    from tests.brokers.factories import BrokerAccountFactory

    return BrokerAccountFactory(owner=owner)
