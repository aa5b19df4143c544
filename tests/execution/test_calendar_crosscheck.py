"""Cross-check the seeded NSE calendar against pandas_market_calendars 5.5.0 (2024-2026).

Every difference is listed and explained; any other difference fails the test.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import pandas_market_calendars as pmc
import pytest

from execution.reference import calendar

pytestmark = pytest.mark.django_db

# Days we hold a session and pandas_market_calendars does not: it models no weekend sessions
# (its NSE docstring says so), so it lacks the Budget-day sessions on Saturday 1-Feb-2025 and
# Sunday 1-Feb-2026 (india-market.md §2.2).
ONLY_OURS = {date(2025, 2, 1), date(2026, 2, 1)}
# Days it holds a session and we do not: none.
ONLY_THEIRS: set[date] = set()
# pandas_market_calendars 5.5.0 predates NSE/FAOP/75472: it closes at 15:30 after 3-Aug-2026,
# when F&O moved to 15:40 (india-market.md §0.1). Every common day from then differs so.
CLOSE_MOVED = date(2026, 8, 3)


def test_seeded_nse_sessions_match_pandas_market_calendars():
    schedule = pmc.get_calendar("NSE").schedule("2024-01-01", "2026-12-31")
    theirs = {
        ts.date(): (
            row.market_open.tz_convert("Asia/Kolkata").strftime("%H:%M"),
            row.market_close.tz_convert("Asia/Kolkata").strftime("%H:%M"),
        )
        for ts, row in schedule.iterrows()
    }
    ours = {}
    for day in pd.date_range("2024-01-01", "2026-12-31").date:
        window = calendar.session_window(day)
        if window is not None:
            ours[day] = (f"{window[0]:%H:%M}", f"{window[1]:%H:%M}")

    assert set(ours) - set(theirs) == ONLY_OURS
    assert set(theirs) - set(ours) == ONLY_THEIRS
    # Same windows on common days, Muhurat included (18:00-19:00 in 2024, 13:45-14:45 in 2025).
    different = {d: (ours[d], theirs[d]) for d in set(ours) & set(theirs) if ours[d] != theirs[d]}
    expected = {
        d: (("09:15", "15:40"), ("09:15", "15:30"))
        for d in set(ours) & set(theirs)
        if d >= CLOSE_MOVED
    }
    assert different == expected
    assert ours[date(2025, 10, 21)] == ("13:45", "14:45")
