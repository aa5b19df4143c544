"""The execution audit trail: every state change appends one ExecutionEvent.

Events are written in the same transaction as the change they describe (a service calls
`event_record` inside its `transaction.atomic`), or in one bulk insert after a batch of sends.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from execution.models.engine import ExecutionEvent
from trader.audit_context import audit_via

logger = logging.getLogger(__name__)


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
    return event


def events_record(events: list[ExecutionEvent]) -> None:
    """Append several events in one insert."""
    if events:
        ExecutionEvent.objects.bulk_create(events, batch_size=500)
