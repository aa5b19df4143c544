"""Engine services: planning with dispatch scheduling, paper test runs."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from execution import conf, enqueue
from execution.audit import event_record
from execution.models.engine import Boundary, ScheduledRun
from execution.planning import plan as planning
from execution.planning.sources import AccountAllocation
from execution.send.sender import engine_redis

logger = logging.getLogger(__name__)


def dispatch_schedule(*, fire_at: datetime) -> bool:
    """Enqueue the dispatch of instant `fire_at` once (Redis SET NX), to start `lead` seconds
    before it. A duplicate dispatch is harmless anyway: it finds no planned run to claim."""
    key = f"execution:dispatch:{fire_at.isoformat()}"
    if not engine_redis().set(key, "1", nx=True, ex=86400):
        return False
    start = fire_at - timedelta(seconds=conf.dispatch_lead_seconds())
    enqueue.task_enqueue(
        enqueue.BOUNDARY_DISPATCH, args=[fire_at.isoformat()], eta=max(start, timezone.now())
    )
    return True


def plan_and_schedule(*, day: str | date | None = None, strategy_id: int | None = None) -> dict:
    """Plan the day's runs (all, or one strategy's) and schedule each boundary's dispatch."""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    day = day or planning.today_ist()
    result = planning.day_plan(day=day, strategy_id=strategy_id)
    now = timezone.now()
    scheduled = 0
    for fire_at in sorted(result.fire_times):
        if fire_at > now - timedelta(seconds=conf.late_tolerance_seconds()):
            scheduled += int(dispatch_schedule(fire_at=fire_at))
    return {
        "day": day.isoformat(),
        "created": len(result.created),
        "updated": len(result.updated),
        "skipped": len(result.skipped),
        "scheduled": scheduled,
        "not_planned": result.not_planned,
    }


class PaperTestError(ValueError):
    """The strategy cannot be test-run (no paper account, no version)."""


def paper_test_run(*, user: Any, strategy: Any) -> ScheduledRun:
    """Run `strategy` now on the user's paper account(s): at the next whole second, any time
    of day, marked as a test. Real brokers are never used by a test run."""
    from brokers.models import Broker, BrokerAccount
    from execution.dispatch import boundary_dispatch

    version = strategy.current_version
    if version is None:
        raise PaperTestError("The strategy has no saved version yet.")
    paper = list(BrokerAccount.objects.filter(owner=user, broker=Broker.PAPER))
    if not paper:
        raise PaperTestError("Connect the paper broker first (Brokers → Paper).")
    now = timezone.now()
    fire_at = (now + timedelta(seconds=1)).replace(microsecond=0)
    if fire_at - now < timedelta(milliseconds=300):
        fire_at += timedelta(seconds=1)
    allocations = [
        AccountAllocation(
            account_id=a.pk, broker=a.broker, priority=i, multiplier=Decimal(1)
        ).to_json()
        for i, a in enumerate(paper, start=1)
    ]
    with transaction.atomic():
        run = ScheduledRun.objects.create(
            session_date=fire_at.astimezone(planning.IST).date(),
            boundary=Boundary.ENTRY,
            fire_at=fire_at,
            strategy_version=version,
            owner=user,
            source="paper_test",
            source_ref=f"{fire_at.timestamp():.0f}",
            is_test=True,
            allocations=allocations,
        )
        event_record(
            kind="run.test_requested",
            message=f"Paper test of {strategy} at {fire_at.astimezone(planning.IST):%H:%M:%S}.",
            user_id=user.pk,
            run_id=run.pk,
        )
    # Only this run: real runs due the same second keep their own dispatch (and its wait).
    boundary_dispatch(fire_at=fire_at, wait=False, run_ids=[run.pk])
    return run


def calendar_ready_check(*, day: date) -> list[str]:
    """Before the open: warn admins (once a day, by email and in the audit trail) when an
    exchange's holiday calendar is not loaded for today or runs out within 30 days."""
    from django.core.mail import mail_admins

    from execution.models.engine import ExecutionEvent
    from execution.reference.calendar import coverage_warnings

    warnings = coverage_warnings(day)
    if not warnings:
        return []
    already = ExecutionEvent.objects.filter(
        kind="calendar.not_loaded", data__day=day.isoformat()
    ).exists()
    if not already:
        mail_admins(subject="Holiday calendar needs loading", message="\n".join(warnings))
        event_record(
            kind="calendar.not_loaded", message=" ".join(warnings), data={"day": day.isoformat()}
        )
    return warnings


def masters_ready_check_notify(*, day: date, brokers: set[str]) -> list[str]:
    """Before the open: warn admins (once a day per broker) when a broker that trades today
    has no master loaded today; its last good master (if any) stays in use."""
    from django.core.mail import mail_admins

    from execution.models.engine import ExecutionEvent
    from execution.reference.masters import masters_ready_check

    warnings = masters_ready_check(day=day, brokers=sorted(brokers))
    for broker, warning in warnings.items():
        already = ExecutionEvent.objects.filter(
            kind="master.not_loaded", data__day=day.isoformat(), data__broker=broker
        ).exists()
        if not already:
            mail_admins(subject=f"Instrument master not loaded today: {broker}", message=warning)
            event_record(
                kind="master.not_loaded",
                message=warning,
                data={"day": day.isoformat(), "broker": broker},
            )
    return list(warnings.values())


def accounts_ready_check(*, day: date | None = None) -> list[Any]:
    """Before the open: every account with a run today must have a login from today, a
    registered static IP (real brokers) and funds. Problems are stored per account and day
    (shown on the runs page) and emailed to the owner once a day."""
    from django.core.mail import send_mail

    from brokers.base import BrokerError
    from brokers.models import BrokerAccount
    from brokers.registry import get_adapter
    from execution.models.engine import AccountReadiness, RunState
    from execution.protection import risk

    day = day or planning.today_ist()
    calendar_ready_check(day=day)
    account_ids = {
        a["account_id"]
        for allocations in ScheduledRun.objects.filter(
            session_date=day, state=RunState.PLANNED
        ).values_list("allocations", flat=True)
        for a in allocations
    }
    accounts = list(BrokerAccount.objects.filter(pk__in=account_ids).select_related("owner"))
    masters_ready_check_notify(day=day, brokers={a.broker for a in accounts if not a.is_paper})
    results = []
    for account in accounts:
        problems = risk.account_checks(account=account, day=day, is_test=False)
        if not problems:
            try:
                funds = get_adapter(account).funds()
                if funds.available <= 0:
                    problems.append(f"{account.label}: no funds available at the broker.")
            except BrokerError as exc:
                problems.append(f"{account.label}: funds could not be read ({exc.message}).")
        readiness, _ = AccountReadiness.objects.update_or_create(
            session_date=day,
            account=account,
            defaults={"ready": not problems, "problems": problems, "checked_at": timezone.now()},
        )
        if problems and readiness.notified_at is None:
            send_mail(
                subject=f"Not ready to trade today: {account.label}",
                message="Your strategies will not trade on this account until you fix:\n- "
                + "\n- ".join(problems),
                from_email=None,
                recipient_list=[account.owner.email],
            )
            readiness.notified_at = timezone.now()
            readiness.save(update_fields=["notified_at"])
            event_record(
                kind="account.not_ready",
                message="; ".join(problems),
                user_id=account.owner_id,
                account_id=account.pk,
            )
        results.append(readiness)
    return results


FUNDS_CACHE_SECONDS = 15


def funds_cache_key(account_id: int) -> str:
    return f"desk:funds:{account_id}"


def account_funds_read(*, account: Any, seconds: int = FUNDS_CACHE_SECONDS) -> tuple[Any, str]:
    """Read one account's funds at its broker and keep them 15 s for the dashboard; a broker
    error is kept as the problem to show (so a failing broker is not asked again at once)."""
    from django.core.cache import cache

    from brokers.base import BrokerError
    from brokers.registry import get_adapter

    try:
        result: tuple[Any, str] = (get_adapter(account).funds(), "")
    except BrokerError as exc:
        result = (None, f"Funds could not be read: {exc.message}")
    cache.set(funds_cache_key(account.pk), result, seconds)
    return result
