"""A compressed trading day on the engine under an injected clock (execution.simulate_day)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from execution.markettime import IST
from execution.models import Fill, OrderIntent, Position, ScheduledRun
from execution.reference.calendar import day_status
from execution.simulate_day import SessionClock, simulate_day


def _next_session() -> datetime.date:
    """A session day after today (whatever today is): the days the fixture's loaded years
    cover, weekends and holidays skipped."""
    day = timezone.now().astimezone(IST).date() + datetime.timedelta(days=1)
    while day_status(day, "NSE").window is None:
        day += datetime.timedelta(days=1)
    return day


def test_the_session_clock_moves_only_forward_and_only_when_told():
    start = datetime.datetime(2026, 12, 4, 9, 15, tzinfo=IST)
    clock = SessionClock(start)
    assert clock() == start == clock()
    clock.advance_to(start + datetime.timedelta(minutes=1))
    assert clock() == start + datetime.timedelta(minutes=1)
    with pytest.raises(ValueError, match="does not go back"):
        clock.advance_to(start)
    with pytest.raises(ValueError, match="aware"):
        SessionClock(datetime.datetime(2026, 12, 4, 9, 15))


@pytest.mark.django_db
def test_bad_input_is_refused_in_words(calendar_loaded_today):
    with pytest.raises(ValueError, match="at least one"):
        simulate_day(strategies=0, speed=60)
    with pytest.raises(ValueError, match="more than 0"):
        simulate_day(strategies=1, speed=0)
    sunday = _next_session()
    while sunday.weekday() != 6:
        sunday += datetime.timedelta(days=1)
    with pytest.raises(CommandError, match="not an NSE session"):
        call_command("simulate_day", "--strategies", "1", "--date", sunday.isoformat())


# The paper sends run on threads with their own connections.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_a_small_day_enters_exits_and_balances_at_the_paper_books(calendar_loaded_today, capsys):
    day = _next_session()
    call_command(
        "simulate_day", "--strategies", "3", "--speed", "1000000", "--date", day.isoformat()
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["day"] == day.isoformat()
    assert summary["planned_runs"] == 6  # an entry and an exit per strategy
    assert summary["duplicates"] == 0 and summary["lost"] == 0
    runs = ScheduledRun.objects.filter(session_date=day)
    intents = OrderIntent.objects.filter(run__in=runs)
    # The engine ran on the session's clock: every order's time is on that day, in hours.
    opens = datetime.datetime.combine(day, datetime.time(9, 15), tzinfo=IST)
    closes = datetime.datetime.combine(day, datetime.time(15, 40), tzinfo=IST)
    assert all(opens <= i.intended_at <= closes for i in intents)
    entries = intents.filter(purpose="entry")
    assert entries.count() == summary["orders"]["entry"] == 12
    assert summary["orders"]["total"] == intents.count()
    # Every entry filled, and every position closed one way or another by 15:40.
    assert set(entries.values_list("state", flat=True)) == {"filled"}
    assert sum(summary["exits"].values()) == 3
    assert "not closed" not in summary["exits"] and "never entered" not in summary["exits"]
    assert not Position.objects.filter(run__in=runs).exclude(net_quantity=0).exists()
    assert summary["reconciliation"]["open_after_close"] == 0
    # P&L: what the fills made, sells minus buys, to the paisa.
    fills = Fill.objects.filter(intent__run__in=runs).select_related("intent")
    assert summary["fills"] == fills.count() >= 24
    made = sum(
        (f.price * f.quantity * (1 if f.intent.side == "SELL" else -1) for f in fills),
        Decimal("0"),
    )
    assert Decimal(summary["pnl"]) == made
