from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from brokers.models import AccountStatus, Broker, BrokerAccount, PaperAccount
from tests.trader.factories import ProfileFactory


class BrokerAccountFactory(factory.django.DjangoModelFactory):
    """A real-broker account, logged in (status connected, token valid until tomorrow)."""

    class Meta:
        model = BrokerAccount

    owner = factory.LazyAttribute(lambda _: ProfileFactory().user)
    broker = Broker.KITE
    label = factory.Sequence(lambda n: f"Account {n}")
    api_key = factory.Sequence(lambda n: f"apikey{n:04d}")
    api_secret = factory.Sequence(lambda n: f"apisecret-{n:04d}-s3cr3t")
    access_token = factory.Sequence(lambda n: f"accesstoken-{n:04d}-t0k3n")
    token_issued_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    token_expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=12))
    broker_user_id = factory.Sequence(lambda n: f"AB{n:04d}")
    status = AccountStatus.CONNECTED


class PaperBookFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaperAccount

    account = factory.SubFactory(
        BrokerAccountFactory,
        broker=Broker.PAPER,
        api_key="",
        api_secret="",
        access_token="",
        status=AccountStatus.EXPIRED,
        token_issued_at=None,
        token_expires_at=None,
    )
    starting_cash = Decimal("1000000")
    cash = Decimal("1000000")
    slippage_pct = Decimal("0")
