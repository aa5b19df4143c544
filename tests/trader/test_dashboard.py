"""The dashboard shows the trader's real state: profile, accounts, active strategies, next entry."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from execution.markettime import IST
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import (
    BrokerAllocationFactory,
    LegFactory,
    StrategyFactory,
    StrategyVersionFactory,
)
from trader.models import StrategyStatus

pytestmark = pytest.mark.django_db


def _strategy(owner, *, status, name):
    strategy = StrategyFactory(owner=owner, status=status, name=name)
    version = StrategyVersionFactory(
        strategy=strategy, number=1, effective_from=datetime.date(2026, 1, 1)
    )
    LegFactory(version=version, position=1)
    BrokerAllocationFactory(strategy=strategy, broker_account=BrokerAccountFactory(owner=owner))
    return strategy


def test_new_trader_is_told_what_to_do_next(client):
    from trader.models import User

    user = User.objects.create_user("new@example.com", "pw-123456789")
    client.force_login(user)
    body = client.get(reverse("trader:dashboard")).content.decode()
    assert "Complete your profile" in body
    assert "Connect a broker" in body
    assert "Build a strategy" in body
    assert "No entry is scheduled" in body


def test_active_strategy_shows_its_next_entry(owner, owner_client, calendar_loaded_today):
    _strategy(owner, status=StrategyStatus.ACTIVE, name="Morning condor")
    _strategy(owner, status=StrategyStatus.PAUSED, name="Paused one")
    response = owner_client.get(reverse("trader:dashboard"))
    body = response.content.decode()
    assert "1 active strategy" in body
    assert "Morning condor" in body and "Paused one" not in body
    entry = response.context["next_runs"][0][0]
    assert entry.tzinfo is not None and entry.astimezone(IST).time() == datetime.time(9, 20)
    assert entry > datetime.datetime.now(tz=IST)


def test_account_with_expired_login_is_flagged(owner, owner_client):
    BrokerAccountFactory(owner=owner, status="expired", last_error="Token expired at 06:00 IST.")
    body = owner_client.get(reverse("trader:dashboard")).content.decode()
    assert "Broker accounts needing attention" in body
    assert "Token expired at 06:00 IST." in body


def test_dashboard_queries_do_not_grow_with_strategies(
    owner, owner_client, django_assert_max_num_queries
):
    _strategy(owner, status=StrategyStatus.ACTIVE, name="one")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        owner_client.get(reverse("trader:dashboard"))
    for n in range(5):
        _strategy(owner, status=StrategyStatus.ACTIVE, name=f"more {n}")
    with django_assert_max_num_queries(len(one.captured_queries)):
        owner_client.get(reverse("trader:dashboard"))
