"""Reads of the engine for pages: always scoped to the user (`<noun>_get_for_user`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
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
                queryset=OrderIntent.objects.select_related("account").order_by(
                    "account_id", "phase", "id"
                ),
            ),
            Prefetch("positions", queryset=Position.objects.select_related("account")),
        ),
        pk=pk,
        owner=user,
    )


@dataclass
class ConsolidatedRow:
    tradingsymbol: str
    net_quantity: int = 0
    pnl: Decimal = Decimal(0)
    accounts: list[str] = field(default_factory=list)


def positions_consolidated_for_user(*, user: Any) -> tuple[list[Position], list[ConsolidatedRow]]:
    """Open positions of every run on every broker, and per contract across brokers."""
    positions = list(
        Position.objects.filter(owner=user)
        .exclude(net_quantity=0)
        .select_related("account", "run__strategy_version__strategy")
        .order_by("tradingsymbol", "account_id")
    )
    rows: dict[str, ConsolidatedRow] = defaultdict(lambda: ConsolidatedRow(""))
    for position in positions:
        # Brokers spell one contract differently; the Kite notation (kept for paper) would
        # merge them, but different spellings are listed apart rather than guessed.
        row = rows[position.tradingsymbol]
        row.tradingsymbol = position.tradingsymbol
        row.net_quantity += position.net_quantity
        row.pnl += position.pnl()
        row.accounts.append(position.account.label)
    return positions, list(rows.values())


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
