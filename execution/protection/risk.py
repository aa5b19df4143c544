"""Pre-trade checks, on data already loaded by the dispatcher (no queries here).

Each check returns the reasons to refuse, in words; an empty list means go.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from brokers.models import AccountStatus, BrokerAccount
from execution.markettime import IST
from trader.india import rupees


@dataclass(frozen=True)
class EffectiveLimits:
    max_lots_per_order: int
    max_lots_per_strategy: int
    max_open_strategies: int
    max_daily_loss: Decimal


def limits_from(*, own: object | None, ceiling: dict[str, object]) -> EffectiveLimits:
    """min(the user's own limit, the admins' ceiling) for each limit."""

    def pick(name: str) -> Any:
        values = [v for v in (getattr(own, name, None), ceiling.get(name)) if v is not None]
        return min(values) if values else None  # type: ignore[type-var]

    return EffectiveLimits(
        max_lots_per_order=int(pick("max_lots_per_order") or 10**6),
        max_lots_per_strategy=int(pick("max_lots_per_strategy") or 10**6),
        max_open_strategies=int(pick("max_open_strategies") or 10**6),
        max_daily_loss=Decimal(str(pick("max_daily_loss") or "1e12")),
    )


def strategy_checks(
    *,
    limits: EffectiveLimits,
    leg_lots: list[int],
    open_strategies: int,
    day_pnl: Decimal,
) -> list[str]:
    """User and strategy limits for one run on one account (lots already multiplied)."""
    problems = []
    biggest = max(leg_lots, default=0)
    if biggest > limits.max_lots_per_order:
        problems.append(
            f"A leg of {biggest} lots is above your limit of {limits.max_lots_per_order} lots "
            "per order."
        )
    if sum(leg_lots) > limits.max_lots_per_strategy:
        problems.append(
            f"{sum(leg_lots)} lots in this strategy is above your limit of "
            f"{limits.max_lots_per_strategy}."
        )
    if open_strategies >= limits.max_open_strategies:
        problems.append(
            f"You already have {open_strategies} strategies open (limit "
            f"{limits.max_open_strategies})."
        )
    if day_pnl <= -limits.max_daily_loss:
        problems.append(
            f"Today's loss of {rupees(-day_pnl)} has reached your daily limit of "
            f"{rupees(limits.max_daily_loss)}."
        )
    return problems


_LIMIT_TYPES = {
    "max_lots_per_order": int,
    "max_lots_per_strategy": int,
    "max_daily_loss": Decimal,
}


def source_limit_checks(
    *, limits: Mapping[str, str], leg_lots: list[int], day_pnl: Decimal
) -> list[str]:
    """Limits a run source set for one account of a run (AccountAllocation.limits, e.g. a
    marketplace deployment's own daily loss), checked like the user's limits but against that
    target's own P&L of the day. Unknown names are ignored; no limits means go."""
    values: dict[str, object] = {}
    for name, kind in _LIMIT_TYPES.items():
        if limits.get(name) not in (None, ""):
            values[name] = kind(limits[name])
    if not values:
        return []
    return strategy_checks(
        limits=limits_from(own=None, ceiling=values),
        leg_lots=leg_lots,
        open_strategies=0,
        day_pnl=day_pnl,
    )


def source_limit_exit(*, limits: Mapping[str, str], mtm: Decimal) -> str | None:
    """Why a run's source limits end it for the day (its MTM loss reached the daily loss its
    run source set, e.g. a deployment's), or None."""
    limit = limits.get("max_daily_loss")
    if limit in (None, "") or mtm > -Decimal(limit):
        return None
    return f"daily loss limit of this deployment (MTM {rupees(mtm)}, limit {rupees(limit)})"


def account_checks(*, account: BrokerAccount, day: date, is_test: bool) -> list[str]:
    """SEBI and broker preconditions of sending: a login from today, a registered static IP
    (real brokers), an account that is connected."""
    if account.is_paper:
        return []
    problems = []
    if account.status != AccountStatus.CONNECTED:
        problems.append(f"{account.label}: {account.get_status_display().lower()}.")
    issued = account.token_issued_at
    if issued is None or issued.astimezone(IST).date() != day:
        problems.append(f"{account.label}: not logged in today (the broker needs a daily login).")
    if not account.static_ip_primary:
        problems.append(f"{account.label}: no static IP registered (SEBI requires one).")
    return problems
