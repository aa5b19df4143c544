"""Engine services: planning with dispatch scheduling, paper test runs."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from execution import conf, dispatch, enqueue
from execution.audit import event_record
from execution.markettime import IST
from execution.models.engine import Boundary, ScheduledRun
from execution.planning import plan as planning
from execution.planning.sources import AccountAllocation
from execution.send.sender import engine_redis

logger = logging.getLogger(__name__)


def dispatch_schedule(*, fire_at: datetime) -> bool:
    """Enqueue the dispatch of instant `fire_at` once (Redis SET NX), to start its lead before
    it (sized from its planned orders). A duplicate dispatch is harmless anyway: it finds no
    planned run to claim."""
    key = f"execution:dispatch:{fire_at.isoformat()}"
    if not engine_redis().set(key, "1", nx=True, ex=86400):
        return False
    # The lead grows with the boundary: what grows with its number of orders is done before
    # T - ε, at the measured cost of one order (execution.dispatch.dispatch_lead).
    lead = dispatch.dispatch_lead(dispatch.expected_intents(fire_at))
    start = fire_at - timedelta(seconds=lead)
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


def paper_test_run(*, user: Any, strategy: Any, price_account: Any = None) -> ScheduledRun:
    """Run `strategy` now on the user's paper account(s): at the next whole second, any time
    of day, marked as a test. Real brokers are never sent an order by a test run; with
    `price_account` (one of the user's connected live accounts) the run is priced by that
    broker's quotes instead of the simulator ("paper on live prices"). Raises PaperTestError
    (nothing written) while a kill switch stops the user, without a version, without a paper
    account or for a price account that is not one of the user's live ones."""
    from brokers.models import Broker, BrokerAccount
    from execution.dispatch import boundary_dispatch
    from execution.protection.killswitch import kill_switches_engaged

    if kill_switches_engaged(user=user):
        raise PaperTestError("The kill switch is engaged: re-arm it before a test run.")
    version = strategy.current_version
    if version is None:
        raise PaperTestError("The strategy has no saved version yet.")
    if price_account is not None and (price_account.owner_id != user.pk or price_account.is_paper):
        raise PaperTestError("Prices can come only from one of your own live accounts.")
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
            session_date=fire_at.astimezone(IST).date(),
            boundary=Boundary.ENTRY,
            fire_at=fire_at,
            strategy_version=version,
            owner=user,
            source="paper_test",
            source_ref=f"{fire_at.timestamp():.0f}",
            is_test=True,
            allocations=allocations,
            price_account=price_account,
        )
        event_record(
            kind="run.test_requested",
            message=f"Paper test of {strategy} at {fire_at.astimezone(IST):%H:%M:%S}"
            + (f", priced by {price_account.label}'s quotes." if price_account else "."),
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
                else:
                    problems += margin_ready_check(account=account, day=day, funds=funds)
            except BrokerError as exc:
                problems.append(f"{account.label}: funds could not be read ({exc.message}).")
        if not problems and not account.is_paper:
            positions_differ_notify(account=account, day=day)
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


def margin_ready_check(*, account: Any, day: date, funds: Any) -> list[str]:
    """Part of the ready check: the broker's basket margin estimate of each entry run planned
    today on the account (where the broker offers one), summed, against the funds available.
    Only an estimate that was made and exceeds the funds is a problem; no estimate is not."""
    from brokers.models import BrokerAccount
    from execution.margin import strategy_margin_needed
    from execution.models.engine import RunState
    from execution.planning.sources import AccountAllocation
    from trader.india import rupees

    if not isinstance(account, BrokerAccount) or account.is_paper:
        return []
    needed = Decimal(0)
    runs = ScheduledRun.objects.filter(
        session_date=day, state=RunState.PLANNED, boundary=Boundary.ENTRY, is_test=False
    ).select_related("strategy_version__strategy__underlying")
    for run in runs:
        for data in run.allocations:
            if data.get("account_id") != account.pk:
                continue
            allocation = AccountAllocation.from_json(data)
            estimate = strategy_margin_needed(
                version=run.strategy_version,
                account=account,
                lots_for=lambda leg, a=allocation, m=run.multiplier: a.lots(leg.lots, m),
            )
            if estimate.amount is None:
                logger.info("no margin estimate for run %s: %s", run.pk, estimate.problem)
                return []
            needed += estimate.amount
    if needed > funds.available:
        return [
            f"{account.label}: margin needed for today's strategies, {rupees(needed)} "
            f"(the broker's estimate), exceeds the {rupees(funds.available)} available."
        ]
    return []


def positions_differ_notify(*, account: Any, day: date) -> list[str]:
    """Part of the ready check: the account's positions at its broker against ours. Each
    difference (a position opened outside the platform, one the broker does not show, or
    two quantities) is flagged to the owner, once a day per account, by email and as an
    audit event; it does not stop the account from trading. Returns the differences."""
    from django.core.mail import send_mail

    from execution.broker_positions import broker_positions_compare
    from execution.models.engine import ExecutionEvent

    compared = broker_positions_compare(account=account)
    lines = [d.words for d in compared.differences]
    if compared.problem:
        lines = [f"{account.label}: {compared.problem}"]
    if not lines:
        return []
    already = ExecutionEvent.objects.filter(
        kind="positions.differ", account_id=account.pk, data__day=day.isoformat()
    ).exists()
    if not already:
        event_record(
            kind="positions.differ",
            message=f"{account.label}: " + "; ".join(lines),
            user_id=account.owner_id,
            account_id=account.pk,
            data={"day": day.isoformat()},
        )
        try:
            send_mail(
                subject=f"Positions at your broker differ from ours: {account.label}",
                message="Your broker shows positions that our records do not match:\n- "
                + "\n- ".join(lines)
                + "\n\nThe kill switch closes positions opened outside the platform only "
                "when you choose 'Flatten everything' on the Positions page.",
                from_email=None,
                recipient_list=[account.owner.email],
            )
        except Exception:  # the audit event and the positions page still show it
            logger.exception("could not email the owner of account %s", account.pk)
    return lines


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


def runs_held_notify(*, run_ids: list[int]) -> int:
    """Email the owner of each live run held at dispatch for want of a fresh price ("no fresh
    price: not sent"), once per run (an audit event records it). Paper test runs are not
    mailed. Returns the number of emails sent; a mail failure is logged, the run note and its
    event remain."""

    from django.core.mail import send_mail

    from execution.models.engine import ExecutionEvent, RunState

    already = {
        pk
        for pk in ExecutionEvent.objects.filter(
            kind="run.held_mailed", run_id__in=run_ids
        ).values_list("run_id", flat=True)
        if pk is not None
    }
    runs = (
        ScheduledRun.objects.filter(pk__in=run_ids, state=RunState.SKIPPED, is_test=False)
        .exclude(pk__in=already)
        .select_related("owner", "strategy_version__strategy")
    )
    sent = 0
    for run in runs:
        if "no fresh price" not in run.note.lower() or not run.owner.email:
            continue
        strategy = run.strategy_version.strategy
        try:
            send_mail(
                subject=f"Not sent: no fresh price for {strategy}",
                message=(
                    f"Your strategy {strategy} was due at "
                    f"{run.fire_at.astimezone(IST):%H:%M:%S} IST on "
                    f"{run.session_date:%d %b %Y}, and no order was sent:\n\n{run.note}\n\n"
                    "A live run is never priced from an old quote or from the simulated "
                    "market. Check that your broker account is connected (Brokers page)."
                ),
                from_email=None,
                recipient_list=[run.owner.email],
            )
        except Exception:  # the run's note and its event remain on the runs page
            logger.exception("could not email the owner of held run %s", run.pk)
            continue
        event_record(
            kind="run.held_mailed",
            message=f"Owner emailed: {run.note}",
            user_id=run.owner_id,
            run_id=run.pk,
        )
        sent += 1
    return sent


def strategy_paper_price_set(*, user: Any, strategy: Any, account: Any) -> Any:
    """Choose (or, with None, clear) the live account whose quotes price `strategy`'s runs on
    paper accounts ("paper on live prices"). Only the owner's own live accounts; saving
    re-plans today's runs (execution.planning.replan). Audited."""
    if strategy.owner_id != user.pk:
        raise PermissionError("Only the strategy's owner can choose its price source.")
    if account is not None and (account.owner_id != user.pk or account.is_paper):
        raise ValueError("Prices can come only from one of your own live accounts.")
    with transaction.atomic():
        strategy.paper_price_account = account
        strategy.save(update_fields=["paper_price_account", "updated_at"])
        event_record(
            kind="strategy.price_source",
            message=f"{strategy}: paper runs priced by "
            + (f"{account.label}'s quotes." if account else "the simulated market."),
            user_id=user.pk,
        )
    return strategy
