"""A run's one truth for pages and its lifecycle after dispatch.

P&L: the run's MTM is the sum of its positions, realised plus unrealised (an open position that
was never marked counts its realised part only and is flagged); charges are computed apart from
the fills and never folded into the MTM. State: a dispatched run moves to a final state when it
is flat and nothing of it is open at a broker (`run_settle`), and a planned run whose time
passed without a dispatch becomes missed, with the reason (`runs_missed_mark`). The trader's
own exit (`run_exit`) writes closing orders the way the engine's exits do
(execution.protection.watch, execution.protection.killswitch): `close_intents`, shorts bought
back first, one account task per broker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from execution import conf, enqueue
from execution.audit import event_build, events_record
from execution.intents.build import batches_for, close_intents, position_freeze
from execution.intents.marketable import ContractQuotes
from execution.market import default_market
from execution.market.simulated import after_hours_time, in_session
from execution.models.engine import (
    Boundary,
    IntentState,
    OrderIntent,
    Position,
    Purpose,
    RunState,
    ScheduledRun,
)

logger = logging.getLogger(__name__)

ZERO = Decimal("0.00")
# Intents that are not final: the run cannot settle while any is left.
UNSETTLED_INTENT_STATES = (
    IntentState.INTENT,
    IntentState.SENT,
    IntentState.ACKNOWLEDGED,
    IntentState.UNKNOWN,
    IntentState.PARTIALLY_FILLED,
)
CLOSING_PURPOSES = (
    Purpose.EXIT,
    Purpose.STOP,
    Purpose.SQUARE_OFF,
    Purpose.FLATTEN,
    Purpose.MANUAL,
)


@dataclass(frozen=True)
class RunPnl:
    realised: Decimal
    unrealised: Decimal
    open_positions: int
    unmarked: int

    @property
    def mtm(self) -> Decimal:
        return self.realised + self.unrealised


def run_pnl(positions: Iterable[Position]) -> RunPnl:
    """Sum of the positions' realised and (marked) unrealised P&L."""
    realised = unrealised = ZERO
    open_positions = unmarked = 0
    for position in positions:
        realised += position.realised()
        if position.net_quantity:
            open_positions += 1
        value = position.unrealised()
        if value is None:
            unmarked += 1
        else:
            unrealised += value
    return RunPnl(realised, unrealised, open_positions, unmarked)


def missed_reason(run: ScheduledRun) -> str:
    return (
        f"Not dispatched: its time {timezone.localtime(run.fire_at):%H:%M:%S} passed with no "
        "dispatch (the platform's worker or scheduler was not running), so no order was sent."
    )


def is_missed(run: ScheduledRun, now: datetime | None = None) -> bool:
    """Planned, and past its time by more than the lateness the dispatcher accepts."""
    now = now or timezone.now()
    late = timedelta(seconds=conf.late_tolerance_seconds())
    return run.state == RunState.PLANNED and run.fire_at < now - late


def run_display_state(run: ScheduledRun, now: datetime | None = None) -> tuple[str, str]:
    """(state, label) as a page shows it: a planned run whose time passed is missed even
    before the reconciler has written so."""
    if is_missed(run, now):
        return RunState.MISSED, RunState.MISSED.label
    return run.state, run.get_state_display()


def runs_missed_mark(*, now: datetime | None = None) -> int:
    """Move planned runs whose time passed (beyond the lateness cap) to missed, with the
    reason; returns how many. Conditional on the state, so a dispatch that claims one first
    wins."""
    now = now or timezone.now()
    late = timedelta(seconds=conf.late_tolerance_seconds())
    runs = list(
        ScheduledRun.objects.filter(state=RunState.PLANNED, fire_at__lt=now - late).only(
            "pk", "fire_at", "owner_id"
        )[:500]
    )
    marked = 0
    for run in runs:
        with transaction.atomic():
            if not ScheduledRun.objects.filter(pk=run.pk, state=RunState.PLANNED).update(
                state=RunState.MISSED, note=missed_reason(run), finished_at=now
            ):
                continue
            events_record(
                [
                    event_build(
                        kind="run.missed",
                        message=missed_reason(run),
                        user_id=run.owner_id,
                        run_id=run.pk,
                    )
                ]
            )
            marked += 1
    return marked


def run_settle(*, run_id: int) -> str | None:
    """Move a dispatched run to its final state once nothing of it is open: every order final
    and (for an entry) every position flat. Entries that were closed early become exited,
    those closed by their exit run completed; an entry with no fill at all failed. Returns
    the new state, or None when the run is still open."""
    run = ScheduledRun.objects.filter(pk=run_id).first()
    if run is None or run.state not in (RunState.DISPATCHED, RunState.DONE, RunState.PARTIAL):
        return None
    if OrderIntent.objects.filter(
        Q(run_id=run.pk) | Q(run__entry_run_id=run.pk), state__in=UNSETTLED_INTENT_STATES
    ).exists():
        return None
    if run.boundary == Boundary.EXIT:
        state = RunState.COMPLETED
        message = "Exit run completed: every closing order is final."
    else:
        positions = list(Position.objects.filter(run_id=run.pk))
        if any(p.net_quantity for p in positions):
            return None
        if not positions:
            state, message = RunState.FAILED, "No order of the entry was filled."
        elif run.exit_reason:
            state, message = RunState.EXITED, f"Flat after an early exit: {run.exit_reason}."
        elif OrderIntent.objects.filter(
            run__entry_run_id=run.pk, purpose=Purpose.EXIT, filled_quantity__gt=0
        ).exists():
            state, message = RunState.COMPLETED, "Flat after its scheduled exit."
        else:
            state, message = RunState.EXITED, "Flat: closed outside its scheduled exit."
    pnl = run_pnl(Position.objects.filter(run_id=run.pk))
    with transaction.atomic():
        if not ScheduledRun.objects.filter(pk=run.pk, state=run.state).update(
            state=state, finished_at=timezone.now(), mtm=pnl.mtm
        ):
            return None
        events_record(
            [
                event_build(
                    kind=f"run.{state}",
                    message=message,
                    user_id=run.owner_id,
                    run_id=run.pk,
                    data={"mtm": str(pnl.mtm)},
                )
            ]
        )
    return state


def runs_settle(*, run_ids: Iterable[int]) -> None:
    """Settle these runs and the entries their exits close."""
    ids = set(run_ids)
    ids |= set(
        ScheduledRun.objects.filter(pk__in=ids, entry_run__isnull=False).values_list(
            "entry_run_id", flat=True
        )
    )
    for run_id in sorted(ids):
        run_settle(run_id=run_id)


class ExitError(ValueError):
    """Nothing to exit, or the exit cannot be written (in words for the trader)."""


def run_exit(
    *,
    actor: Any,
    run: ScheduledRun,
    position_ids: Sequence[int] | None = None,
    reason: str = "",
    send: bool = True,
    now: datetime | None = None,
) -> list[OrderIntent]:
    """Close the run's open positions (or only `position_ids`) on every broker of the run:
    the same closing orders as the engine's exits (shorts bought back before longs are sold,
    sliced by the freeze quantity), one audit event naming the trader, sent after the commit
    by the account tasks. Positions that already have a closing order in flight are left to
    it. Raises ExitError when nothing is left to close."""
    now = now or timezone.now()
    entry = run.entry_run if run.boundary == Boundary.EXIT and run.entry_run is not None else run
    with transaction.atomic():
        positions = list(
            Position.objects.select_for_update(of=("self",))
            .filter(run=entry)
            .exclude(net_quantity=0)
            .select_related("account", "run__strategy_version__strategy__underlying")
        )
        if position_ids is not None:
            wanted = set(position_ids)
            positions = [p for p in positions if p.pk in wanted]
        busy = set(
            OrderIntent.objects.filter(
                state__in=UNSETTLED_INTENT_STATES,
                purpose__in=CLOSING_PURPOSES,
                account_id__in={p.account_id for p in positions},
            ).values_list("account_id", "tradingsymbol")
        )
        positions = [p for p in positions if (p.account_id, p.tradingsymbol) not in busy]
        if not positions:
            raise ExitError(
                "Nothing to exit: no open position, or its closing orders are already working."
            )
        accounts = {p.account_id: p.account for p in positions}
        intents = close_intents(
            run=entry,
            positions=positions,
            accounts=accounts,
            purpose=Purpose.MANUAL,
            intended_at=now,
            freeze=position_freeze,
            lot_size=lambda p: p.lot_size,
            quotes=ContractQuotes(default_market(), now),
        )
        OrderIntent.objects.bulk_create(intents)
        whole = position_ids is None
        if whole and not entry.exit_reason:
            entry.exit_reason = (reason or f"exit pressed by {actor}")[:60]
            entry.save(update_fields=["exit_reason"])
        what = "the run" if whole else ", ".join(p.tradingsymbol for p in positions)
        events_record(
            [
                event_build(
                    kind="run.exit_manual",
                    message=f"Exit of {what} by {actor}: {len(intents)} closing orders on "
                    f"{len(accounts)} account(s)." + (f" Reason: {reason}" if reason else ""),
                    user_id=entry.owner_id,
                    run_id=entry.pk,
                    data={
                        "actor_id": getattr(actor, "pk", None),
                        "positions": [p.pk for p in positions],
                        "intents": [i.pk for i in intents],
                    },
                )
            ]
        )
        if send:
            payloads = [b.to_json() for b in batches_for(intents, fire_at=now)]
            for payload in payloads:
                payload["fire_at"] = None
            enqueue.account_sends_enqueue_on_commit(payloads)
    return intents


# --- paper at any hour ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SimulatedSession:
    """A paper test run fired outside market hours trades in the after-hours simulated
    session: the market moves `speed` times faster, and the run's exit comes when as much
    market time has passed as between the strategy's entry and exit times."""

    speed: int
    exit_at: datetime  # real instant of the exit
    market_time: datetime  # the simulated market's clock at `now`
    now: datetime

    @property
    def seconds_to_exit_now(self) -> int:
        return max(0, int((self.exit_at - self.now).total_seconds()))


def simulated_session(run: ScheduledRun, now: datetime | None = None) -> SimulatedSession | None:
    """The simulated session of a paper test run fired outside market hours, or None."""
    speed = default_market().after_hours_speed
    if not run.is_test or not speed or in_session(run.fire_at):
        return None
    version = run.strategy_version
    entry = datetime.combine(run.session_date, version.entry_time)
    exit_ = datetime.combine(run.session_date, version.exit_time)
    market_span = max(exit_ - entry, timedelta(minutes=1))
    now = now or timezone.now()
    return SimulatedSession(
        speed=speed,
        exit_at=run.fire_at + market_span / speed,
        market_time=after_hours_time(now, speed),
        now=now,
    )
