"""Loading an exchange's holiday list for a year: the act that makes that year tradable.

The file is the exchange's published list as a small CSV (documented in the README):

    date,description[,opens,closes]
    2027-01-26,Republic Day
    2027-02-01,Union Budget (special session),09:15,15:40

A row without times is a holiday and must fall on a weekday (weekend holidays need no row); a
row with `opens` and `closes` is a special session with its own window (a Budget Sunday, a
Muhurat evening) and may fall on any day. Every line is checked before anything is written: a
bad file changes nothing and the error names its line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from django.db import transaction
from django.utils import timezone

from execution.audit import event_record
from execution.models import (
    Exchange,
    HolidayCalendarYear,
    SpecialSession,
    TradingHoliday,
)

REQUIRED_COLUMNS = ("date", "description")


class HolidayFileError(ValueError):
    """The file cannot be loaded; the message names the line (1 = the header)."""


class CalendarYearLoadedError(ValueError):
    """The year is already loaded; pass replace=True to load it again."""


@dataclass(frozen=True)
class HolidayRow:
    line: int
    day: date
    description: str
    opens: time | None = None
    closes: time | None = None

    @property
    def is_special(self) -> bool:
        return self.opens is not None


def _parse_time(value: str, *, line: int, column: str) -> time:
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise HolidayFileError(
            f"Line {line}: {column} {value!r} is not a time like 09:15."
        ) from None


def holiday_file_parse(*, text: str, year: int) -> list[HolidayRow]:
    """The rows of a holiday CSV for `year`, validated; raises HolidayFileError naming the line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise HolidayFileError(
            f"Line 1: the header must name the columns date,description (missing: "
            f"{', '.join(missing)})."
        )
    reader.fieldnames = header
    rows: list[HolidayRow] = []
    seen: dict[date, int] = {}
    for line, raw in enumerate(reader, start=2):
        values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(values.values()):
            continue  # a blank line
        try:
            day = date.fromisoformat(values.get("date", ""))
        except ValueError:
            raise HolidayFileError(
                f"Line {line}: date {values.get('date')!r} is not a date like {year}-01-26."
            ) from None
        if day.year != year:
            raise HolidayFileError(f"Line {line}: {day} is not in {year}.")
        description = values.get("description", "")
        if not description:
            raise HolidayFileError(f"Line {line}: the description is empty.")
        if day in seen:
            raise HolidayFileError(f"Line {line}: {day} is already on line {seen[day]}.")
        opens_text, closes_text = values.get("opens", ""), values.get("closes", "")
        opens = closes = None
        if opens_text or closes_text:
            if not (opens_text and closes_text):
                raise HolidayFileError(
                    f"Line {line}: a special session needs both opens and closes."
                )
            opens = _parse_time(opens_text, line=line, column="opens")
            closes = _parse_time(closes_text, line=line, column="closes")
            if closes <= opens:
                raise HolidayFileError(f"Line {line}: the session must close after it opens.")
        elif day.weekday() >= 5:
            raise HolidayFileError(
                f"Line {line}: {day} is a {day:%A}; weekends are closed without a row. Give "
                "opens and closes if it is a special session."
            )
        seen[day] = line
        rows.append(HolidayRow(line, day, description, opens, closes))
    if not any(not row.is_special for row in rows):
        raise HolidayFileError(f"The file lists no holiday for {year}: is it the right file?")
    return rows


@transaction.atomic
def holiday_calendar_load(
    *,
    exchange: str,
    year: int,
    rows: list[HolidayRow],
    source: str,
    actor: Any = None,
    replace: bool = False,
) -> HolidayCalendarYear:
    """Record `rows` as the exchange's list for `year` and mark the year loaded (tradable).

    The year's holidays become exactly the file's (a pre-entered one the file lacks is
    removed); special sessions in the file are added or updated, others are kept (runs may
    reference them). Refused with CalendarYearLoadedError when the year is already loaded and
    `replace` is False; nothing is written then, nor on any other error.
    """
    if exchange not in Exchange.values:
        raise ValueError(f"Unknown exchange {exchange!r}; expected one of {Exchange.values}")
    if not source.strip():
        raise ValueError("Name the exchange circular the list comes from.")
    existing = HolidayCalendarYear.objects.select_for_update().filter(exchange=exchange, year=year)
    if existing.exists() and not replace:
        raise CalendarYearLoadedError(
            f"The {exchange} holiday calendar for {year} is already loaded; load it again only "
            "to replace it (--replace)."
        )
    holidays = [row for row in rows if not row.is_special]
    specials = [row for row in rows if row.is_special]
    removed = list(
        TradingHoliday.objects.filter(exchange=exchange, date__year=year)
        .exclude(date__in=[row.day for row in holidays])
        .values_list("date", flat=True)
    )
    TradingHoliday.objects.filter(exchange=exchange, date__in=removed).delete()
    for row in holidays:
        TradingHoliday.objects.update_or_create(
            exchange=exchange,
            date=row.day,
            defaults={"reason": row.description, "source": source},
        )
    for row in specials:
        assert row.opens is not None and row.closes is not None  # what makes it special
        SpecialSession.objects.update_or_create(
            exchange=exchange,
            date=row.day,
            defaults={
                "opens_at": row.opens,
                "closes_at": row.closes,
                "reason": row.description,
                "source": source,
            },
        )
    loaded, _ = HolidayCalendarYear.objects.update_or_create(
        exchange=exchange,
        year=year,
        defaults={"source": source, "loaded_at": timezone.now(), "loaded_by": actor},
    )
    event_record(
        kind="calendar.loaded",
        user_id=getattr(actor, "pk", None),
        message=(
            f"{exchange} holiday calendar for {year} loaded: {len(holidays)} holidays, "
            f"{len(specials)} special sessions, from {source}"
        ),
        data={
            "exchange": exchange,
            "year": year,
            "holidays": [row.day.isoformat() for row in holidays],
            "special_sessions": [row.day.isoformat() for row in specials],
            "removed": [day.isoformat() for day in removed],
            "source": source,
        },
    )
    return loaded
