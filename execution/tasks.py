"""Celery tasks of the engine (queue `execution`): thin, JSON arguments, safe to run twice."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from celery.worker.control import control_command

from execution.orders import sending

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def account_send_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Send one account's orders of a boundary at T (execution.orders.sending): orders another
    worker claimed are left to it; should this worker die, the reconciler finds the claimed
    orders by tag. Returns what was sent or scheduled."""
    return sending.account_batch_send(payload)


@shared_task(acks_late=True, ignore_result=True)
def accounts_send_task(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Several accounts' batches of one boundary in one message (dispatch publishes a big
    boundary in a few of these): each is sent exactly as `account_send_task` sends one."""
    return [sending.account_batch_send(payload) for payload in payloads]


@shared_task
def boundary_dispatch_task(fire_at: str) -> dict[str, Any]:
    """Dispatch the planned runs of instant `fire_at` (ISO). A second call finds none."""
    from django.db import connection

    from execution.dispatch import boundary_dispatch

    queries: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        result = boundary_dispatch(fire_at=datetime.fromisoformat(fire_at))
    return {
        "runs": result.runs,
        "intents": result.intents,
        "skipped": len(result.skipped),
        "queries": len(queries),
        "timings": result.timings,
    }


@shared_task
def day_plan_task(day: str | None = None, strategy_id: int | None = None) -> dict[str, Any]:
    """Plan today's (or `day`'s) runs and schedule their dispatch."""
    from execution.services import plan_and_schedule

    return plan_and_schedule(day=day, strategy_id=strategy_id)


@shared_task
def run_failures_task(run_id: int) -> int:
    """Fail over a run's failed orders, or apply its leg-failure policy; send what results."""
    from execution.protection.failover import run_failures_handle

    payloads = run_failures_handle(run_id=run_id)
    for payload in payloads:
        account_send_task.delay(payload)
    return len(payloads)


@shared_task
def reconcile_open_orders_task(repeat: int = 0) -> dict[str, int]:
    """Poll open orders and finish the sends of dead workers; repeats a few times after a
    worker start so claims of a killed worker (liveness key expired) are picked up."""
    from execution.orders.lifecycle import open_orders_reconcile
    from execution.orders.runs import runs_missed_mark

    counts: dict[str, int] = {"skipped": 1}
    try:
        counts = open_orders_reconcile()
        counts["missed"] = runs_missed_mark()
    finally:
        # A pass that failed (a deadlock, a broker down) must not end the start-up repeats:
        # orders of a killed worker would wait for the next beat.
        if (counts.get("skipped") or counts.get("waiting")) and repeat < 10:
            reconcile_open_orders_task.apply_async(kwargs={"repeat": repeat + 1}, countdown=2)
    return counts


@control_command(args=[("fire_at", float)], signature="<fire_at>")  # type: ignore[misc]
def execution_takeover_watch(state: Any, fire_at: float) -> dict[str, bool]:
    """Remote control (execution.enqueue.TAKEOVER_WATCH): watch boundary `fire_at` (epoch
    seconds) from this process for the orders of a sender that dies after T."""
    return {"started": sending.takeover_watch_start(float(fire_at))}


@worker_ready.connect
def _reconcile_on_start(sender: Any = None, **kwargs: Any) -> None:
    # Startup reconciliation: a worker that comes back finds what the previous one left.
    reconcile_open_orders_task.apply_async(countdown=1)


@shared_task
def orders_cancel_task(intent_ids: list[int]) -> int:
    """Cancel open orders at their brokers (kill switch)."""
    from execution.protection.killswitch import open_orders_cancel

    return open_orders_cancel(intent_ids=intent_ids)


@shared_task
def mtm_watch_task() -> int:
    """Mark open runs to market and fire the exits due (beat: every second)."""
    from execution.protection.watch import runs_watch

    return runs_watch()


@shared_task
def trade_books_reconcile_task() -> dict[str, int]:
    """Apply the trade books of accounts with open orders (beat: every 15 s)."""
    from execution.orders.fills import trade_books_reconcile

    return trade_books_reconcile()


@shared_task
def instrument_masters_refresh_task() -> int:
    """Download, validate and map the five brokers' instrument masters (beat: 08:00 IST on
    weekdays); returns how many loaded. A failed one keeps yesterday's and alerts admins."""
    from execution.planning.plan import today_ist
    from execution.reference.masters import masters_refresh

    return sum(record.ok for record in masters_refresh(day=today_ist()))


@shared_task
def accounts_ready_check_task() -> int:
    """Before 09:15: check and notify the accounts that trade today; returns how many."""
    from execution.services import accounts_ready_check

    return len(accounts_ready_check())


@shared_task(ignore_result=True)
def account_funds_read_task(account_id: int) -> None:
    """Refresh one account's funds for the dashboard (default queue; reads are retried by the
    next page refresh, never here)."""
    from brokers.models import BrokerAccount
    from execution.services import account_funds_read

    account = BrokerAccount.objects.filter(pk=account_id, status="connected").first()
    if account is not None:
        account_funds_read(account=account)


@shared_task(ignore_result=True)
def account_orders_follow_task(account_id: int, until: float) -> None:
    """Follow one account's open live orders (default queue: reads, never in the way of the
    execution queue's sends): read its trade and order books once and apply them, then run
    again after the broker's read interval until every order is final or `until` (epoch
    seconds) passed. A failed read is retried by the next round; the 15-second reconcilers
    remain underneath."""
    from execution.orders.fills import orders_follow_step

    delay, until = orders_follow_step(account_id=account_id, until=until)
    if delay is not None:
        account_orders_follow_task.apply_async(
            args=[account_id, until], countdown=delay, queue="default"
        )


@shared_task(ignore_result=True)
def runs_held_notify_task(run_ids: list[int]) -> int:
    """Email the owners of live runs held for no fresh price (execution.services)."""
    from execution.services import runs_held_notify

    return runs_held_notify(run_ids=run_ids)


@shared_task(ignore_result=True)
def kill_switch_flatten_outside_task(
    user_id: int, to_cancel: list[int], payloads: list[dict[str, Any]]
) -> int:
    """The kill switch's "flatten everything": read each broker's positions, start the
    engine's own cancels and closing orders, then close what was opened outside the
    platform (execution.broker_positions.outside_positions_flatten)."""
    from execution.broker_positions import outside_positions_flatten
    from execution.protection.killswitch import flatten_start

    return outside_positions_flatten(
        user_id=user_id, before_send=lambda: flatten_start(to_cancel, payloads)
    )
