"""The execution audit trail: every state change appends one ExecutionEvent.

Events are written in the same transaction as the change they describe (a service calls
`event_record` inside its `transaction.atomic`), or in one bulk insert after a batch of sends.

Listeners (`events_listen`, e.g. trader.alerts) see every event written, once saved: this is the
one place where the rest of the platform learns what the engine did. A listener must be cheap
and defer its work until after the commit; one that fails is logged and never stops the write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.utils import timezone

from execution.models.engine import ExecutionEvent
from trader.audit_context import audit_via

logger = logging.getLogger(__name__)

_LISTENERS: list[Callable[[list[ExecutionEvent]], None]] = []


def events_listen(listener: Callable[[list[ExecutionEvent]], None]) -> None:
    """Call `listener` with the events of every write (once per listener)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def _tell_listeners(events: list[ExecutionEvent]) -> None:
    for listener in _LISTENERS:
        try:
            listener(events)
        except Exception:  # an alert must never undo or block what it reports on
            logger.exception("audit listener %s failed", getattr(listener, "__name__", listener))


def event_build(
    *,
    kind: str,
    message: str,
    user_id: int | None = None,
    run_id: int | None = None,
    intent_id: int | None = None,
    account_id: int | None = None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> ExecutionEvent:
    """An unsaved event, for `events_record` to insert with others in one statement."""
    return ExecutionEvent(
        at=at or timezone.now(),
        kind=kind,
        message=message,
        user_id=user_id,
        run_id=run_id,
        intent_id=intent_id,
        account_id=account_id,
        data={**(data or {}), **audit_via()},
    )


def event_record(**kwargs: Any) -> ExecutionEvent:
    """Append one event now (same arguments as `event_build`)."""
    event = event_build(**kwargs)
    event.save()
    _tell_listeners([event])
    return event


def events_record(events: list[ExecutionEvent]) -> None:
    """Append several events in one insert."""
    if events:
        ExecutionEvent.objects.bulk_create(events, batch_size=500)
        _tell_listeners(events)
