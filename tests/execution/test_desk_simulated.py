"""Paper at any hour: a test run fired outside market hours trades in a simulated session whose
market moves, and exits at its time in that session, not at once."""

from __future__ import annotations

import datetime

import pytest
import time_machine
from django.urls import reverse

from execution.market import simulated
from execution.market.simulated import SimulatedMarket, after_hours_time, in_session
from execution.markettime import IST
from execution.models.engine import RunState
from execution.orders.runs import simulated_session
from execution.protection.watch import _square_off_due
from tests.execution.engine_factories import RunFactory, VersionFactory

pytestmark = pytest.mark.django_db

EVENING = datetime.datetime(2026, 12, 4, 22, 19, tzinfo=IST)  # a Friday, market closed


@pytest.fixture
def after_hours(monkeypatch):
    market = SimulatedMarket(after_hours_speed=60)
    monkeypatch.setattr(simulated, "_default", market)
    return market


def test_after_hours_prices_move_and_market_hours_are_untouched(after_hours):
    flat = SimulatedMarket()
    later = EVENING + datetime.timedelta(seconds=30)
    assert flat.spot("NIFTY", EVENING) == flat.spot("NIFTY", later)  # the old, still default
    assert after_hours.spot("NIFTY", EVENING) != after_hours.spot("NIFTY", later)
    noon = datetime.datetime(2026, 12, 3, 12, 0, tzinfo=IST)
    assert in_session(noon) and after_hours.spot("NIFTY", noon) == flat.spot("NIFTY", noon)
    market_time = after_hours_time(EVENING, 60).astimezone(IST)
    assert market_time.date() == datetime.date(2026, 12, 4)  # Friday's session replayed
    assert datetime.time(9, 15) <= market_time.time() < datetime.time(15, 30)
    saturday = after_hours_time(EVENING + datetime.timedelta(days=1), 60).astimezone(IST)
    assert saturday.date() == datetime.date(2026, 12, 4)  # no weekend session


def test_a_test_run_after_hours_exits_at_its_time_not_at_once(after_hours, owner_client, owner):
    version = VersionFactory(
        strategy__owner=owner, entry_time=datetime.time(9, 20), exit_time=datetime.time(9, 50)
    )
    run = RunFactory(
        strategy_version=version,
        owner=owner,
        is_test=True,
        source="paper_test",
        session_date=EVENING.date(),
        fire_at=EVENING,
        state=RunState.DISPATCHED,
    )
    session = simulated_session(run, EVENING)
    # 30 market minutes at 60x: 30 real seconds.
    assert session is not None and session.exit_at == EVENING + datetime.timedelta(seconds=30)
    assert not _square_off_due(run, EVENING + datetime.timedelta(seconds=5))
    assert _square_off_due(run, EVENING + datetime.timedelta(seconds=30))
    with time_machine.travel(EVENING + datetime.timedelta(seconds=10), tick=False):
        page = owner_client.get(reverse("execution:run-detail", args=[run.pk]))
    assert "Simulated session" in page.text and "60\u00d7 faster" in page.text


def test_a_real_run_is_never_in_a_simulated_session(after_hours, owner):
    run = RunFactory(strategy_version__strategy__owner=owner, owner=owner, fire_at=EVENING)
    assert simulated_session(run, EVENING) is None
