"""Reads of the engine for pages: always scoped to the user (`<noun>_get_for_user`)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from execution import enqueue
from execution.markettime import IST
from execution.models.engine import OrderIntent, Position, ScheduledRun


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


# --- the trading desk: live pages -----------------------------------------------------------
@dataclass
class RunPage:
    """Everything the run page and its live fragment show, read in a fixed number of queries
    whatever the number of orders."""

    run: ScheduledRun
    intents: list[OrderIntent]
    positions: list[Position]
    pnl: Any
    charges: Any
    charges_missing: bool
    state: str
    state_label: str
    live: bool
    poll_seconds: int
    simulated: Any = None
    now: Any = None
    # What the user may see of it (marketplace.disclosure): a black box's rows are masked.
    detail: Any = None

    @property
    def hidden(self) -> bool:
        return bool(self.detail and self.detail.run.hidden)

    @property
    def net(self) -> Decimal:
        return self.pnl.mtm - self.charges.total


def run_page_get_for_user(*, user: Any, pk: int, now: Any = None) -> RunPage:
    """The run, its orders (and those of the exit runs that close it), its positions, the
    P&L from those positions, charges from the fills, and whether the page must keep polling.
    Five queries, two more (the rate rows) once something is filled."""
    from django.utils import timezone

    from execution.models.charges import BrokerageRate, ChargeRate
    from execution.orders import runs
    from execution.reference.charges import (
        SEGMENT_EXCHANGE,
        ChargeBreakdown,
        ChargeFill,
        ChargeRateMissing,
        charges_compute,
    )
    from marketplace import disclosure

    run = get_object_or_404(
        ScheduledRun.objects.select_related("strategy_version__strategy", "entry_run"),
        pk=pk,
        owner=user,
    )
    entry_id = run.entry_run_id if run.boundary == "exit" and run.entry_run_id else run.pk
    # The run's own orders and those of the exit runs that close it (by id: an OR across the
    # join would read every order of the table).
    exits = ScheduledRun.objects.filter(entry_run_id=run.pk).values_list("pk", flat=True)
    intents_qs = (
        OrderIntent.objects.filter(run_id__in=[run.pk, *exits])
        .select_related("account", "leg")
        .order_by("intended_at", "account_id", "phase", "id")
    )
    positions_qs = (
        Position.objects.filter(run_id=entry_id)
        .select_related("account", "leg")
        .order_by("account_id", "tradingsymbol")
    )
    intents, positions = list(intents_qs), list(positions_qs)
    # The rows a black-box subscriber may see come from the one masking function, given the
    # rows read here (the run's own orders, its exits', the entry's positions).
    run._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "intents": intents_qs,
        "positions": positions_qs,
    }
    detail = disclosure.run_disclosed(user=user, run=run)
    filled = [i for i in intents if i.filled_quantity and i.average_price is not None]
    charges = ChargeBreakdown()
    missing = False
    if filled:
        charge_rates = list(ChargeRate.objects.all())
        brokerage_rates = list(BrokerageRate.objects.all())
        by_broker: dict[str, list[ChargeFill]] = defaultdict(list)
        for intent in filled:
            assert intent.average_price is not None
            by_broker[intent.account.broker].append(
                ChargeFill(
                    order_ref=intent.pk,
                    side=intent.side,
                    quantity=intent.filled_quantity,
                    price=intent.average_price,
                    exchange=SEGMENT_EXCHANGE.get(intent.exchange, intent.exchange),
                )
            )
        for broker, fills in by_broker.items():
            try:
                charges += charges_compute(
                    fills=fills,
                    trade_date=run.session_date,
                    broker=broker,
                    charge_rates=charge_rates,
                    brokerage_rates=brokerage_rates,
                )
            except ChargeRateMissing:
                missing = True
    state, label = runs.run_display_state(run, now)
    unsettled = any(i.state in runs.UNSETTLED_INTENT_STATES for i in intents)
    live = unsettled or any(p.net_quantity for p in positions) or state == "planned"
    # A run hours away changes only when its time comes: poll it slowly.
    poll = 2 if unsettled or state != "planned" else 15
    return RunPage(
        run=run,
        intents=intents,
        positions=positions,
        pnl=runs.run_pnl(positions),
        charges=charges,
        charges_missing=missing,
        state=state,
        state_label=label,
        live=live,
        poll_seconds=poll,
        simulated=runs.simulated_session(run, now) if run.is_test else None,
        now=now or timezone.now(),
        detail=detail,
    )


@dataclass
class RunRow:
    run: ScheduledRun
    state: str
    state_label: str
    mtm: Decimal | None
    shown: Any = None  # marketplace.disclosure's row: title, time and note as the user may see


def run_rows_for_user(*, user: Any, limit: int = 50, now: Any = None) -> tuple[list[RunRow], bool]:
    """The runs list with each run's MTM from its positions, and whether any of them can still
    change (the list keeps polling only then). Two queries."""
    from execution.orders import runs

    recent = list(
        ScheduledRun.objects.filter(owner=user)
        .select_related("strategy_version__strategy")
        .prefetch_related("positions")
        .order_by("-fire_at", "-id")[:limit]
    )
    from marketplace import disclosure

    rows = []
    live = False
    shown = disclosure.runs_disclosed(user=user, runs=recent)
    for run, disclosed in zip(recent, shown, strict=True):
        state, label = runs.run_display_state(run, now)
        positions = list(run.positions.all())
        pnl = runs.run_pnl(positions)
        rows.append(RunRow(run, state, label, pnl.mtm if positions else None, disclosed))
        live = live or state in ("planned", "dispatched") or bool(pnl.open_positions)
    return rows, live


# --- the dashboard ------------------------------------------------------------------------------
@dataclass
class AccountMoney:
    account: Any
    available: Decimal | None = None
    used: Decimal | None = None
    total: Decimal | None = None
    problem: str = ""
    orders: list[OrderIntent] = field(default_factory=list)
    trades: list[Any] = field(default_factory=list)


@dataclass
class Desk:
    accounts: list[AccountMoney]
    realised: Decimal
    unrealised: Decimal
    unmarked: int
    open_positions: list[Position]
    runs: list[Any]
    live: bool
    hidden_strategies: int = 0

    @property
    def total(self) -> Decimal:
        return self.realised + self.unrealised


BOOK_ROWS = 20  # latest orders and trades shown per account; the full books are on run pages
PAPER_FUNDS_SECONDS = 2


def account_funds(account: Any) -> tuple[Any, str]:
    """(Funds or None, problem) of one connected account from a 15-second cache. A page never
    waits on a broker: a missing figure is fetched by a task (once, whoever asks: 50 traders
    polling must not spend the broker's rate budget) and shown on the next refresh. The paper
    broker's book is in our database and is read at once."""
    from django.core.cache import cache

    from execution.services import FUNDS_CACHE_SECONDS, account_funds_read, funds_cache_key

    cached = cache.get(funds_cache_key(account.pk))
    if cached is not None:
        return cached
    if account.is_paper:  # our own database: kept only as long as a poll interval
        return account_funds_read(account=account, seconds=PAPER_FUNDS_SECONDS)
    if cache.add(f"{funds_cache_key(account.pk)}:asked", 1, FUNDS_CACHE_SECONDS):
        enqueue.task_enqueue(enqueue.ACCOUNT_FUNDS_READ, args=[account.pk])
    return None, "Reading funds from the broker…"


def account_funds_shown(account: Any) -> tuple[Any, str]:
    """(Funds or None, problem in words) of one account as the desk and the API show it: an
    account that is not connected is not asked."""
    if account.status != "connected":
        return None, f"{account.get_status_display()}: connect it again to read funds."
    return account_funds(account)


def desk_for_user(*, user: Any, now: Any = None) -> Desk:
    """Money on the dashboard: funds and margin per account, today's realised and unrealised
    P&L across brokers, open positions, today's runs, each account's latest orders and trades.
    A fixed number of queries whatever the number of orders (funds come from a short cache)."""
    from django.db.models import F, Q, Window
    from django.db.models.functions import RowNumber
    from django.utils import timezone

    from brokers.models import BrokerAccount
    from execution.models.engine import Fill
    from execution.orders import runs
    from execution.planning import plan as planning

    now = now or timezone.now()
    today = planning.today_ist()
    accounts = list(BrokerAccount.objects.filter(owner=user).order_by("broker", "label"))
    money = {a.pk: AccountMoney(account=a) for a in accounts}
    for row in money.values():
        funds, row.problem = account_funds_shown(row.account)
        if funds is not None:
            row.available, row.used, row.total = funds.available, funds.used, funds.total
    # Today's positions, and open positions of any day (a carried position is still open
    # today), in one query.
    positions = list(
        Position.objects.filter(Q(run__session_date=today) | ~Q(net_quantity=0), owner=user)
        .select_related("account", "run__strategy_version__strategy")
        .order_by("pk")
    )
    today_positions = [p for p in positions if p.run.session_date == today]
    pnl = runs.run_pnl(today_positions)
    open_positions = [p for p in today_positions if p.net_quantity] + [
        p for p in positions if p.net_quantity and p.run.session_date != today
    ]
    todays_runs = list(
        ScheduledRun.objects.filter(owner=user, session_date=today)
        .select_related("strategy_version__strategy")
        .order_by("fire_at", "id")
    )
    from marketplace import disclosure

    run_rows = []
    live = bool(open_positions)
    for run, shown in zip(
        todays_runs, disclosure.runs_disclosed(user=user, runs=todays_runs), strict=True
    ):
        state, label = runs.run_display_state(run, now)
        run_rows.append({"run": run, "shown": shown, "state": state, "label": label})
        live = live or state in ("planned", "dispatched")
    # A black box's orders and trades name its contracts, sizes and times: the books leave them
    # out (counted), as marketplace.disclosure decides which strategies those are.
    hidden = set(
        disclosure.hidden_titles(
            user=user, strategy_ids={r.strategy_version.strategy_id for r in todays_runs}
        )
    )
    latest = Window(
        expression=RowNumber(), partition_by=[F("account_id")], order_by=F("intended_at").desc()
    )
    orders = (
        OrderIntent.objects.filter(run__owner=user, run__session_date=today)
        .annotate(rank=latest)
        .order_by("account_id", "-intended_at", "-id")
    )
    if hidden:
        orders = orders.exclude(run__strategy_version__strategy_id__in=hidden)
    for order in orders.filter(rank__lte=BOOK_ROWS):
        money[order.account_id].orders.append(order)
        live = live or order.state in runs.UNSETTLED_INTENT_STATES
    trades = (
        Fill.objects.filter(intent__run__owner=user, intent__run__session_date=today)
        .select_related("intent")
        .annotate(
            rank=Window(
                expression=RowNumber(),
                partition_by=[F("intent__account_id")],
                order_by=F("filled_at").desc(),
            )
        )
        .order_by("-filled_at", "-id")
    )
    if hidden:
        trades = trades.exclude(intent__run__strategy_version__strategy_id__in=hidden)
    for fill in trades.filter(rank__lte=BOOK_ROWS):
        money[fill.intent.account_id].trades.append(fill)
    return Desk(
        accounts=list(money.values()),
        realised=pnl.realised,
        unrealised=pnl.unrealised,
        unmarked=pnl.unmarked,
        open_positions=open_positions,
        runs=run_rows,
        live=live,
        hidden_strategies=len(hidden),
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
    from execution.reference import calendar

    today = now.astimezone(IST).date()
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
