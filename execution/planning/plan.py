"""Day planning: one ScheduledRun per run target x boundary for a session day.

Runs are planned before the open (a beat task) and re-planned whenever a strategy, an
allocation or a marketplace deployment changes. Planning is idempotent: the unique constraint
on (version, boundary, day, source, source_ref) settles races, and re-planning only touches runs
that have not been dispatched yet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from execution.audit import event_build, events_record
from execution.markettime import IST
from execution.models import SpecialSession
from execution.models.engine import Boundary, RunState, ScheduledRun
from execution.planning.sources import RunTarget, registered
from execution.reference import calendar

logger = logging.getLogger(__name__)


@dataclass
class PlanResult:
    day: date
    created: list[ScheduledRun] = field(default_factory=list)
    updated: list[ScheduledRun] = field(default_factory=list)
    skipped: list[ScheduledRun] = field(default_factory=list)
    not_planned: list[str] = field(default_factory=list)  # reasons, in words

    @property
    def fire_times(self) -> set[datetime]:
        return {run.fire_at for run in self.created + self.updated}


def _fire_at(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=IST)


def _targets(*, day: date, strategy_id: int | None) -> list[RunTarget]:
    found: list[RunTarget] = []
    for source in registered():
        found.extend(source.targets(day=day, strategy_id=strategy_id))
    return found


def _open_positional_entry(target: RunTarget) -> ScheduledRun | None:
    """The positional entry whose positions are still open, if any (no new entry then)."""
    return (
        ScheduledRun.objects.filter(
            Q(positions__net_quantity__lt=0) | Q(positions__net_quantity__gt=0),
            strategy_version__strategy_id=target.strategy_id,
            source=target.source,
            source_ref=target.source_ref,
            boundary=Boundary.ENTRY,
        )
        .order_by("-session_date")
        .first()
    )


def day_plan(*, day: date, strategy_id: int | None = None) -> PlanResult:
    """Create (or refresh) the day's runs for every target, or for one strategy's targets.

    Non-sessions plan nothing (the reason is returned); a version whose times fall outside the
    day's window (a short special session) is not planned that day. Runs already dispatched are
    never changed. Runs that no target wants any more (strategy paused, allocation removed) are
    marked skipped, with an audit event.
    """
    from trader.models import StrategyKind, StrategyVersion

    result = PlanResult(day=day)
    targets = _targets(day=day, strategy_id=strategy_id)
    versions = {
        v.pk: v
        for v in StrategyVersion.objects.select_related("strategy__underlying").filter(
            pk__in={t.version_id for t in targets}
        )
    }
    windows: dict[str, calendar.DayStatus] = {}
    wanted: dict[tuple[int, str, str, str], dict[str, Any]] = {}
    for target in targets:
        version = versions[target.version_id]
        exchange = version.strategy.underlying.exchange
        if exchange not in windows:
            windows[exchange] = calendar.day_status(day, exchange)
        window = windows[exchange].window
        label = f"{version.strategy} ({target.source})"
        if window is None:
            reason = windows[exchange].closed_reason
            result.not_planned.append(f"{label}: {day} is not a {exchange} session ({reason}).")
            continue
        if not version.runs_on_weekday(day.weekday()):
            result.not_planned.append(f"{label}: does not trade on {day:%A}s.")
            continue
        boundaries = {Boundary.ENTRY: version.entry_time, Boundary.EXIT: version.exit_time}
        entry_run_of_exit = None
        if version.strategy.kind == StrategyKind.POSITIONAL:
            open_entry = _open_positional_entry(target)
            if open_entry is not None:
                boundaries.pop(Boundary.ENTRY)
                entry_run_of_exit = open_entry
                if not _positional_expires(open_entry, day):
                    boundaries.pop(Boundary.EXIT)
            else:
                # A positional entry is closed on its expiry day, planned that day.
                boundaries.pop(Boundary.EXIT)
        for boundary, at in boundaries.items():
            fire_at = _fire_at(day, at)
            if not window[0] <= fire_at < window[1]:
                result.not_planned.append(
                    f"{label}: {boundary} at {at:%H:%M:%S} is outside the session window."
                )
                continue
            key = (target.version_id, str(boundary), target.source, target.source_ref)
            wanted[key] = {
                "target": target,
                "fire_at": fire_at,
                "entry_run": entry_run_of_exit,
                "exchange": exchange,
            }

    with transaction.atomic():
        existing_qs = ScheduledRun.objects.select_for_update().filter(session_date=day)
        if strategy_id is not None:
            existing_qs = existing_qs.filter(strategy_version__strategy_id=strategy_id)
        existing: dict[tuple[int, str, str, str], ScheduledRun] = {
            (r.strategy_version_id, r.boundary, r.source, r.source_ref): r
            for r in existing_qs.filter(is_test=False)
        }
        events = []
        # The day's declared special sessions (the calendar gave a weekend its window from one):
        # a run references its exchange's, which the database requires on a Saturday or Sunday.
        specials = {s.exchange: s for s in SpecialSession.objects.filter(date=day)}
        for key, spec in wanted.items():
            planned: RunTarget = spec["target"]
            allocations = [a.to_json() for a in planned.allocations]
            price_account_id = _paper_price_account(planned)
            run = existing.get(key)
            if run is None:
                run = ScheduledRun.objects.create(
                    session_date=day,
                    boundary=key[1],
                    fire_at=spec["fire_at"],
                    strategy_version_id=planned.version_id,
                    owner_id=planned.owner_id,
                    source=planned.source,
                    source_ref=planned.source_ref,
                    multiplier=planned.multiplier,
                    allocations=allocations,
                    special_session=specials.get(spec["exchange"]),
                    entry_run=spec["entry_run"],
                    price_account_id=price_account_id,
                )
                result.created.append(run)
                events.append(_planned_event(run, "run.planned"))
            elif run.state == RunState.PLANNED:
                changed = (
                    run.fire_at != spec["fire_at"]
                    or run.allocations != allocations
                    or run.multiplier != planned.multiplier
                    or run.price_account_id != price_account_id
                )
                if changed:
                    run.fire_at = spec["fire_at"]
                    run.allocations = allocations
                    run.multiplier = planned.multiplier
                    run.price_account_id = price_account_id
                    run.save(
                        update_fields=["fire_at", "allocations", "multiplier", "price_account"]
                    )
                    result.updated.append(run)
                    events.append(_planned_event(run, "run.replanned"))
            elif (
                run.state == RunState.SKIPPED
                and run.dispatched_at is None
                and spec["fire_at"] > timezone.now()
            ):
                # Withdrawn by an earlier re-plan (never dispatched) and wanted again before its
                # time, e.g. a subscription paused and resumed, a deployment stopped and added
                # back: plan it again (the unique key forbids a second row).
                run.state, run.note = RunState.PLANNED, ""
                run.fire_at = spec["fire_at"]
                run.allocations = allocations
                run.multiplier = planned.multiplier
                run.save(update_fields=["state", "note", "fire_at", "allocations", "multiplier"])
                result.updated.append(run)
                events.append(_planned_event(run, "run.replanned"))
        for key, run in existing.items():
            if key not in wanted and run.state == RunState.PLANNED:
                run.state = RunState.SKIPPED
                run.note = "No longer scheduled: the strategy, its allocation or its deployment "
                run.note += "changed before the run."
                run.save(update_fields=["state", "note"])
                result.skipped.append(run)
                events.append(_planned_event(run, "run.unplanned"))
        # Exit runs close today's entry of the same target.
        entries = {
            (r.strategy_version_id, r.source, r.source_ref): r
            for r in result.created + result.updated
            if r.boundary == Boundary.ENTRY
        }
        for run in result.created:
            if run.boundary == Boundary.EXIT and run.entry_run_id is None:
                entry = entries.get((run.strategy_version_id, run.source, run.source_ref))
                if entry is None:
                    entry = existing.get(
                        (run.strategy_version_id, Boundary.ENTRY, run.source, run.source_ref)
                    )
                if entry is not None:
                    run.entry_run = entry
                    run.save(update_fields=["entry_run"])
        events_record(events)
    return result


def _paper_price_account(target: RunTarget) -> int | None:
    """The live account chosen to price a target that trades on paper accounts only ("paper
    on live prices"); a target with a live account is priced by its own broker."""
    chosen = target.extra.get("price_account_id")
    if not chosen or any(a.broker != "paper" for a in target.allocations):
        return None
    return int(chosen)


def _positional_expires(entry: ScheduledRun, day: date) -> bool:
    """Whether a positional entry's earliest-expiring contract expires on `day`."""
    from execution.models.engine import OrderIntent

    expiries = set(
        OrderIntent.objects.filter(run=entry, leg__isnull=False)
        .values_list("leg__expiry_choice", flat=True)
        .distinct()
    )
    if not expiries:
        return False
    from execution.reference import contracts

    underlying = entry.strategy_version.strategy.underlying
    earliest = min(contracts.pick_expiry(underlying, entry.session_date, c) for c in expiries)
    return earliest <= day


def _planned_event(run: ScheduledRun, kind: str):  # type: ignore[no-untyped-def]
    return event_build(
        kind=kind,
        message=f"{run.get_boundary_display()} planned at {run.fire_at.astimezone(IST):%H:%M:%S}"
        f" IST on {run.session_date} ({run.source}).",
        user_id=run.owner_id,
        run_id=run.pk,
        data={"state": run.state, "accounts": [a["account_id"] for a in run.allocations]},
    )


def today_ist(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(IST).date()
