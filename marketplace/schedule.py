"""The marketplace's periodic tasks (times in IST, the Celery app's timezone), declared here
and put into the app's `beat_schedule` by `trader/celery.py`. Names are those of migration
0002's rows, which migration 0004 removed: beat writes them from here at each start."""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "marketplace: renew fees and lapse unpaid subscriptions": {
        "task": "marketplace.tasks.subscriptions_renew_or_lapse_task",
        "schedule": crontab(minute="30", hour="0"),
    },
    "marketplace: close last month's revenue ledger": {
        "task": "marketplace.tasks.ledger_close_month_task",
        "schedule": crontab(minute="0", hour="1", day_of_month="1"),
    },
    "marketplace: refresh verified listing statistics": {
        "task": "marketplace.tasks.listing_stats_refresh_task",
        "schedule": crontab(minute="45", hour="16"),
    },
}
