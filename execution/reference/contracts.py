"""Contracts of the index options: lot sizes, freeze limits, strike steps, expiries, Kite symbols.

All facts come from dated rows (execution.models); nothing is cached, so an admin edit (a new
holiday, a lot revision) is what the next call sees. `underlying` arguments accept an
`Underlying` or its symbol ("NIFTY").

Expiries: each `ExpiryRule` names the weekday of an underlying's weekly or monthly contracts for
a range of nominal expiry dates; a nominal date that is not a session (or is a special session
where nothing may expire, such as Muhurat) moves to the previous session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from execution.markettime import IST
from execution.models import (
    ExpiryKind,
    ExpiryRule,
    FreezeQuantity,
    LotSize,
    StrikeStep,
    Underlying,
)
from execution.reference.calendar import (
    _MAX_EXPIRY_SHIFT_DAYS,
    CalendarNotLoadedError,
    CalendarSlice,
    ReferenceDataMissingError,
    expiry_day_on_or_before,
)
from execution.reference.symbols import kite_tradingsymbol, last_weekday_of_month

EXPIRY_CHOICES = ("current_week", "next_week", "current_month", "next_month")
# Far enough ahead to hold three monthlies however the months fall.
_LISTING_HORIZON_DAYS = 130


class NoSuchExpiryError(ValueError):
    """The asked-for expiry does not exist (e.g. a weekly of an index with monthlies only)."""


def resolve_underlying(underlying: Underlying | str) -> Underlying:
    if isinstance(underlying, Underlying):
        return underlying
    try:
        return Underlying.objects.get(symbol=underlying.upper())
    except Underlying.DoesNotExist:
        raise ReferenceDataMissingError(f"Unknown underlying {underlying!r}") from None


def _today() -> date:
    return timezone.now().astimezone(IST).date()


def lot_size(underlying: Underlying | str, expiry: date, on: date | None = None) -> int:
    """Units per lot of the contract expiring on `expiry`, as it traded on `on` (default today).

    A contract keeps the lot it was listed with; long-dated contracts that the exchange
    re-lotted change on the day after the re-lot (see LotSize).
    """
    und = resolve_underlying(underlying)
    on = on or _today()
    rows = LotSize.objects.filter(underlying=und).filter(
        Q(expiry_from__isnull=True) | Q(expiry_from__lte=expiry),
        Q(expiry_to__isnull=True) | Q(expiry_to__gte=expiry),
        Q(valid_until__isnull=True) | Q(valid_until__gte=on),
    )

    def precedence(row: LotSize) -> tuple[bool, date, int]:
        span_from = row.expiry_from or date.min
        span_to = row.expiry_to or date.max
        return (row.valid_until is None, row.valid_until or date.max, (span_to - span_from).days)

    candidates = sorted(rows, key=precedence)
    if not candidates:
        raise ReferenceDataMissingError(f"No lot size for {und} expiring {expiry} (on {on})")
    return candidates[0].lot_size


def freeze_quantity(underlying: Underlying | str, on: date | None = None) -> int:
    """Maximum units per order on `on` (default today); orders above it must be sliced."""
    und = resolve_underlying(underlying)
    on = on or _today()
    row = (
        FreezeQuantity.objects.filter(underlying=und, effective_from__lte=on)
        .order_by("-effective_from")
        .first()
    )
    if row is None:
        raise ReferenceDataMissingError(f"No freeze quantity for {und} on {on}")
    return row.quantity


def strike_step(underlying: Underlying | str, on: date | None = None) -> Decimal:
    """Interval between near-the-money strikes on `on` (default today)."""
    und = resolve_underlying(underlying)
    on = on or _today()
    row = (
        StrikeStep.objects.filter(underlying=und, effective_from__lte=on)
        .order_by("-effective_from")
        .first()
    )
    if row is None:
        raise ReferenceDataMissingError(f"No strike step for {und} on {on}")
    return row.step


@dataclass(frozen=True)
class ExpiryDate:
    day: date  # the day the contract expires (after any holiday shift)
    nominal: date  # the rule's weekday before the shift
    weekly: bool
    monthly: bool
    weekly_listed: int  # how many weeklies are listed at a time under this date's rule
    monthly_listed: int
    # False when the nominal date falls in a year whose holiday list is not loaded: the day
    # may still move, so `day` is only the nominal date and nothing may trade it.
    confirmed: bool = True
    unconfirmed_reason: str = ""


def _nominal_dates(rule: ExpiryRule, start: date, end: date) -> list[date]:
    lo = max(start, rule.effective_from)
    hi = min(end, rule.effective_to) if rule.effective_to else end
    if lo > hi:
        return []
    if rule.kind == ExpiryKind.WEEKLY:
        first = lo + timedelta(days=(rule.weekday - lo.weekday()) % 7)
        return [first + timedelta(weeks=n) for n in range(((hi - first).days // 7) + 1)]
    dates = []
    year, month = lo.year, lo.month
    while date(year, month, 1) <= hi:
        candidate = last_weekday_of_month(year, month, rule.weekday)
        if lo <= candidate <= hi:
            dates.append(candidate)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dates


def expiry_schedule(underlying: Underlying | str, start: date, end: date) -> list[ExpiryDate]:
    """Every expiry of the underlying falling in [start, end], after holiday shifts."""
    und = resolve_underlying(underlying)
    # A nominal date after `end` can move back into the range; one before `start` cannot.
    nominal_end = end + timedelta(days=_MAX_EXPIRY_SHIFT_DAYS)
    rules = list(
        ExpiryRule.objects.filter(underlying=und, effective_from__lte=nominal_end).filter(
            Q(effective_to__isnull=True) | Q(effective_to__gte=start)
        )
    )
    calendar = CalendarSlice(
        und.exchange, start - timedelta(days=_MAX_EXPIRY_SHIFT_DAYS), nominal_end
    )
    found: dict[date, ExpiryDate] = {}
    for rule in rules:
        weekly = rule.kind == ExpiryKind.WEEKLY
        for nominal in _nominal_dates(rule, start, nominal_end):
            reason = ""
            try:
                day = expiry_day_on_or_before(calendar, nominal)
            except CalendarNotLoadedError as exc:
                day, reason = nominal, str(exc)
            if not start <= day <= end:
                continue
            seen = found.get(day) or ExpiryDate(day, nominal, False, False, 0, 0)
            found[day] = ExpiryDate(
                day=day,
                nominal=seen.nominal,
                weekly=seen.weekly or weekly,
                monthly=seen.monthly or not weekly,
                weekly_listed=rule.listed_count if weekly else seen.weekly_listed,
                monthly_listed=seen.monthly_listed if weekly else rule.listed_count,
                confirmed=seen.confirmed and not reason,
                unconfirmed_reason=seen.unconfirmed_reason or reason,
            )
    return [found[day] for day in sorted(found)]


def _listed(underlying: Underlying | str, on: date) -> tuple[list[ExpiryDate], list[ExpiryDate]]:
    schedule = expiry_schedule(underlying, on, on + timedelta(days=_LISTING_HORIZON_DAYS))
    weekly = [e for e in schedule if e.weekly]
    monthly = [e for e in schedule if e.monthly]
    weekly_count = max((e.weekly_listed for e in weekly), default=0)
    monthly_count = max((e.monthly_listed for e in monthly), default=0)
    return weekly[:weekly_count], monthly[:monthly_count]


def expiries(underlying: Underlying | str, on: date) -> list[date]:
    """Expiry dates of the contracts listed on `on` (weeklies and monthlies), soonest first.

    An expiry on `on` itself is included: it trades until that day's close. Expiries in a year
    whose holiday list is not loaded are left out (their day is not known yet).
    """
    weekly, monthly = _listed(underlying, on)
    return sorted({e.day for e in weekly + monthly if e.confirmed})


def expiry_kinds(underlying: Underlying | str, on: date) -> set[str]:
    """Which of EXPIRY_CHOICES the underlying has on `on` (BANKNIFTY: the monthly ones only).

    Unconfirmed expiries count: the contract exists, only its day may still move.
    """
    weekly, monthly = _listed(underlying, on)
    kinds: set[str] = set()
    for series, names in (
        (weekly, ("current_week", "next_week")),
        (monthly, ("current_month", "next_month")),
    ):
        kinds.update(names[: len(series)])
    return kinds


def pick_expiry(underlying: Underlying | str, on: date, choice: str) -> date:
    """The expiry a strategy means by `choice` on `on`.

    current_week / next_week: the nearest / second-nearest weekly (the monthly counts when it
    is that week's expiry); current_month / next_month: the nearest / second-nearest monthly.
    Raises NoSuchExpiryError when the underlying has no such contract (BANKNIFTY weeklies).
    """
    if choice not in EXPIRY_CHOICES:
        raise ValueError(f"choice must be one of {EXPIRY_CHOICES}, not {choice!r}")
    weekly, monthly = _listed(underlying, on)
    series, index = {
        "current_week": (weekly, 0),
        "next_week": (weekly, 1),
        "current_month": (monthly, 0),
        "next_month": (monthly, 1),
    }[choice]
    if len(series) <= index:
        und = resolve_underlying(underlying)
        kind = "weekly" if "week" in choice else "monthly"
        raise NoSuchExpiryError(f"{und} has no {choice.replace('_', ' ')} ({kind}) expiry on {on}")
    picked = series[index]
    if not picked.confirmed:
        raise CalendarNotLoadedError(picked.unconfirmed_reason)
    return picked.day


def monthly_expiry(underlying: Underlying | str, year: int, month: int) -> date | None:
    """The monthly expiry of that month after any holiday shift (None if it has none)."""
    start = date(year, month, 1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    monthly = [e for e in expiry_schedule(underlying, start, end) if e.monthly]
    if monthly and not monthly[-1].confirmed:
        raise CalendarNotLoadedError(monthly[-1].unconfirmed_reason)
    return monthly[-1].day if monthly else None


def kite_symbol(
    underlying: Underlying | str, expiry: date, strike: Decimal | int | str, option_type: str
) -> str:
    """Kite's trading symbol: weekly `NIFTY25D1625750CE`, monthly `NIFTY25DEC25000CE`.

    The weekly that is also the month's monthly expiry takes the monthly form. Raises
    NoSuchExpiryError when `expiry` is not an expiry of the underlying.
    """
    und = resolve_underlying(underlying)
    entries = [e for e in expiry_schedule(und, expiry, expiry) if e.day == expiry]
    if not entries:
        raise NoSuchExpiryError(f"{expiry} is not an expiry of {und}")
    if not entries[0].confirmed:
        raise CalendarNotLoadedError(entries[0].unconfirmed_reason)
    return kite_tradingsymbol(und.symbol, expiry, strike, option_type, monthly=entries[0].monthly)
