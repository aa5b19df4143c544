"""`make run` uses SQLite while the suite runs on PostgreSQL: this smoke test runs what the
local platform does at start (migrate, demo data, plan a session day) on a fresh SQLite file,
so SQLite-only failures (a UNION with ORDER BY, a vendor-specific constraint) are caught here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Plans the first session after today (the demo's versions take effect today), whatever today
# is: when today's year has no loaded holiday list (January 2027 under a faked clock), the
# TEST file of tests/execution/data is loaded first, as an admin would load the real one.
PLAN_A_SESSION_DAY = """
import django, datetime
django.setup()
from django.core.management import call_command
from django.utils import timezone
from execution.planning import plan as planning
from execution.reference.calendar import IST, day_status, is_session
from execution.models import HolidayCalendarYear, ScheduledRun
today = timezone.now().astimezone(IST).date()
print("TODAY", today, day_status(today).closed_reason)
for year in (today.year, today.year + 1):
    if year == 2027 and not HolidayCalendarYear.objects.filter(exchange="NSE", year=year).exists():
        call_command("import_holidays", "tests/execution/data/nse_2027_for_tests.csv",
                     exchange="NSE", year=year, source="TEST")
day = today + datetime.timedelta(days=1)
while not (is_session(day) and day.weekday() < 5):
    day += datetime.timedelta(days=1)
result = planning.day_plan(day=day)
runs = ScheduledRun.objects.filter(session_date=day)
print("RUNS", runs.count(), sorted({r.boundary for r in runs}), day, result.not_planned)
from django.db import IntegrityError, transaction
from execution.models import SpecialSession
sunday = SpecialSession.objects.get(exchange="NSE", date=datetime.date(2026, 2, 1))
saturday = day - datetime.timedelta(days=(day.weekday() + 2) % 7)
try:
    with transaction.atomic():
        runs.filter(pk=runs.first().pk).update(session_date=saturday, special_session=sunday)
    print("TRIGGER missing")
except IntegrityError as exc:
    print("TRIGGER", exc)
"""


@pytest.mark.slow
def test_migrate_seed_and_plan_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "trader.settings",
        "TESTING": "1",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        return result

    run("manage.py", "migrate", "--noinput")
    seeded = run("manage.py", "seed_demo")
    assert "trader@demo.local  password:" in seeded.stdout
    planned = run("-c", PLAN_A_SESSION_DAY)
    # The demo trader's strategy and the demo creator's listing each get an entry and an exit.
    line = next(x for x in planned.stdout.splitlines() if x.startswith("RUNS"))
    count = int(line.split()[1])
    assert count >= 2 and "entry" in line and "exit" in line, planned.stdout
    # The special-session trigger exists on SQLite too: a Saturday run may not borrow the
    # Budget Sunday's session.
    trigger = next(x for x in planned.stdout.splitlines() if x.startswith("TRIGGER"))
    assert "own date" in trigger, planned.stdout
