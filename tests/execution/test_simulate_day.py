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
    with pytest.raises(ValueError, match="--watch-every 1 or more"):
        simulate_day(strategies=1, speed=60, watch_every=0)
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


@pytest.mark.django_db
def test_without_a_day_the_last_session_before_today_is_simulated(calendar_loaded_today):
    from execution.simulate_day import session_day_for

    monday = _next_session()
    while monday.weekday() != 0:
        monday += datetime.timedelta(days=1)
    friday = monday - datetime.timedelta(days=3)
    if day_status(friday, "NSE").window is None:
        pytest.skip(f"{friday} is a holiday in the loaded calendar")
    # From a Monday, the weekend is stepped over to the Friday.
    assert session_day_for(None, today=monday) == friday


@pytest.mark.django_db
def test_without_any_session_in_two_weeks_the_simulation_says_so():
    from execution.simulate_day import session_day_for

    # No holiday year loaded (this test does not load one): no day is a session.
    with pytest.raises(ValueError, match="no NSE session in the two weeks"):
        session_day_for(None, today=datetime.date(2031, 3, 12))


# The paper sends run on threads with their own connections.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_claims_cleared_from_redis_mid_day_are_reported_not_hidden(
    calendar_loaded_today, monkeypatch
):
    """Why a day once ended with reconciliation "sent": 10. The engine's claims live in the
    Redis of REDIS_URL; a test suite sharing it clears it (cache.clear() flushes the database).
    Orders whose claims vanished before their write are not their sender's any more: it leaves
    them unsent and unrecorded, and the reconciler later finds them as orphans. Entries are
    then minutes past their T on the session's clock and are missed, never written twice. The
    summary says so: `redis_cleared`, reconciliation "sent" and the abandoned entries."""
    from django.core.cache import cache

    from execution.send import sender

    real = sender.claims_take
    cleared = []

    def claims_then_cleared(tags, **kwargs):
        mine = real(tags, **kwargs)
        if not cleared:  # the first batch of the day (the first entry's legs)
            cache.clear()
            cleared.append(set(mine))
        return mine

    monkeypatch.setattr(sender, "claims_take", claims_then_cleared)
    summary = simulate_day(strategies=1, speed=1_000_000, day=_next_session()).to_json()
    (lost_claims,) = cleared
    assert len(lost_claims) == 4  # the iron condor's four entry legs
    assert summary["redis_cleared"] is True
    assert summary["reconciliation"]["sent"] == 4
    assert summary["states"] == {"abandoned": 4}
    entries = OrderIntent.objects.filter(tag__in=lost_claims)
    assert all(i.error.startswith("Missed:") for i in entries)
    assert summary["duplicates"] == 0 and summary["lost"] == 0
    assert summary["exits"] == {"never entered": 1}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.slow
def test_a_day_on_an_undisturbed_redis_reports_it_was_not_cleared(calendar_loaded_today):
    summary = simulate_day(strategies=1, speed=1_000_000, day=_next_session()).to_json()
    assert summary["redis_cleared"] is False
    assert summary["reconciliation"]["sent"] == 0
    assert "abandoned" not in summary["states"]
    assert sum(summary["states"].values()) == summary["orders"]["total"]


def test_lateness_percentiles_of_no_samples_are_zero_and_otherwise_taken_from_the_samples():
    from execution.simulate_day import _percentile

    assert _percentile([], 50) == 0.0
    samples = [0.4, 0.1, 0.3, 0.2]
    assert _percentile(samples, 50) == 0.3
    assert _percentile(samples, 100) == 0.4  # the largest, never past the end
