"""The engine's one way to start its Celery tasks: by task name, never by importing them.

`execution.tasks` imports the services it runs; were the services to import `tasks` back to
start the next step, every module of the engine would sit in one import cycle. They name the
task here instead. The names are the tasks' registered names (their dotted paths in
`execution/tasks.py`, which beat rows and queued messages carry): `tests/execution/test_shape.py`
checks that each one is a registered task. The queue comes from the Celery routes
(`trader/celery.py`), as it would for `.delay`.

A task must never see a row its sender has not committed yet: inside a transaction, use the
`…_on_commit` forms (outside one they start the task at once, as Django's `on_commit` does).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction

ACCOUNT_SEND = "execution.tasks.account_send_task"
ACCOUNTS_SEND = "execution.tasks.accounts_send_task"
BOUNDARY_DISPATCH = "execution.tasks.boundary_dispatch_task"
DAY_PLAN = "execution.tasks.day_plan_task"
RUN_FAILURES = "execution.tasks.run_failures_task"
RECONCILE_OPEN_ORDERS = "execution.tasks.reconcile_open_orders_task"
ORDERS_CANCEL = "execution.tasks.orders_cancel_task"
ACCOUNT_FUNDS_READ = "execution.tasks.account_funds_read_task"
RUNS_HELD_NOTIFY = "execution.tasks.runs_held_notify_task"
ACCOUNT_ORDERS_FOLLOW = "execution.tasks.account_orders_follow_task"
KILL_SWITCH_FLATTEN_OUTSIDE = "execution.tasks.kill_switch_flatten_outside_task"

TASK_NAMES = (
    ACCOUNT_SEND,
    ACCOUNTS_SEND,
    BOUNDARY_DISPATCH,
    DAY_PLAN,
    RUN_FAILURES,
    RECONCILE_OPEN_ORDERS,
    ORDERS_CANCEL,
    ACCOUNT_FUNDS_READ,
    RUNS_HELD_NOTIFY,
    ACCOUNT_ORDERS_FOLLOW,
    KILL_SWITCH_FLATTEN_OUTSIDE,
)


def task_enqueue(
    name: str,
    *,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    eta: datetime | None = None,
    countdown: float | None = None,
    queue: str | None = None,
) -> None:
    """Start the task registered as `name`. Under `CELERY_TASK_ALWAYS_EAGER` (tests, a
    broker-less shell) it runs here and now, as `.delay` would; otherwise the message goes to
    the broker (an unreachable broker raises, the caller's transaction is already committed)."""
    from celery import current_app

    if current_app.conf.task_always_eager:
        # Only a registered task runs in place; an unregistered name would go to the broker.
        current_app.loader.import_default_modules()
    options: dict[str, Any] = {}
    if eta is not None:
        options["eta"] = eta
    if countdown is not None:
        options["countdown"] = countdown
    if queue is not None:
        options["queue"] = queue
    current_app.signature(name, args=tuple(args), kwargs=kwargs or {}).apply_async(**options)


def account_sends_enqueue(payloads: list[dict[str, Any]], *, chunk_size: int = 25) -> None:
    """The account batches (`execution.intents.build.AccountBatch.to_json()`) to the sending
    workers, in messages of up to `chunk_size` accounts (`execution.tasks.accounts_send_task`),
    all published on one producer connection: a big boundary is a handful of messages, which
    the worker processes on the `execution` queue share between them (dispatch passes
    `conf.send_chunk_accounts()`)."""
    if not payloads:
        return
    from celery import current_app

    size = max(1, chunk_size)
    with current_app.producer_or_acquire() as producer:  # one connection for all the chunks
        for start in range(0, len(payloads), size):
            current_app.signature(
                ACCOUNTS_SEND, args=(payloads[start : start + size],)
            ).apply_async(producer=producer)
    moments = {p["fire_at"] for p in payloads if p.get("fire_at") is not None}
    for fire_at in moments:
        takeover_watch_broadcast(float(fire_at))


# A remote-control command of every worker (registered in execution.tasks), not a task: sent
# to all of them at once, so the worker that dies cannot take the request down with it.
TAKEOVER_WATCH = "execution_takeover_watch"


def takeover_watch_broadcast(fire_at_epoch: float) -> None:
    """Ask every running worker to watch boundary T for a dead sender's unsent orders after T
    (`execution.orders.sending.takeover_watch`). Fire and forget: a lost request leaves the
    orders to the restart's and the periodic reconciliation. Nothing under eager tests."""
    import logging

    from celery import current_app

    if current_app.conf.task_always_eager:
        return
    try:
        current_app.control.broadcast(TAKEOVER_WATCH, arguments={"fire_at": fire_at_epoch})
    except Exception:  # the sends are published: never fail the boundary for the watch
        logging.getLogger(__name__).exception("could not ask the workers to watch T")


def task_enqueue_on_commit(name: str, **options: Any) -> None:
    """`task_enqueue(name, **options)` once the current transaction commits."""
    transaction.on_commit(functools.partial(task_enqueue, name, **options))


def account_sends_enqueue_on_commit(payloads: list[dict[str, Any]]) -> None:
    """`account_sends_enqueue(payloads)` once the current transaction commits."""
    transaction.on_commit(lambda: account_sends_enqueue(payloads))
