"""Celery application: JSON only, three queues, the beat schedule declared in code (in IST).

Queues (every worker command in README "Run it" and `manage.py run_platform` names them):
- `execution`: the hot path only, the sends of a boundary and what must reach a broker at
  once (dispatch, the account sends, failover of a failed send, kill-switch cancels). A worker
  serving it never waits behind anything slower.
- `engine`: the engine's periodic work: the mark-to-market watch and the reconciliation of
  open orders and trade books.
- `default`: everything else: planning, the ready check, instrument masters, funds reads,
  mail and the marketplace.
"""

import os

from celery import Celery
from kombu import Queue

from execution.schedule import BEAT_SCHEDULE as EXECUTION_SCHEDULE
from marketplace.schedule import BEAT_SCHEDULE as MARKETPLACE_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trader.settings")

HOT_PATH_TASKS = (
    "execution.tasks.boundary_dispatch_task",
    "execution.tasks.account_send_task",
    "execution.tasks.accounts_send_task",
    "execution.tasks.run_failures_task",
    "execution.tasks.orders_cancel_task",
)
ENGINE_TASKS = (
    "execution.tasks.mtm_watch_task",
    "execution.tasks.reconcile_open_orders_task",
    "execution.tasks.trade_books_reconcile_task",
)
TASK_ROUTES = {
    **{name: {"queue": "execution"} for name in HOT_PATH_TASKS},
    **{name: {"queue": "engine"} for name in ENGINE_TASKS},
}

app = Celery("trader")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Schedules are written in market time; Django stores instants in UTC.
    timezone="Asia/Kolkata",
    enable_utc=True,
    task_default_queue="default",
    task_queues=(Queue("default"), Queue("engine"), Queue("execution")),
    task_routes=TASK_ROUTES,
    beat_schedule={**EXECUTION_SCHEDULE, **MARKETPLACE_SCHEDULE},
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
