"""From the engine's audit events to alert deliveries.

`events_recorded` is the audit trail's listener (execution.audit.events_listen): it only looks
at the kinds below and, for those, enqueues the router after the commit, so the engine's hot
path pays one dictionary lookup per event and a broken broker or channel never blocks a trade.
`alerts_route` (a task on the default queue) decides who gets what on which channel.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.db import transaction

from trader.alerts.models import AlertDelivery, AlertEvent, AlertRule, DeliveryState

logger = logging.getLogger(__name__)

# Audit event kind → alert event. Everything else is not alerted.
EVENT_KINDS: dict[str, str] = {
    "order.filled": AlertEvent.FILL,
    "order.partially_filled": AlertEvent.FILL,
    "order.rejected": AlertEvent.REJECTION,
    "run.failover": AlertEvent.FAILOVER,
    "order.needs_attention": AlertEvent.NEEDS_ATTENTION,
    "run.leg_failure_policy": AlertEvent.NEEDS_ATTENTION,
    "killswitch.engaged": AlertEvent.KILL_SWITCH,
    "killswitch.rearmed": AlertEvent.KILL_SWITCH,
    "killswitch.cancel_failed": AlertEvent.KILL_SWITCH,
    "run.exit": AlertEvent.STOP_TARGET_EXIT,
    "run.missed": AlertEvent.MISSED_BOUNDARY,
    "run.skipped": AlertEvent.MISSED_BOUNDARY,
    "account.not_ready": AlertEvent.READY_CHECK,
}


def events_recorded(events: list[Any]) -> None:
    """The audit listener: enqueue the router for the alertable events, after the commit."""
    ids = [e.pk for e in events if e.kind in EVENT_KINDS and e.pk is not None]
    if not ids:
        return

    def enqueue() -> None:
        from trader.alerts.tasks import alerts_route_task

        try:
            alerts_route_task.delay(ids)
        except Exception:  # the broker is down: the trade went on, the alert is lost (logged)
            logger.warning("could not enqueue alerts for %s audit events", len(ids))

    transaction.on_commit(enqueue)


def alerts_route(*, event_ids: list[int]) -> list[int]:
    """Make the deliveries of these audit events (once per channel and event, whoever runs
    this twice) and return the ids of those still to send."""
    from execution.models import ExecutionEvent

    events = [e for e in ExecutionEvent.objects.filter(pk__in=event_ids) if e.kind in EVENT_KINDS]
    if not events:
        return []
    wanted = {EVENT_KINDS[e.kind] for e in events}
    rules = AlertRule.objects.filter(
        event__in=wanted, channel__enabled=True, channel__verified_at__isnull=False
    ).select_related("channel")
    # The platform-wide kill switch (no user) is told to everyone who asked for the switch.
    users = {e.user_id for e in events if e.user_id is not None}
    if not any(e.user_id is None for e in events):
        rules = rules.filter(channel__user_id__in=users)
    by_user_event: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for rule in rules:
        by_user_event[(rule.channel.user_id, rule.event)].append(rule.channel)
    texts = _texts(events)
    deliveries = []
    for event in events:
        alert_event = EVENT_KINDS[event.kind]
        recipients = (
            [event.user_id]
            if event.user_id is not None
            else sorted({u for (u, ev) in by_user_event if ev == alert_event})
        )
        for user_id in recipients:
            subject, body = texts[event.pk]
            for channel in by_user_event.get((user_id, alert_event), []):
                deliveries.append(
                    AlertDelivery(
                        user_id=user_id,
                        channel=channel,
                        event=alert_event,
                        source_event_id=event.pk,
                        subject=subject,
                        body=body,
                    )
                )
    AlertDelivery.objects.bulk_create(deliveries, ignore_conflicts=True)
    return list(
        AlertDelivery.objects.filter(
            source_event_id__in=[e.pk for e in events], state=DeliveryState.PENDING
        ).values_list("pk", flat=True)
    )


def _texts(events: list[Any]) -> dict[int, tuple[str, str]]:
    """event id → (subject, body) for its owner. A black-box subscriber's alerts name the listing
    and carry no contract, strike or clock time (marketplace.disclosure decides)."""
    from execution.models import ScheduledRun
    from marketplace.disclosure import hidden_titles, scrub

    run_ids = {e.run_id for e in events if e.run_id}
    runs = {
        r.pk: r
        for r in ScheduledRun.objects.filter(pk__in=run_ids).select_related(
            "strategy_version__strategy", "owner"
        )
    }
    texts: dict[int, tuple[str, str]] = {}
    for event in events:
        what = AlertEvent(EVENT_KINDS[event.kind]).label
        run = runs.get(event.run_id or 0)
        if run is None:
            texts[event.pk] = (what, event.message)
            continue
        strategy = run.strategy_version.strategy
        hidden = hidden_titles(user=run.owner, strategy_ids=[strategy.pk])
        if hidden:
            name, message = hidden[strategy.pk], scrub(event.message)
        else:
            name, message = strategy.name, event.message
        texts[event.pk] = (
            f"{what}: {name}",
            f"{message}\n{run.get_boundary_display()} of {run.session_date:%d %b %Y}.",
        )
    return texts
