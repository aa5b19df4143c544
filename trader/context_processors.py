from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from django.utils.functional import SimpleLazyObject

from execution.markettime import IST


def market_clock(request: HttpRequest) -> dict[str, Any]:
    return {"now_ist": timezone.now().astimezone(IST)}


def calendar_banner(request: HttpRequest) -> dict[str, Any]:
    """For staff: warnings when an exchange's holiday calendar runs out within 30 days (or
    has). Lazy, so pages that do not show it pay no query."""
    user = getattr(request, "user", None)
    if user is None or not user.is_staff:
        return {}

    def warnings() -> list[str]:
        from execution.reference.calendar import coverage_warnings

        return coverage_warnings(timezone.now().astimezone(IST).date())

    return {"calendar_warnings": SimpleLazyObject(warnings)}
