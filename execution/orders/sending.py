"""One account's batch of a boundary, from its task's payload to the outcomes written.

The Celery task (`execution.tasks.account_send_task`) hands its payload here: claim the orders
in Redis, leave to the reconciler what a late task must not send, write the rest on the hot
path (`execution.send`), and have one writer thread per process record the outcomes
(`execution.orders.lifecycle.outcomes_apply`).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from execution import conf
from execution.intents import slots
from execution.models.engine import IntentState, OrderIntent
from execution.orders.lifecycle import outcomes_apply
from execution.send import sender, template

logger = logging.getLogger(__name__)

_writer: sender.OutcomeWriter | None = None


def writer() -> sender.OutcomeWriter:
    global _writer
    if _writer is None:
        _writer = sender.OutcomeWriter(outcomes_apply)
    return _writer


# A task that starts this long after its T is late: redelivered after its worker died (the
# broker hands unacknowledged tasks out again, possibly after the claims have expired), or a
# failover or kill-switch batch sent at once.
LATE_AFTER_SECONDS = 1.0


def _late(payload: dict[str, Any]) -> bool:
    fire_at = payload.get("fire_at")
    return fire_at is None or time.time() > float(fire_at) + LATE_AFTER_SECONDS


def _still_unsent(orders: list[sender.OutgoingOrder]) -> list[sender.OutgoingOrder]:
    """The orders the database still has as unsent intents (one query) and that no sender
    marked "about to write": a late task never sends an order that was sent, found by its
    tag, abandoned, or maybe written by a worker that died before recording it (those are
    the reconciler's: looked up, never resent)."""
    unsent = set(
        OrderIntent.objects.filter(
            tag__in=[o.tag for o in orders], state=IntentState.INTENT
        ).values_list("tag", flat=True)
    )
    unsent -= sender.wire_marked(unsent)
    return [o for o in orders if o.tag in unsent]


# The fast take-over: every worker process that sends at T watches that boundary for a while
# after it, and finishes the orders of a worker that died (its liveness key expired) without
# waiting for that worker's restart (execution.orders.lifecycle.boundary_orphans_take_over).
TAKEOVER_FIRST_AFTER = 1.0  # seconds after T of the first look
TAKEOVER_EVERY = 0.5
_watched: set[float] = set()
_watched_lock = threading.Lock()


def takeover_watch_start(fire_at_epoch: float) -> bool:
    """Watch boundary `fire_at_epoch` from this process (once per process and boundary), on a
    daemon thread, until the entry lateness cap has passed or nothing of it is left unsent.
    Returns whether a watch was started."""
    with _watched_lock:
        if fire_at_epoch in _watched:
            return False
        _watched.add(fire_at_epoch)
    threading.Thread(
        target=takeover_watch,
        args=(fire_at_epoch,),
        name="execution-takeover",
        daemon=True,
    ).start()
    return True


def takeover_watch(fire_at_epoch: float) -> None:
    from django.db import connections

    from execution import conf
    from execution.orders.lifecycle import boundary_orphans_take_over

    fire_at = datetime.fromtimestamp(fire_at_epoch, tz=UTC)
    # Past the cap only exits are left to send: the reconciler's periodic passes do those.
    until = fire_at_epoch + conf.entry_late_cap_seconds()
    moment = fire_at_epoch + TAKEOVER_FIRST_AFTER
    try:
        while True:
            delay = moment - time.time()
            if delay > 0:
                time.sleep(delay)
            counts = sender.reconnecting(
                functools.partial(boundary_orphans_take_over, fire_at=fire_at)
            )
            if counts.get("taken"):
                logger.warning("took over %s orders of a dead worker: %s", counts["taken"], counts)
            if not counts["unsent"] or time.time() > until:
                return
            moment = time.time() + TAKEOVER_EVERY
    except Exception:  # the restart's and the periodic reconciliation remain
        logger.exception("the take-over watch of %s stopped", fire_at.isoformat())
    finally:
        connections.close_all()


def _hand_over(out: sender.OutcomeWriter, done: Any) -> None:
    try:
        report = done.result()
    except BaseException:
        # The orders stay claimed and unrecorded: the reconciler looks them up by tag.
        logger.exception("an account batch failed on the asynchronous lane")
        out.end([], background=True)
        return
    out.end(report.outcomes, background=True)


def account_batch_send(payload: dict[str, Any]) -> dict[str, Any]:
    """Send one account's orders of a boundary at T (see execution.send.sender).

    Orders another worker already claimed are left to it. With an HTTP adapter the task
    prepares everything, hands the batch to the process's asynchronous lane and returns; the
    outcomes are written by one writer thread per process after the sends. Should the worker
    die meanwhile, the reconciler finds the claimed orders by tag (execution.orders.lifecycle).
    Called directly (main thread: tests, a solo worker), it waits and writes the outcomes itself."""
    sender.heartbeat_start()
    orders = [sender.OutgoingOrder(**o) for o in payload["orders"]]
    mine = sender.claims_take(o.tag for o in orders)
    orders = [o for o in orders if o.tag in mine]
    if orders and _late(payload):
        orders = _still_unsent(orders)
    if not orders:
        return {"account_id": payload["account_id"], "sent": 0}
    sender.ADAPTERS.prepare(payload["boundary_key"], payload["account_ids"])
    alone = not sender.gevent_active() and threading.current_thread() is threading.main_thread()
    key = payload.get("contracts_key")
    if key:
        # Handed over before T - ε: the contracts come at T - ε (one read per process).
        until = float(payload["fire_at"]) + conf.entry_late_cap_seconds()
        if not alone and not sender.gevent_active():
            # In a worker: the orders-per-second slots are reserved now, the task returns,
            # and the requests are written out when the contracts come.
            cached = sender.ADAPTERS.get(payload["account_id"])
            send_at = sender.slots_reserve(
                payload["account_id"], cached.ops_limit, orders, float(payload["fire_at"])
            )
            if cached.adapter.speaks_http:
                _held_send(payload, key, cached, orders, send_at, until=until)
                return {"account_id": payload["account_id"], "scheduled": len(orders)}
            slots.when_resolved(
                key,
                until=until,
                then=lambda found: _resolved_send(payload, orders, found, send_at),
            )
            return {"account_id": payload["account_id"], "scheduled": len(orders)}
        orders = slots.orders_resolved(orders, slots.resolution_wait(key, until=until))
        if not orders:
            return {"account_id": payload["account_id"], "sent": 0}
    return _batch_send(payload, orders, alone=alone)


def _held_send(
    payload: dict[str, Any],
    key: str,
    cached: Any,
    orders: list[sender.OutgoingOrder],
    send_at: dict[str, float],
    *,
    until: float,
) -> None:
    """Build the batch's requests now, before T - ε, with gaps for the contracts, and hold it
    on the lane (execution.send.template); the one pass of this process fills them in when
    the resolution comes (or, with none by `until`, drops the orders still on placeholders)."""
    out = writer()
    out.begin()
    try:
        future = template.batch_hold(
            key,
            account_id=payload["account_id"],
            cached=cached,
            orders=orders,
            send_at=send_at,
            fire_at_epoch=float(payload["fire_at"]),
        )
    except BaseException:
        out.end([], background=True)
        raise
    takeover_watch_start(float(payload["fire_at"]))
    future.add_done_callback(lambda done: _hand_over(out, done))
    slots.when_resolved(key, until=until, then=functools.partial(_fill, key))


def _fill(key: str, resolution: dict[str, dict[str, Any]] | None) -> None:
    template.batches_fill(key, lambda orders: slots.orders_resolved(orders, resolution))


def _resolved_send(
    payload: dict[str, Any],
    orders: list[sender.OutgoingOrder],
    resolution: dict[str, dict[str, Any]] | None,
    send_at: dict[str, float],
) -> None:
    orders = slots.orders_resolved(orders, resolution)
    if not orders:
        return
    if not sender.ADAPTERS.get(payload["account_id"]).adapter.speaks_http:
        # Sent synchronously (it waits for T): a thread of its own, the pool stays free.
        threading.Thread(
            target=_batch_send,
            args=(payload, orders),
            kwargs={"alone": False, "send_at": send_at},
            daemon=True,
        ).start()
        return
    _batch_send(payload, orders, alone=False, send_at=send_at)


def _batch_send(
    payload: dict[str, Any],
    orders: list[sender.OutgoingOrder],
    *,
    alone: bool,
    send_at: dict[str, float] | None = None,
) -> dict[str, Any]:
    cached = sender.ADAPTERS.get(payload["account_id"])
    out = writer()
    out.begin()
    future = None
    if not sender.gevent_active():
        try:
            future = sender.send_batch_async(
                account_id=payload["account_id"],
                cached=cached,
                orders=orders,
                fire_at_epoch=payload.get("fire_at"),
                send_at=send_at,
            )
        except BaseException:
            out.end([], background=not alone)
            raise
    if payload.get("fire_at") is not None and not alone:
        takeover_watch_start(float(payload["fire_at"]))
    if future is not None and not alone:
        future.add_done_callback(lambda done: _hand_over(out, done))
        return {"account_id": payload["account_id"], "scheduled": len(orders)}
    report = sender.BatchReport(account_id=payload["account_id"])
    try:
        if future is not None:
            report = future.result(timeout=3600)
        else:
            sender.warm(cached)
            report = sender.send_batch(
                account_id=payload["account_id"],
                adapter=cached.adapter,
                ops_limit=cached.ops_limit,
                orders=orders,
                fire_at_epoch=payload.get("fire_at"),
            )
    finally:
        out.end(report.outcomes, background=not alone)
    if alone:
        out.flush_now()
    return {
        "account_id": payload["account_id"],
        "sent": len(report.outcomes),
        "first_send_lag_ms": report.first_send_lag_ms,
    }
