"""Trading calendar per exchange: sessions, holidays, special sessions, the trading guard.

Every answer is read from the database at call time (no cache that could outlive an admin
edit): adding a holiday in admin changes `is_session`, the guard and the expiry dates derived
from them on the next call. A `CalendarSlice` loads one exchange's rows for a date range in three
queries, for callers that ask about many days at once (expiry schedules, planners).

Rules that are not data: a year is tradable only once its exchange holiday list is recorded as
loaded (`HolidayCalendarYear`); until then no day of it is a session, special sessions included,
and every answer says why. Saturdays and Sundays are closed unless a special session is
declared; a special session replaces the normal window and overrides a holiday on the same day
(Muhurat falls on the Diwali holiday). The window is half-open: [open, close). The normal window
itself is dated (`SessionTiming`: F&O closes at 15:30 until 31-Jul-2026, 15:40 from 3-Aug-2026).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from execution.markettime import IST
from execution.models import (
    Exchange,
    HolidayCalendarYear,
    SessionTiming,
    SpecialSession,
    TradingHoliday,
)

# Bounds how far back an expiry may move (a run of holidays and a weekend is a few days).
_MAX_EXPIRY_SHIFT_DAYS = 15


class TradingClosedError(Exception):
    """Raised by `assert_can_trade`; `reason` says why in words.

    e.g. "Saturday", "holiday: Diwali Balipratipada", "outside the session window
    09:15-15:30 IST" (the message uses an en dash between the times).
    """

    def __init__(self, *, moment: datetime, exchange: str, reason: str) -> None:
        self.moment = moment
        self.exchange = exchange
        self.reason = reason
        local = moment.astimezone(IST)
        super().__init__(f"{exchange} is closed at {local:%Y-%m-%d %H:%M:%S} IST: {reason}")


class ReferenceDataMissingError(LookupError):
    """The reference tables have no row for the date asked (outside the seeded coverage)."""


class CalendarNotLoadedError(ReferenceDataMissingError):
    """The exchange's holiday list for that year is not loaded, so no day of it is known."""


def not_loaded_reason(exchange: str, year: int) -> str:
    return f"{exchange} holiday calendar for {year} not loaded"


@dataclass(frozen=True)
class DayStatus:
    day: date
    window: tuple[datetime, datetime] | None
    closed_reason: str | None  # set when window is None
    window_label: str  # the window in words, with the special session's reason
    expiries_allowed: bool


def _check_exchange(exchange: str) -> str:
    if exchange not in Exchange.values:
        raise ValueError(f"Unknown exchange {exchange!r}; expected one of {Exchange.values}")
    return exchange


def _as_day(day: date | datetime) -> date:
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise ValueError("A naive datetime is ambiguous; pass an aware datetime or a date.")
        return day.astimezone(IST).date()
    return day


def _aware(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=IST)


class CalendarSlice:
    """One exchange's calendar rows for [start, end], loaded once; answers per day."""

    def __init__(self, exchange: str, start: date, end: date) -> None:
        self.exchange = _check_exchange(exchange)
        self.start = start
        self.end = end
        self.holidays = {
            h.date: h.reason
            for h in TradingHoliday.objects.filter(exchange=exchange, date__range=(start, end))
        }
        self.specials = {
            s.date: s
            for s in SpecialSession.objects.filter(exchange=exchange, date__range=(start, end))
        }
        self.loaded_years = set(
            HolidayCalendarYear.objects.filter(
                exchange=exchange, year__range=(start.year, end.year)
            ).values_list("year", flat=True)
        )
        # Timings in force during the range: every row starting inside it, plus the last one
        # starting before it.
        timings = list(
            SessionTiming.objects.filter(exchange=exchange, effective_from__lte=end).order_by(
                "-effective_from"
            )
        )
        self.timings = [t for t in timings if t.effective_from >= start]
        earlier = [t for t in timings if t.effective_from < start]
        if earlier:
            self.timings.append(earlier[0])

    def _covers(self, day: date) -> None:
        if not self.start <= day <= self.end:
            raise ValueError(f"{day} is outside this calendar slice ({self.start} to {self.end})")

    def year_loaded(self, day: date) -> bool:
        return day.year in self.loaded_years

    def timing(self, day: date) -> SessionTiming:
        """The normal-session timing row in force on `day` (whether or not it is a session)."""
        self._covers(day)
        timing = next((t for t in self.timings if t.effective_from <= day), None)
        if timing is None:
            raise ReferenceDataMissingError(
                f"No {self.exchange} session timing in force on {day} (seeded coverage starts "
                "2024-01-01; add a session timing in admin)."
            )
        return timing

    def status(self, day: date) -> DayStatus:
        self._covers(day)
        if not self.year_loaded(day):
            return DayStatus(day, None, not_loaded_reason(self.exchange, day.year), "", False)
        special = self.specials.get(day)
        if special is not None:
            label = f"{special.opens_at:%H:%M}–{special.closes_at:%H:%M} IST ({special.reason})"  # noqa: RUF001
            return DayStatus(
                day=day,
                window=(_aware(day, special.opens_at), _aware(day, special.closes_at)),
                closed_reason=None,
                window_label=label,
                expiries_allowed=special.expiries_allowed,
            )
        if day.weekday() >= 5:
            return DayStatus(day, None, day.strftime("%A"), "", False)
        if day in self.holidays:
            return DayStatus(day, None, f"holiday: {self.holidays[day]}", "", False)
        timing = self.timing(day)
        return DayStatus(
            day=day,
            window=(_aware(day, timing.opens_at), _aware(day, timing.closes_at)),
            closed_reason=None,
            window_label=f"{timing.opens_at:%H:%M}–{timing.closes_at:%H:%M} IST",  # noqa: RUF001
            expiries_allowed=True,
        )

    def is_session(self, day: date) -> bool:
        return self.status(day).window is not None

    def is_expiry_day(self, day: date) -> bool:
        status = self.status(day)
        return status.window is not None and status.expiries_allowed

    def days(self) -> Iterator[date]:
        day = self.start
        while day <= self.end:
            yield day
            day += timedelta(days=1)


def _single_day(day: date, exchange: str) -> DayStatus:
    return CalendarSlice(exchange, day, day).status(day)


def day_status(day: date | datetime, exchange: str = Exchange.NSE) -> DayStatus:
    """Window, closed reason and expiry eligibility of one day."""
    return _single_day(_as_day(day), exchange)


def is_session(day: date | datetime, exchange: str = Exchange.NSE) -> bool:
    """Whether the exchange holds a session (normal or special) on that day (IST)."""
    return day_status(day, exchange).window is not None


def session_window(
    day: date | datetime, exchange: str = Exchange.NSE
) -> tuple[datetime, datetime] | None:
    """The aware IST [open, close) window of that day's session, or None when closed."""
    return day_status(day, exchange).window


def closed_reason(moment: datetime, exchange: str = Exchange.NSE) -> str | None:
    """Why no order may be sent at `moment`, in words; None when trading is open."""
    if moment.tzinfo is None:
        raise ValueError("moment must be an aware datetime")
    status = day_status(moment, exchange)
    if status.window is None:
        return status.closed_reason
    opens, closes = status.window
    if opens <= moment < closes:
        return None
    return f"outside the session window {status.window_label}"


def can_trade_at(moment: datetime, exchange: str = Exchange.NSE) -> bool:
    """Whether `moment` (aware) falls inside a session window of the exchange."""
    return closed_reason(moment, exchange) is None


def assert_can_trade(moment: datetime, exchange: str = Exchange.NSE) -> None:
    """The guard every layer calls before trading: raises TradingClosedError saying why."""
    reason = closed_reason(moment, exchange)
    if reason is not None:
        raise TradingClosedError(moment=moment, exchange=exchange, reason=reason)


def sessions_between(start: date, end: date, exchange: str = Exchange.NSE) -> list[date]:
    """Session days in [start, end], in order."""
    calendar = CalendarSlice(exchange, start, end)
    return [day for day in calendar.days() if calendar.is_session(day)]


def expiry_day_on_or_before(calendar: CalendarSlice, day: date) -> date:
    """Within a loaded slice: the expiry day a contract due on `day` actually expires on."""
    candidate = day
    while candidate >= calendar.start:
        if not calendar.year_loaded(candidate):
            # Which day a contract expires on is unknowable until that year's list is loaded.
            raise CalendarNotLoadedError(not_loaded_reason(calendar.exchange, candidate.year))
        if calendar.is_expiry_day(candidate):
            return candidate
        candidate -= timedelta(days=1)
    raise ReferenceDataMissingError(f"No {calendar.exchange} session found before {day}")


def normal_timing(day: date | datetime, exchange: str = Exchange.NSE) -> tuple[time, time]:
    """The normal session's (opens, closes) in force on that date, holiday or not.

    For rules about a time of day rather than a particular session: a strategy's exit time is
    checked against the close in force when it is saved, a contract's time to expiry runs to
    the close of its expiry day.
    """
    on = _as_day(day)
    timing = CalendarSlice(_check_exchange(exchange), on, on).timing(on)
    return timing.opens_at, timing.closes_at


@dataclass(frozen=True)
class CalendarCoverage:
    exchange: str
    last_loaded_year: int | None
    days_left: int | None  # days from `today` to the end of the last loaded year
    today_loaded: bool

    @property
    def warning(self) -> str | None:
        """Words for admins and health checks; None while more than 30 days remain."""
        if self.last_loaded_year is None:
            return f"No {self.exchange} holiday calendar is loaded: nothing can trade."
        if not self.today_loaded:
            return (
                f"{self.exchange} holiday calendar for {self.last_loaded_year + 1} not loaded: "
                "nothing can trade until an admin loads it."
            )
        if self.days_left is not None and self.days_left <= 30:
            return (
                f"{self.exchange} holiday calendar for {self.last_loaded_year + 1} not loaded; "
                f"{self.last_loaded_year} ends in {self.days_left} days. Load the exchange's list "
                "(admin or `manage.py import_holidays`) before then."
            )
        return None


def calendar_coverage(today: date, exchange: str = Exchange.NSE) -> CalendarCoverage:
    """How far the loaded holiday lists of `exchange` reach from `today`."""
    years = set(
        HolidayCalendarYear.objects.filter(exchange=_check_exchange(exchange)).values_list(
            "year", flat=True
        )
    )
    # The loaded run that contains today (or, failing that, the latest loaded year).
    last = today.year if today.year in years else (max(years) if years else None)
    while last is not None and last + 1 in years:
        last += 1
    days_left = (date(last, 12, 31) - today).days if last is not None else None
    return CalendarCoverage(exchange, last, days_left, today.year in years)


def coverage_warnings(today: date) -> list[str]:
    """One warning per exchange whose holiday calendar runs out within 30 days (or has)."""
    warnings = []
    for exchange in Exchange.values:
        warning = calendar_coverage(today, exchange).warning
        if warning:
            warnings.append(warning)
    return warnings
