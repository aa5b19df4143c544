from __future__ import annotations

import datetime as dt

import factory

from execution.models import TradingHoliday, Underlying
from tests.trader.factories import UserFactory


class UnderlyingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Underlying
        django_get_or_create = ("symbol",)

    symbol = factory.Sequence(lambda n: f"TESTIDX{n}")
    name = factory.LazyAttribute(lambda o: f"{o.symbol} index")
    exchange = "NSE"
    segment = "NFO"


class TradingHolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TradingHoliday

    exchange = "NSE"
    date = dt.date(2026, 12, 8)
    reason = "Ad-hoc closure"


class SuperuserFactory(UserFactory):
    is_staff = True
    is_superuser = True
