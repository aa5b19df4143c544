"""Watching open runs: mark-to-market about every second and the exits it triggers.

Per leg: stop-loss and target in points or % of the entry premium. Per run: combined stop-loss,
target and trailing stop on the run's MTM in rupees. Intraday runs still open a few minutes
before the close are squared off. Each exit writes closing intents (shorts bought back first)
and sends them at once; a run or a position is exited once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from execution import conf, enqueue
from execution.audit import event_build, events_record
from execution.dbfunctions import rows_update
from execution.intents.build import batches_for, close_intents, position_freeze
from execution.intents.marketable import ContractQuotes
from execution.market import default_market
from execution.market.broker import live_prices
from execution.markettime import IST
from execution.models.engine import (
    Boundary,
    IntentState,
    OrderIntent,
    Position,
    Purpose,
    ScheduledRun,
)
from execution.orders.runs import simulated_session
from execution.protection import risk
from execution.reference import calendar
from trader.india import rupees

logger = logging.getLogger(__name__)

_CLOSING_OPEN = (
    IntentState.INTENT,
    IntentState.SENT,
    IntentState.ACKNOWLEDGED,
    IntentState.UNKNOWN,
    IntentState.NEEDS_ATTENTION,
    IntentState.PARTIALLY_FILLED,
)


def _leg_exit(position: Position, ltp: Decimal) -> str | None:
    """Why this leg's own stop-loss or target fired, or None."""
    leg = position.leg
    entry = position.average_entry
    if leg is None or entry is None or position.net_quantity == 0:
        return None
    # Favourable move in points: a long gains when the price rises, a short when it falls.
    move = (ltp - entry) if position.net_quantity > 0 else (entry - ltp)

    def threshold(value: Decimal | None, unit: str) -> Decimal | None:
        if value is None:
            return None
        return entry * value / 100 if unit == "percent" else value

    stop = threshold(leg.stop_loss, leg.stop_loss_unit)
    target = threshold(leg.target, leg.target_unit)
    if stop is not None and -move >= stop:
        return f"leg stop-loss ({position.tradingsymbol} at {ltp})"
    if target is not None and move >= target:
        return f"leg target ({position.tradingsymbol} at {ltp})"
    return None


def _run_exit(run: ScheduledRun, mtm: Decimal, peak: Decimal) -> str | None:
    version = run.strategy_version
    if version.stop_loss_mtm is not None and mtm <= -version.stop_loss_mtm:
        return f"combined stop-loss (MTM {rupees(mtm)})"
    if version.target_mtm is not None and mtm >= version.target_mtm:
        return f"combined target (MTM {rupees(mtm)})"
    if version.trailing_stop_mtm is not None and peak - mtm >= version.trailing_stop_mtm:
        return f"trailing stop (MTM {rupees(mtm)}, best {rupees(peak)})"
    return None


def runs_watch(*, now: datetime | None = None, market: Any = None, send: bool = True) -> int:
    """Mark every run with open positions to market and fire the exits due; returns the number
    of runs watched. Closing orders are committed, then sent at once by account tasks."""
    now = now or timezone.now()
    positions = list(
        Position.objects.exclude(net_quantity=0)
        .select_related(
            "run__strategy_version__strategy__underlying", "run__price_account", "leg", "account"
        )
        .filter(run__boundary=Boundary.ENTRY)
    )
    # A market passed in (tests) prices everything; otherwise live accounts are marked with
    # their broker's quotes (never older than the freshness bound) and paper ones with the
    # simulator.
    prices: Any = ContractQuotes(market or default_market(), now)
    if market is None:
        prices = live_prices(positions, simulated=prices, now=now)
    closing_open = set(
        OrderIntent.objects.filter(
            state__in=_CLOSING_OPEN,
            purpose__in=[Purpose.STOP, Purpose.SQUARE_OFF, Purpose.EXIT, Purpose.FLATTEN],
            account_id__in={p.account_id for p in positions},
        ).values_list("account_id", "tradingsymbol")
    )
    by_run: dict[int, list[Position]] = defaultdict(list)
    for position in positions:
        by_run[position.run_id].append(position)
    to_close: list[tuple[ScheduledRun, list[Position], str, str]] = []
    windows: dict[tuple[Any, str], Any] = {}  # the calendar asked once per day and exchange
    purpose: str
    runs = []
    for run_positions in by_run.values():
        run = run_positions[0].run
        runs.append(run)
        mtm = Decimal(0)
        legs_to_close = []
        unpriced = False
        for position in run_positions:
            ltp = prices.ltp(
                broker=position.account.broker,
                tradingsymbol=position.tradingsymbol,
                run_id=position.run_id,
            )
            if ltp is None:
                unpriced = True
                continue
            position.last_price = ltp
            position.last_price_at = _quoted_at(prices, position, now)
            mtm += position.pnl(ltp)
            reason = _leg_exit(position, ltp)
            if reason and (position.account_id, position.tradingsymbol) not in closing_open:
                legs_to_close.append((position, reason))
        run.mtm = mtm.quantize(Decimal("0.01"))
        run.peak_mtm = max(run.peak_mtm, run.mtm)
        open_positions = [
            p for p in run_positions if (p.account_id, p.tradingsymbol) not in closing_open
        ]
        # An MTM missing a leg's price is not the run's MTM: no combined exit fires on it.
        run_exits = not run.exit_reason and not unpriced
        reason = _run_exit(run, run.mtm, run.peak_mtm) if run_exits else None
        if reason is None and run_exits:
            reason = _source_limit_exit(run)
        if reason is None and not run.exit_reason and _square_off_due(run, now, windows):
            reason = "intraday square-off before the close"
            if run.is_test and simulated_session(run, now) is not None:
                reason = "square-off at its exit time in the simulated session"
        if reason and open_positions:
            run.exit_reason = reason
            purpose = Purpose.SQUARE_OFF if "square-off" in reason else Purpose.STOP
            to_close.append((run, open_positions, purpose, reason))
        else:
            for position, leg_reason in legs_to_close:
                to_close.append((run, [position], Purpose.STOP, leg_reason))
    _stale_alert(getattr(prices, "stale", {}), positions)
    with transaction.atomic():
        rows_update(runs, ("mtm", "peak_mtm", "exit_reason"))
        rows_update(positions, ("last_price", "last_price_at"))
        intents: list[OrderIntent] = []
        events = []
        accounts = {p.account_id: p.account for p in positions}
        freezes: dict[tuple[int, Any], int] = {}

        def freeze(position: Position) -> int:
            """position_freeze, read once per underlying and day in this pass."""
            run = position.run
            key = (run.strategy_version.strategy.underlying_id, run.session_date)
            if key not in freezes:
                freezes[key] = position_freeze(position)
            return freezes[key]

        for run, run_positions, purpose, reason in to_close:
            built = close_intents(
                run=run,
                positions=run_positions,
                accounts=accounts,
                purpose=purpose,
                intended_at=now,
                freeze=freeze,
                lot_size=lambda p: p.lot_size,
                quotes=prices,
            )
            intents.extend(built)
            events.append(
                event_build(
                    kind="run.exit",
                    message=f"Exit: {reason}; {len(built)} closing orders.",
                    user_id=run.owner_id,
                    run_id=run.pk,
                    data={"purpose": purpose, "mtm": str(run.mtm)},
                )
            )
        OrderIntent.objects.bulk_create(intents)
        events_record(events)
        if send and intents:
            payloads = [b.to_json() for b in batches_for(intents, fire_at=now)]
            for payload in payloads:
                payload["fire_at"] = None
            enqueue.account_sends_enqueue_on_commit(payloads)
    return len(runs)


def _quoted_at(prices: Any, position: Position, now: datetime) -> datetime:
    """When the price just given for the position was quoted (a broker's own time where it
    gives one; `now` for the simulator)."""
    quoted_at = getattr(prices, "quoted_at", None)
    if quoted_at is None:
        return now
    return quoted_at(broker=position.account.broker, tradingsymbol=position.tradingsymbol)  # type: ignore[no-any-return]


def _stale_alert(stale: dict[tuple[str, str], str], positions: list[Position]) -> None:
    """A position priced by no fresh quote is not marked and fires no exit; its owner is told
    in the run's events, once a minute per run."""
    from django.core.cache import cache

    if not stale:
        return
    events = []
    for position in positions:
        reason = stale.get((position.account.broker, position.tradingsymbol))
        if reason and cache.add(f"stale-price-alert:{position.run_id}", 1, timeout=60):
            events.append(
                event_build(
                    kind="price.stale",
                    message=f"Exits held: {reason}.",
                    user_id=position.owner_id,
                    run_id=position.run_id,
                    account_id=position.account_id,
                )
            )
    events_record(events)


def _source_limit_exit(run: ScheduledRun) -> str | None:
    """Why limits the run's source set (e.g. a marketplace deployment's own daily loss, in
    AccountAllocation.limits) end the run for the day, or None."""
    for allocation in run.allocations:
        reason = risk.source_limit_exit(limits=allocation.get("limits") or {}, mtm=run.mtm)
        if reason:
            return reason
    return None


def _square_off_due(
    run: ScheduledRun, now: datetime, windows: dict[tuple[Any, str], Any] | None = None
) -> bool:
    """`windows`: the session windows this pass already read, by (day, exchange)."""
    session = simulated_session(run, now) if run.is_test else None
    if session is not None:  # a paper test after hours exits at its time in the session
        return now >= session.exit_at
    strategy = run.strategy_version.strategy
    if strategy.kind != "intraday":
        return False
    key = (now.astimezone(IST).date(), strategy.underlying.exchange)
    if windows is None:
        windows = {}
    if key not in windows:
        windows[key] = calendar.session_window(*key)
    window = windows[key]
    if window is None:
        return False
    return now >= window[1] - timedelta(minutes=conf.square_off_minutes_before_close())
