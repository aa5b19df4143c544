"""Reads for strategies. `strategy_get_for_user` is the only way a view reaches a strategy."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from brokers.models import AccountStatus, BrokerAccount
from execution.markettime import IST
from execution.reference import calendar, contracts
from trader.models import (
    BrokerAllocation,
    Leg,
    RiskCeiling,
    RiskLimit,
    Strategy,
    StrategyStatus,
    StrategyVersion,
    User,
)
from trader.strategies.specs import Limits

# How far ahead "next run" looks: covers the longest run of exchange holidays plus a weekend.
NEXT_RUN_HORIZON_DAYS = 15
RECENT_RUNS = 20


def session_times_for(*, exchange: str, on: datetime.date) -> tuple[datetime.time, datetime.time]:
    """The normal session (opens, closes) in force on `on`, for checking a strategy's times."""
    return calendar.normal_timing(on, exchange)


def expiry_kinds_for(*, underlying: Any, on: datetime.date) -> set[str] | None:
    """The expiry choices `underlying` has on `on`; None when the reference data cannot say."""
    try:
        return contracts.expiry_kinds(underlying, on)
    except LookupError:
        return None


def _base_queryset(
    *, user: User, versions: QuerySet[StrategyVersion] | None = None
) -> QuerySet[Strategy]:
    if versions is None:
        versions = StrategyVersion.objects.order_by("-number")
    return (
        Strategy.objects.filter(owner=user)
        .select_related("underlying", "current_version")
        .prefetch_related(
            Prefetch(
                "allocations",
                queryset=BrokerAllocation.objects.select_related("broker_account").order_by(
                    "priority", "id"
                ),
            ),
            Prefetch("versions", queryset=versions),
        )
    )


def strategy_list_for_user(*, user: User, include_archived: bool = False) -> QuerySet[Strategy]:
    """The user's strategies with underlying, versions and accounts loaded in a fixed number of
    queries whatever their number."""
    queryset = _base_queryset(user=user)
    if not include_archived:
        queryset = queryset.exclude(status=StrategyStatus.ARCHIVED)
    return queryset


def strategy_get_for_user(*, user: User, pk: int) -> Strategy:
    """One of the user's strategies with every version's legs; raises Strategy.DoesNotExist for
    anybody else's (views turn that into a 404, so a stranger learns nothing)."""
    versions = StrategyVersion.objects.order_by("-number").prefetch_related(
        Prefetch("legs", queryset=Leg.objects.order_by("position"))
    )
    return _base_queryset(user=user, versions=versions).get(pk=pk)


def version_in_force(*, strategy: Strategy, on: datetime.date) -> StrategyVersion | None:
    """The version that trades on `on`: the newest one already effective that day."""
    versions = [v for v in strategy.versions.all() if v.effective_from <= on]
    return max(versions, key=lambda v: v.number, default=None)


def strategy_version_for_day(*, strategy_id: int, on: datetime.date) -> StrategyVersion | None:
    """version_in_force straight from the database (for callers without a loaded strategy)."""
    return (
        StrategyVersion.objects.filter(strategy_id=strategy_id, effective_from__lte=on)
        .order_by("-number")
        .first()
    )


def risk_ceiling_get() -> RiskCeiling:
    return RiskCeiling.objects.get(pk=1)


def risk_limits_for_user(*, user: User) -> Limits:
    """The limits that apply to `user`: their own, capped by the admins' ceilings."""
    ceiling = risk_ceiling_get()
    own = RiskLimit.objects.filter(user=user).first()
    if own is None:
        return Limits(
            ceiling.max_lots_per_order,
            ceiling.max_lots_per_strategy,
            ceiling.max_open_strategies,
            ceiling.max_daily_loss,
        )
    return Limits(
        min(own.max_lots_per_order, ceiling.max_lots_per_order),
        min(own.max_lots_per_strategy, ceiling.max_lots_per_strategy),
        min(own.max_open_strategies, ceiling.max_open_strategies),
        min(own.max_daily_loss, ceiling.max_daily_loss),
    )


def allocatable_accounts_for_user(*, user: User) -> QuerySet[BrokerAccount]:
    """Accounts a strategy of `user` may be allocated to: their own, not disabled."""
    return (
        BrokerAccount.objects.filter(owner=user)
        .exclude(status=AccountStatus.DISABLED)
        .order_by("broker", "label")
    )


@dataclass(frozen=True)
class SessionDay:
    day: datetime.date
    opens: datetime.datetime
    closes: datetime.datetime


def upcoming_sessions(
    *, start: datetime.date, exchange: str = "NSE", days: int = NEXT_RUN_HORIZON_DAYS
) -> list[SessionDay]:
    """Sessions from `start` on, loaded in one calendar slice shared by every strategy."""
    end = start + datetime.timedelta(days=days - 1)
    days_slice = calendar.CalendarSlice(exchange, start, end)
    sessions = []
    for day in days_slice.days():
        window = days_slice.status(day).window
        if window is not None:
            sessions.append(SessionDay(day, window[0], window[1]))
    return sessions


def next_entry_at(
    strategy: Strategy, *, now: datetime.datetime, sessions: Sequence[SessionDay]
) -> datetime.datetime | None:
    """When the strategy next enters (IST), or None if it is not active or has no session."""
    if strategy.status != StrategyStatus.ACTIVE:
        return None
    for session in sessions:
        version = version_in_force(strategy=strategy, on=session.day)
        if version is None or not version.runs_on_weekday(session.day.weekday()):
            continue
        entry = datetime.datetime.combine(session.day, version.entry_time, tzinfo=IST)
        # A special session with a short window (Muhurat) cannot host a 09:20 entry.
        if entry <= now or not session.opens <= entry < session.closes:
            continue
        return entry
    return None


def next_entries(
    strategies: Iterable[Strategy], *, now: datetime.datetime | None = None
) -> dict[int, datetime.datetime | None]:
    now = now or timezone.now()
    today = now.astimezone(IST).date()
    by_exchange: dict[str, list[SessionDay]] = {}
    result = {}
    for strategy in strategies:
        exchange = strategy.underlying.exchange
        if exchange not in by_exchange:
            by_exchange[exchange] = upcoming_sessions(start=today, exchange=exchange)
        result[strategy.pk] = next_entry_at(strategy, now=now, sessions=by_exchange[exchange])
    return result


def next_session_after(day: datetime.date, *, exchange: str = "NSE") -> datetime.date:
    """The first session strictly after `day` (edits to an active strategy apply from it)."""
    start = day + datetime.timedelta(days=1)
    sessions = calendar.sessions_between(start, start + datetime.timedelta(days=59), exchange)
    if not sessions:
        raise LookupError(f"No trading session in the 60 days after {day}.")
    return sessions[0]


def strategy_runs(*, strategy: Strategy, today: datetime.date) -> tuple[list[Any], list[Any]]:
    """(upcoming, recent past) runs of the strategy by its owner. Subscribers' runs of a listed
    strategy are theirs alone: the creator sees only counts and aggregates of them."""
    try:
        run_model = apps.get_model("execution", "ScheduledRun")
    except LookupError:
        return [], []
    runs = run_model.objects.filter(
        strategy_version__strategy=strategy, owner_id=strategy.owner_id
    ).select_related("strategy_version")
    upcoming = list(
        runs.filter(session_date__gte=today, state="planned").order_by("fire_at", "id")[
            :RECENT_RUNS
        ]
    )
    past = list(
        runs.exclude(state="planned").order_by("-session_date", "-fire_at", "-id")[:RECENT_RUNS]
    )
    return upcoming, past
