"""Celery application: JSON only, two queues, database beat schedule in IST."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trader.settings")

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
    task_queues=(Queue("default"), Queue("execution")),
    task_routes={"execution.tasks.*": {"queue": "execution"}},
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
app.autodiscover_tasks()
