"""The engine's periodic tasks, declared here and nowhere else (beat reads them at start).

`trader/celery.py` puts these entries in the app's `beat_schedule`; django-celery-beat's
database scheduler writes them into its `PeriodicTask` rows each time beat starts (by name, so
a row of the same name is updated, never duplicated). Crontabs are in market time: the Celery
app's timezone is Asia/Kolkata. Weekdays only: a weekend special session is planned by the
re-plan hooks or by running `day_plan_task` by hand. Queues come from the routes
(`trader/celery.py`), not from these entries.

Names are the ones the data migrations 0007, 0016 and 0017 used, so an existing database's rows
are taken over; migration 0021 removed those rows, and beat writes them again from here.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

WEEKDAYS = "1-5"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "execution: instrument masters (08:00)": {
        "task": "execution.tasks.instrument_masters_refresh_task",
        "schedule": crontab(minute="0", hour="8", day_of_week=WEEKDAYS),
    },
    "execution: plan the day (08:30)": {
        "task": "execution.tasks.day_plan_task",
        "schedule": crontab(minute="30", hour="8", day_of_week=WEEKDAYS),
    },
    "execution: ready check (08:45)": {
        "task": "execution.tasks.accounts_ready_check_task",
        "schedule": crontab(minute="45", hour="8", day_of_week=WEEKDAYS),
    },
    "execution: plan the day again (09:00)": {
        "task": "execution.tasks.day_plan_task",
        "schedule": crontab(minute="0", hour="9", day_of_week=WEEKDAYS),
    },
    "execution: mark to market (1 s)": {
        "task": "execution.tasks.mtm_watch_task",
        "schedule": 1.0,
    },
    "execution: reconcile open orders (15 s)": {
        "task": "execution.tasks.reconcile_open_orders_task",
        "schedule": 15.0,
    },
    "execution: trade books (15 s)": {
        "task": "execution.tasks.trade_books_reconcile_task",
        "schedule": 15.0,
    },
}
