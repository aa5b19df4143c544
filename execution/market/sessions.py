"""The normal session's hours by date, in pure Python (no database).

The simulated market and the broker emulators run without Django's database, yet their
session must close when the exchange's does on that date (15:30 until 31-Jul-2026, 15:40 from
3-Aug-2026). They read `session_hours.json`, a copy of the seeded `SessionTiming` rows that a
test keeps in step; the platform itself always reads the rows (execution.reference.calendar).
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time
from functools import cache
from pathlib import Path

REFERENCE_FILE = Path(__file__).with_name("session_hours.json")


@dataclass(frozen=True)
class SessionHours:
    """(effective_from, opens, closes) rows; `on(day)` is the row in force on that day."""

    rows: tuple[tuple[date, time, time], ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("SessionHours needs at least one row")
        if list(self.rows) != sorted(self.rows):
            raise ValueError("SessionHours rows must be in effective_from order")
        for _, opens, closes in self.rows:
            if closes <= opens:
                raise ValueError(f"A session must close after it opens ({opens}-{closes})")

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[date, time, time]]) -> SessionHours:
        return cls(tuple(sorted(rows)))

    def on(self, day: date) -> tuple[time, time]:
        index = bisect_right([row[0] for row in self.rows], day) - 1
        if index < 0:
            raise LookupError(f"No session hours in force on {day}")
        _, opens, closes = self.rows[index]
        return opens, closes

    def minutes(self, day: date) -> int:
        opens, closes = self.on(day)
        return (closes.hour * 60 + closes.minute) - (opens.hour * 60 + opens.minute)


@cache
def reference_hours() -> SessionHours:
    """The hours in `session_hours.json`."""
    data = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    return SessionHours.from_rows(
        (
            date.fromisoformat(row["effective_from"]),
            time.fromisoformat(row["opens"]),
            time.fromisoformat(row["closes"]),
        )
        for row in data["rows"]
    )
