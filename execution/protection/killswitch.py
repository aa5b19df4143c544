"""The kill switch, per trader and global: cancel open orders, flatten every position the
engine holds on every broker, refuse new entries until re-armed.

Engaging is one transaction (switch, closing intents, audit); the broker calls (cancels and
the closing orders) happen after the commit, in account tasks, hedges kept until the shorts
are bought back. Unsent orders, those already in a sender's hands included, are stopped in
Redis where no sender marked them "about to write" (`sender.unsent_stop_now`); a
marked one may be on the wire and goes out: an entry fill booked after the engage is closed as
it is booked, and an entry acknowledged after it is cancelled (execution.orders.killed).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from brokers import registry
from brokers.base import BrokerError, RateLimitedError
from execution import enqueue
from execution.audit import event_build, event_record, events_record
from execution.models.engine import (
    IntentState,
    KillSwitch,
    KillSwitchScope,
    OrderIntent,
    Position,
    Purpose,
    RunState,
    ScheduledRun,
)
from execution.orders import killed
from execution.orders.lifecycle import intent_transition
from execution.send import sender
from execution.send.sender import slot_take
from trader.permissions import OPERATE_GLOBAL_KILL_SWITCH, staff_may

logger = logging.getLogger(__name__)


def can_operate_global_switch(user: Any) -> bool:
    """For pages: whether to offer the platform-wide switch (trader.permissions decides)."""
    return staff_may(user=user, permission=OPERATE_GLOBAL_KILL_SWITCH)


def kill_switches_engaged(*, user: Any) -> dict[str, KillSwitch]:
    """The engaged switches that stop `user`: their own and the platform-wide one, with who
    engaged them (one query)."""
    from django.db.models import Q

    found = {}
    for switch in KillSwitch.objects.filter(
        Q(scope=KillSwitchScope.GLOBAL) | Q(user=user), engaged=True
    ).select_related("engaged_by"):
        found["global" if switch.scope == KillSwitchScope.GLOBAL else "user"] = switch
    return found


def _switch_for(user: Any | None) -> KillSwitch:
    if user is None:
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(
            scope=KillSwitchScope.GLOBAL, user=None
        )
    else:
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(
            user=user, defaults={"scope": KillSwitchScope.USER}
        )
    return switch


def kill_switch_engage(
    *,
    actor: Any,
    user: Any | None,
    reason: str = "",
    send: bool = True,
    flatten_outside: bool = False,
) -> list[dict[str, Any]]:
    """Engage the switch of `user` (None: the global one, admins only). Returns the account
    payloads of the closing orders (sent after the commit when `send`). `flatten_outside`
    (a trader's own switch): also close what their brokers hold beyond the engine's
    positions, opened outside the platform (execution.broker_positions)."""
    if user is None and not staff_may(user=actor, permission=OPERATE_GLOBAL_KILL_SWITCH):
        raise PermissionError("Only an admin with that permission can engage the global switch.")
    if user is None and not reason.strip():
        raise ValueError("Say why the platform-wide kill switch is engaged (it is audited).")
    now = timezone.now()
    with transaction.atomic():
        switch = _switch_for(user)
        switch.engaged, switch.engaged_at, switch.engaged_by = True, now, actor
        switch.reason = reason[:200]
        switch.rearmed_at = None
        switch.save()
        positions = Position.objects.exclude(net_quantity=0).select_related("account", "run")
        planned = ScheduledRun.objects.filter(state=RunState.PLANNED, boundary="entry")
        open_orders = OrderIntent.objects.filter(
            state__in=[IntentState.ACKNOWLEDGED, IntentState.PARTIALLY_FILLED]
        )
        # Every order not sent yet, including those already handed to a sender (before T,
        # or an orphan the reconciler may still send): stopped where provably unwritten.
        unsent = OrderIntent.objects.filter(
            state=IntentState.INTENT, intended_at__gte=now - timedelta(days=1)
        ).exclude(purpose=Purpose.FLATTEN)
        if user is not None:
            positions = positions.filter(owner=user)
            planned = planned.filter(owner=user)
            open_orders = open_orders.filter(run__owner=user)
            unsent = unsent.filter(run__owner=user)
        open_positions = list(positions)
        skipped = planned.update(state=RunState.SKIPPED, note="Kill switch engaged.")
        unsent_tags = list(unsent.values_list("tag", flat=True))
        try:
            stopped = sender.unsent_stop_now(unsent_tags)
        except Exception:
            # Redis down: nothing can be proved unwritten, so nothing is called not sent (no
            # sender can mark, hence write, an order meanwhile either). The switch engages and
            # flattens regardless; fills of what goes out later are closed as they are booked.
            logger.exception("kill switch: %d unsent orders could not be stopped", len(unsent_tags))
            stopped = set()
        unsent.filter(tag__in=stopped).update(
            state=IntentState.ABANDONED, error="Not sent: kill switch engaged."
        )
        # Marked "about to write" by a sender: maybe on the wire. Left to that sender (or the
        # lookup by tag); a fill of one is closed as it is booked (execution.orders.killed).
        on_the_wire = len(unsent_tags) - len(stopped)
        to_cancel = list(open_orders.values_list("pk", flat=True))
        accounts = {p.account_id: p.account for p in open_positions}
        intents = []
        for position in open_positions:
            intents += killed.closing_orders(
                run=position.run, positions=[position], accounts=accounts, purpose=Purpose.FLATTEN
            )
        OrderIntent.objects.bulk_create(intents)
        events_record(
            [
                event_build(
                    kind="killswitch.engaged",
                    message=f"Kill switch engaged by {actor}: {len(to_cancel)} orders to cancel, "
                    f"{len(intents)} closing orders, {skipped} planned entries skipped, "
                    f"{len(stopped)} unsent orders stopped"
                    + (
                        f", {on_the_wire} already on their way (closed if they fill)."
                        if on_the_wire
                        else "."
                    )
                    + (f" Reason: {reason}" if reason else ""),
                    user_id=None if user is None else user.pk,
                    data={
                        "scope": switch.scope,
                        "cancel": to_cancel,
                        "stopped": len(stopped),
                        "on_the_wire": on_the_wire,
                    },
                )
            ]
        )
        payloads = killed.payloads_at_once(intents)
        if send:
            outside_of = user.pk if flatten_outside and user is not None else None
            transaction.on_commit(lambda: flatten_start(to_cancel, payloads, outside_of=outside_of))
    return payloads


def open_orders_cancel(*, intent_ids: list[int]) -> int:
    """Cancel these orders at their brokers; returns how many the brokers accepted."""
    cancelled = 0
    for intent in OrderIntent.objects.filter(pk__in=intent_ids).select_related("account", "run"):
        try:
            # A cancel is an order write: it takes a slot of the account's one budget.
            if not slot_take(intent.account_id, intent.account.orders_per_second):
                raise RateLimitedError("No orders-per-second slot came free for the cancel.")
            registry.get_adapter(intent.account).cancel_order(intent.broker_order_id)
        except BrokerError as exc:
            event_record(
                kind="killswitch.cancel_failed",
                message=f"{intent}: {exc.message}",
                user_id=intent.run.owner_id,
                intent_id=intent.pk,
            )
            continue
        intent_transition(intent=intent, to=IntentState.CANCELLED, message="Kill switch.")
        cancelled += 1
    return cancelled


def flatten_start(
    to_cancel: list[int], payloads: list[dict[str, Any]], *, outside_of: int | None = None
) -> None:
    """Start what an engaged switch does at the brokers (after its commit): cancel the open
    orders `to_cancel` (one task) and send the closing orders of `payloads` (account tasks).
    With `outside_of` (a trader's id) one task does it instead, for the "flatten everything"
    of that trader: it reads their brokers' positions first, then calls this (without
    `outside_of`), then closes what was opened outside the platform."""
    if outside_of is not None:
        enqueue.task_enqueue(
            enqueue.KILL_SWITCH_FLATTEN_OUTSIDE, args=[outside_of, to_cancel, payloads]
        )
        return
    if to_cancel:
        enqueue.task_enqueue(enqueue.ORDERS_CANCEL, args=[to_cancel])
    enqueue.account_sends_enqueue(payloads)


def kill_switch_rearm(*, actor: Any, user: Any | None) -> KillSwitch:
    """Allow new entries again."""
    if user is None and not staff_may(user=actor, permission=OPERATE_GLOBAL_KILL_SWITCH):
        raise PermissionError("Only an admin with that permission can re-arm the global switch.")
    with transaction.atomic():
        switch = _switch_for(user)
        switch.engaged = False
        switch.rearmed_at = timezone.now()
        switch.save()
        event_record(
            kind="killswitch.rearmed",
            message=f"Kill switch re-armed by {actor}.",
            user_id=None if user is None else user.pk,
            data={"scope": switch.scope},
        )
    return switch
