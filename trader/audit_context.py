"""Through what an action came, for the audit rows (StrategyEvent.detail, ExecutionEvent.data).

The API sets it for the length of one request authenticated by a token, so that every audit
row written by the services during that request names the token; pages leave it empty.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

_VIA: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "audit_via", default=None
)


def audit_via() -> dict[str, Any]:
    """{"via": "api", "api_token": name} during an API request made with a token, else {}."""
    return dict(_VIA.get() or {})


@contextlib.contextmanager
def audit_via_set(**via: Any) -> Iterator[dict[str, Any]]:
    """Within the block, audit rows carry `via` (which the block may still fill in, e.g. once
    a request is authenticated)."""
    current = dict(via)
    reset = _VIA.set(current)
    try:
        yield current
    finally:
        _VIA.reset(reset)
