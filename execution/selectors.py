"""Reads of the engine for pages: always scoped to the user (`<noun>_get_for_user`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from execution.models.engine import KillSwitch, KillSwitchScope, OrderIntent, Position, ScheduledRun


def runs_for_user(*, user: Any, limit: int = 50) -> QuerySet[ScheduledRun]:
    return (
        ScheduledRun.objects.filter(owner=user)
        .select_related("strategy_version__strategy")
        .order_by("-fire_at", "-id")[:limit]
    )


def run_get_for_user(*, user: Any, pk: int) -> ScheduledRun:
    """One of the user's runs with its orders and positions (404 for anyone else's)."""
    return get_object_or_404(
        ScheduledRun.objects.select_related("strategy_version__strategy").prefetch_related(
            Prefetch(
                "intents",
                queryset=OrderIntent.objects.select_related("account", "leg").order_by(
                    "account_id", "phase", "id"
                ),
            ),
            Prefetch("positions", queryset=Position.objects.select_related("account", "leg")),
        ),
        pk=pk,
        owner=user,
    )


def open_positions_for_user(*, user: Any) -> list[Position]:
    """Open positions of every run on every broker (shown through marketplace.disclosure,
    which also consolidates them per contract)."""
    return list(
        Position.objects.filter(owner=user)
        .exclude(net_quantity=0)
        .select_related("account", "leg", "run__strategy_version__strategy")
        .order_by("tradingsymbol", "account_id")
    )


def kill_switch_state(*, user: Any) -> dict[str, bool]:
    """Whether the user's own and the global switch are engaged (one query)."""
    engaged = {"user": False, "global": False}
    for switch in KillSwitch.objects.filter(engaged=True).filter(
        scope=KillSwitchScope.GLOBAL
    ) | KillSwitch.objects.filter(engaged=True, user=user):
        engaged["global" if switch.scope == KillSwitchScope.GLOBAL else "user"] = True
    return engaged


def readiness_problems_for_user(*, user: Any, day: Any) -> list[str]:
    """What the morning ready check found missing on the user's accounts today."""
    from execution.models.engine import AccountReadiness

    return [
        problem
        for row in AccountReadiness.objects.filter(
            account__owner=user, session_date=day, ready=False
        )
        for problem in row.problems
    ]


def orders_needing_attention_for_user(*, user: Any) -> list[Any]:
    """The user's orders whose outcome the broker's books could not settle in time."""
    from execution.models.engine import IntentState, OrderIntent

    return list(
        OrderIntent.objects.filter(run__owner=user, state=IntentState.NEEDS_ATTENTION)
        .select_related("account", "run__strategy_version__strategy")
        .order_by("intended_at")
    )


def strategies_to_test_for_user(*, user: Any) -> list[Any]:
    """The user's strategies that have a version (for "Test now on paper")."""
    from trader.models import Strategy

    return list(
        Strategy.objects.filter(owner=user, current_version__isnull=False)
        .exclude(status="archived")
        .order_by("name")
    )


@dataclass(frozen=True)
class MarketToday:
    """Whether the market trades today, in words, for every page that says so."""

    exchange: str
    is_session: bool
    window_label: str
    closed_reason: str | None
    coverage_warning: str | None


def market_today_get(*, now: Any, exchange: str = "NSE") -> MarketToday:
    """Today's session (or why there is none) and the holiday-calendar coverage warning."""
    from execution import calendar

    today = now.astimezone(calendar.IST).date()
    try:
        status = calendar.day_status(today, exchange)
    except calendar.ReferenceDataMissingError as exc:
        return MarketToday(exchange, False, "", str(exc), None)
    return MarketToday(
        exchange=exchange,
        is_session=status.window is not None,
        window_label=status.window_label,
        closed_reason=status.closed_reason,
        coverage_warning=calendar.calendar_coverage(today, exchange).warning,
    )
