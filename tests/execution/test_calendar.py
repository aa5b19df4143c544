"""Trading calendar: sessions, windows and the guard, over random datetimes and named days."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.markettime import IST
from execution.models import SpecialSession, TradingHoliday
from execution.reference import calendar
from execution.reference.calendar import TradingClosedError

pytestmark = pytest.mark.django_db

random_moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31, 23, 59, 59)
).map(lambda naive: naive.replace(tzinfo=IST))
# 2027's holiday list is not loaded (NSE publishes it in December): no day of it is a session.
random_moments_2027 = st.datetimes(
    min_value=datetime(2027, 1, 1), max_value=datetime(2027, 12, 31, 23, 59, 59)
).map(lambda naive: naive.replace(tzinfo=IST))
exchanges = st.sampled_from(["NSE", "BSE"])
property_settings = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def at(day: str, hhmm: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), tzinfo=IST)


def _declared(exchange: str) -> tuple[set[date], set[date]]:
    holidays = set(TradingHoliday.objects.filter(exchange=exchange).values_list("date", flat=True))
    specials = set(SpecialSession.objects.filter(exchange=exchange).values_list("date", flat=True))
    return holidays, specials


# F&O closed at 15:30 until 31-Jul-2026 and at 15:40 from Monday 3-Aug-2026 (NSE/FAOP/75472).
CLOSE_MOVED = date(2026, 8, 3)


def _close(day: date) -> time:
    return time(15, 40) if day >= CLOSE_MOVED else time(15, 30)


@property_settings
@given(moment=random_moments_2027, exchange=exchanges)
def test_no_day_of_an_unloaded_year_is_a_session_and_each_says_why(moment, exchange):
    day = moment.date()
    assert not calendar.is_session(day, exchange)
    with pytest.raises(TradingClosedError) as caught:
        calendar.assert_can_trade(moment, exchange)
    assert caught.value.reason == f"{exchange} holiday calendar for 2027 not loaded"


@property_settings
@given(moment=random_moments, exchange=exchanges)
def test_no_session_on_weekends_or_holidays_unless_declared(moment, exchange):
    holidays, specials = _declared(exchange)
    day = moment.date()
    if day in specials:
        assert calendar.is_session(day, exchange)
    elif day.weekday() >= 5 or day in holidays:
        assert not calendar.is_session(day, exchange)
        assert not calendar.can_trade_at(moment, exchange)
        with pytest.raises(TradingClosedError):
            calendar.assert_can_trade(moment, exchange)
    else:
        assert calendar.is_session(day, exchange)


@property_settings
@given(moment=random_moments, exchange=exchanges)
def test_normal_session_opens_at_0915_and_closes_at_that_dates_close(moment, exchange):
    holidays, specials = _declared(exchange)
    day = moment.date()
    if day in specials or day in holidays or day.weekday() >= 5:
        return
    close = _close(day)
    last_second = (datetime.combine(day, close) - timedelta(seconds=1)).time()
    assert calendar.can_trade_at(datetime.combine(day, time(9, 15), tzinfo=IST), exchange)
    assert calendar.can_trade_at(datetime.combine(day, last_second, tzinfo=IST), exchange)
    assert not calendar.can_trade_at(datetime.combine(day, close, tzinfo=IST), exchange)
    assert not calendar.can_trade_at(datetime.combine(day, time(9, 14, 59), tzinfo=IST), exchange)
    inside = time(9, 15) <= moment.time() < close
    assert calendar.can_trade_at(moment, exchange) is inside


@pytest.mark.parametrize("exchange", ["NSE", "BSE"])
def test_close_moves_from_1530_to_1540_on_3_aug_2026(exchange):
    # Friday 31-Jul-2026: the last 15:30 close; Monday 3-Aug-2026: the first 15:40 close.
    assert calendar.can_trade_at(at("2026-07-31", "15:29:59"), exchange)
    assert not calendar.can_trade_at(at("2026-07-31", "15:30"), exchange)
    assert not calendar.can_trade_at(at("2026-07-31", "15:35"), exchange)
    assert calendar.can_trade_at(at("2026-08-03", "15:35"), exchange)
    assert calendar.can_trade_at(at("2026-08-03", "15:39:59"), exchange)
    assert not calendar.can_trade_at(at("2026-08-03", "15:40"), exchange)
    assert calendar.normal_timing(date(2026, 7, 31), exchange) == (time(9, 15), time(15, 30))
    assert calendar.normal_timing(date(2026, 12, 7), exchange) == (time(9, 15), time(15, 40))


@property_settings
@given(moment=random_moments)
def test_guard_agrees_with_can_trade_at_in_any_timezone(moment):
    # The same instant expressed in UTC must get the same answer as in IST.
    utc = moment.astimezone(UTC)
    assert calendar.can_trade_at(utc) is calendar.can_trade_at(moment)


@pytest.mark.parametrize(
    ("moment", "reason"),
    [
        (at("2026-11-07", "10:00"), "Saturday"),
        (at("2026-11-08", "10:00"), "Sunday"),
        (at("2026-11-10", "10:00"), "holiday: Diwali Balipratipada"),
        (at("2026-01-15", "10:00"), "holiday: Municipal elections (added 12-Jan-2026)"),
        (at("2026-11-11", "15:40"), "outside the session window 09:15–15:40 IST"),  # noqa: RUF001
        (at("2026-11-11", "08:59"), "outside the session window 09:15–15:40 IST"),  # noqa: RUF001
        (at("2026-07-30", "15:30"), "outside the session window 09:15–15:30 IST"),  # noqa: RUF001
        (at("2027-01-26", "10:00"), "NSE holiday calendar for 2027 not loaded"),
        (at("2027-01-27", "10:00"), "NSE holiday calendar for 2027 not loaded"),
        (
            at("2025-10-21", "15:00"),
            "outside the session window 13:45–14:45 IST (Muhurat trading (Samvat 2082))",  # noqa: RUF001
        ),
    ],
)
def test_guard_says_why_trading_is_closed(moment, reason):
    with pytest.raises(TradingClosedError) as caught:
        calendar.assert_can_trade(moment)
    assert caught.value.reason == reason
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "moment",
    [
        at("2026-02-01", "09:15"),  # Budget day, a Sunday with a full session
        at("2025-02-01", "15:29"),  # Budget day, a Saturday
        at("2025-10-21", "13:45"),  # Muhurat on the Diwali holiday
        at("2026-11-11", "09:15"),
    ],
)
def test_guard_lets_declared_sessions_trade(moment):
    calendar.assert_can_trade(moment)
    assert calendar.can_trade_at(moment)


def test_session_window_is_aware_ist_and_none_when_closed():
    opens, closes = calendar.session_window(date(2025, 10, 21))
    assert (opens, closes) == (at("2025-10-21", "13:45"), at("2025-10-21", "14:45"))
    assert opens.utcoffset() == timedelta(hours=5, minutes=30)
    assert calendar.session_window(date(2026, 11, 10)) is None
    assert calendar.session_window(date(2026, 11, 14)) is None


def test_bse_follows_its_own_rows():
    TradingHoliday.objects.create(exchange="BSE", date=date(2026, 12, 2), reason="BSE only")
    assert not calendar.is_session(date(2026, 12, 2), "BSE")
    assert calendar.is_session(date(2026, 12, 2), "NSE")


def test_naive_moment_and_unknown_exchange_are_refused():
    with pytest.raises(ValueError):
        calendar.can_trade_at(datetime(2026, 11, 11, 10, 0))
    with pytest.raises(ValueError):
        calendar.is_session(date(2026, 11, 11), "MCX")


def test_dates_before_the_seeded_coverage_are_not_sessions_and_say_why():
    assert not calendar.is_session(date(2023, 6, 1))
    assert calendar.day_status(date(2023, 6, 1)).closed_reason == (
        "NSE holiday calendar for 2023 not loaded"
    )


def test_sessions_between_counts_2026_sessions():
    # 261 weekdays in 2026, 16 weekday holidays, plus the Budget Sunday.
    assert len(calendar.sessions_between(date(2026, 1, 1), date(2026, 12, 31))) == 261 - 16 + 1


def test_coverage_warns_when_no_list_or_not_this_years_list_is_loaded():
    from execution.models import HolidayCalendarYear

    HolidayCalendarYear.objects.filter(exchange="NSE").delete()
    today = date(2031, 6, 1)
    assert calendar.calendar_coverage(today, "NSE").warning == (
        "No NSE holiday calendar is loaded: nothing can trade."
    )
    HolidayCalendarYear.objects.create(exchange="NSE", year=2030, source="test")
    coverage = calendar.calendar_coverage(today, "NSE")
    assert not coverage.today_loaded and coverage.last_loaded_year == 2030
    assert coverage.warning == (
        "NSE holiday calendar for 2031 not loaded: nothing can trade until an admin loads it."
    )


def test_a_naive_datetime_is_refused_as_ambiguous():
    with pytest.raises(ValueError, match="naive datetime is ambiguous"):
        calendar.day_status(datetime(2026, 11, 19, 10, 0), "NSE")
