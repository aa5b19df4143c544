"""The engine's wiring that no import can check: tasks started by name, queues, the beat schedule.

Services start tasks through `execution.enqueue` by registered name (nothing imports
`execution.tasks`), so a renamed or moved task would fail only at run time: these tests pin
the names, the queue each task goes to, and the schedule beat writes from code.
"""

from __future__ import annotations

import pytest
from celery.schedules import crontab
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from execution import enqueue
from execution.schedule import BEAT_SCHEDULE as EXECUTION_SCHEDULE
from marketplace.schedule import BEAT_SCHEDULE as MARKETPLACE_SCHEDULE
from trader.celery import app


def _queue(name: str) -> str:
    route = app.amqp.router.route({}, name, args=(), kwargs={})
    return route["queue"].name


def test_every_name_the_engine_enqueues_is_a_registered_task():
    app.loader.import_default_modules()
    for name in enqueue.TASK_NAMES:
        assert name in app.tasks, name
        assert app.tasks[name].name == name


def test_every_task_of_the_schedule_is_registered():
    app.loader.import_default_modules()
    for entry in {**EXECUTION_SCHEDULE, **MARKETPLACE_SCHEDULE}.values():
        assert entry["task"] in app.tasks, entry["task"]


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        (enqueue.ACCOUNT_SEND, "execution"),
        (enqueue.BOUNDARY_DISPATCH, "execution"),
        (enqueue.RUN_FAILURES, "execution"),
        (enqueue.ORDERS_CANCEL, "execution"),
        ("execution.tasks.mtm_watch_task", "engine"),
        (enqueue.RECONCILE_OPEN_ORDERS, "engine"),
        ("execution.tasks.trade_books_reconcile_task", "engine"),
        (enqueue.DAY_PLAN, "default"),
        ("execution.tasks.accounts_ready_check_task", "default"),
        ("execution.tasks.instrument_masters_refresh_task", "default"),
        (enqueue.ACCOUNT_FUNDS_READ, "default"),
        ("marketplace.tasks.listing_stats_refresh_task", "default"),
    ],
)
def test_the_hot_path_has_a_queue_of_its_own(task, queue):
    assert _queue(task) == queue


def test_the_schedule_is_in_market_time_on_weekdays():
    plan = EXECUTION_SCHEDULE["execution: plan the day (08:30)"]["schedule"]
    assert isinstance(plan, crontab)
    assert plan.hour == {8} and plan.minute == {30} and plan.day_of_week == {1, 2, 3, 4, 5}
    assert str(app.conf.timezone) == "Asia/Kolkata"
    assert EXECUTION_SCHEDULE["execution: mark to market (1 s)"]["schedule"] == 1.0


@pytest.mark.django_db
def test_beat_writes_the_schedule_from_code_at_start(monkeypatch):
    """The data migrations' rows are gone (migrations 0021 and 0004); beat's database scheduler
    writes one row per declared entry, with no queue of its own (the routes decide)."""
    # The scheduler closes "old" connections on each look at its schedule, which inside a test's
    # transaction would close the test's own.
    monkeypatch.setattr("django_celery_beat.schedulers.close_old_connections", lambda: None)
    names = set(EXECUTION_SCHEDULE) | set(MARKETPLACE_SCHEDULE)
    assert not PeriodicTask.objects.filter(name__in=names).exists()
    DatabaseScheduler(app=app)
    rows = {row.name: row for row in PeriodicTask.objects.filter(name__in=names)}
    assert set(rows) == names
    plan = rows["execution: plan the day (08:30)"]
    assert plan.task == "execution.tasks.day_plan_task"
    assert (plan.crontab.hour, plan.crontab.minute, plan.crontab.day_of_week) == ("8", "30", "1-5")
    assert str(plan.crontab.timezone) == "Asia/Kolkata"
    assert plan.queue is None
    watch = rows["execution: mark to market (1 s)"]
    assert (watch.interval.every, watch.interval.period) == (1, "seconds")
    DatabaseScheduler(app=app)  # a second start takes the rows over, never duplicates them
    assert PeriodicTask.objects.filter(name__in=names).count() == len(names)


@pytest.mark.django_db
def test_a_task_is_enqueued_by_name_only_after_the_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    started = []
    monkeypatch.setattr(
        "execution.enqueue.task_enqueue", lambda name, **options: started.append((name, options))
    )
    with django_capture_on_commit_callbacks(execute=True):
        enqueue.task_enqueue_on_commit(enqueue.RUN_FAILURES, args=[7])
        assert started == []  # nothing leaves before the rows it names are committed
    assert started == [(enqueue.RUN_FAILURES, {"args": [7]})]


@pytest.mark.django_db
def test_enqueue_by_name_runs_the_registered_task_when_eager(monkeypatch):
    """Under CELERY_TASK_ALWAYS_EAGER a task started by name runs in place, as `.delay` would:
    the name reaches the task that is registered under it."""
    calls = []
    monkeypatch.setattr(
        "execution.protection.killswitch.open_orders_cancel",
        lambda *, intent_ids: calls.append(intent_ids) or 0,
    )
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    enqueue.task_enqueue(enqueue.ORDERS_CANCEL, args=[[11, 12]])
    assert calls == [[11, 12]]
