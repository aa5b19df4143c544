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


# The columns Position.pnl(), realised() and unrealised() read.
POSITION_PNL_FIELDS = (
    "net_quantity",
    "buy_quantity",
    "sell_quantity",
    "buy_value",
    "sell_value",
    "last_price",
)


# What marketplace.disclosure's run row and run_display_state() read of a run.
RUN_ROW_FIELDS = (
    "session_date",
    "fire_at",
    "boundary",
    "is_test",
    "source",
    "state",
    "note",
    "exit_reason",
    "mtm",
    "price_source",
    "strategy_version__number",
    "strategy_version__strategy__name",
)


def open_positions_for_user(*, user: Any) -> list[Position]:
    """Open positions of every run on every broker (shown through marketplace.disclosure,
    which also consolidates them per contract)."""
    return list(
        Position.objects.filter(owner=user)
        .exclude(net_quantity=0)
        .select_related("account", "leg", "run__strategy_version__strategy")
        # What disclosure shows and the P&L needs, polled every 2 s: not every column of five
        # tables (nor the account's encrypted credentials, decrypted on load).
        .only(
            *POSITION_PNL_FIELDS,
            "tradingsymbol",
            "account__label",
            "leg__position",
            "run__strategy_version__strategy__name",
        )
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
    Four queries, two more (the rate rows) once something is filled."""
    from django.db.models import Q
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
        # entry_run_id is all the page reads of an exit run's entry: no join for it.
        ScheduledRun.objects.select_related("strategy_version__strategy"),
        pk=pk,
        owner=user,
    )
    entry_id = run.entry_run_id if run.boundary == "exit" and run.entry_run_id else run.pk
    # The run's own orders and those of the exit runs that close it (by run id, from a
    # subquery: an OR across the join would read every order of the table).
    own_runs = ScheduledRun.objects.filter(Q(pk=run.pk) | Q(entry_run_id=run.pk)).values("pk")
    # Only the columns the page, disclosure and the charges read: the fragment is polled
    # every 2 s, and the accounts' other columns include encrypted credentials.
    intents_qs = (
        OrderIntent.objects.filter(run_id__in=own_runs)
        .select_related("account", "leg")
        .only(
            "run_id",
            "purpose",
            "phase",
            "side",
            "exchange",
            "tradingsymbol",
            "quantity",
            "tag",
            "state",
            "intended_at",
            "sent_at",
            "acked_at",
            "filled_quantity",
            "average_price",
            "error",
            "account__label",
            "account__broker",
            "leg__position",
        )
        .order_by("intended_at", "account_id", "phase", "id")
    )
    positions_qs = (
        Position.objects.filter(run_id=entry_id)
        .select_related("account", "leg")
        .only(
            *POSITION_PNL_FIELDS,
            "run_id",
            "tradingsymbol",
            "last_price_at",
            "account__label",
            "leg__position",
        )
        .order_by("account_id", "tradingsymbol")
    )
    intents, positions = list(intents_qs), list(positions_qs)
    # The rows a black-box subscriber may see come from the one masking function, given the
    # rows read here (the run's own orders, its exits', the entry's positions).
    run._prefetched_objects_cache = {  # type: ignore[attr-defined]
        "intents": intents_qs,
        "positions": positions_qs,
    }
    # The page lists disclosure's order and position rows only for a black box.
    detail = disclosure.run_disclosed(user=user, run=run, rows="hidden")
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
    # Bare positions (their run not joined; `session_date` annotated): the desk counts them.
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


# The latest BOOK_ROWS orders and trades of each account, for today's runs of one trader. Written
# as SQL: the ORM's window-function filter (a QUALIFY emulated by a subquery) took more CPU to
# compile than the dashboard's other queries took to run, on a fragment polled every 3 s.
# raw() still applies the fields' converters (aware datetimes, Decimals) on every backend.
_BOOK_SQL = """
SELECT * FROM (
    SELECT {columns}, ROW_NUMBER() OVER (
        PARTITION BY o.account_id ORDER BY {at} DESC, {table}.id DESC
    ) AS book_rank
    FROM {source}
    JOIN execution_scheduledrun r ON r.id = o.run_id
    JOIN trader_strategyversion v ON v.id = r.strategy_version_id
    WHERE r.owner_id = %s AND r.session_date = %s{hidden}
) book
WHERE book_rank <= %s
ORDER BY {order}
"""


def _book_query(
    *,
    model: Any,
    source: str,
    table: str,
    columns: str,
    at: str,
    order: str,
    user: Any,
    day: Any,
    hidden: set[int],
) -> Any:
    # Black boxes' strategies are left out by id (ints, bound as parameters).
    excluded = f" AND v.strategy_id NOT IN ({', '.join(['%s'] * len(hidden))})" if hidden else ""
    sql = _BOOK_SQL.format(
        columns=columns, at=at, table=table, source=source, hidden=excluded, order=order
    )
    return model.objects.raw(sql, [user.pk, day, *sorted(hidden), BOOK_ROWS])


def _book_orders(*, user: Any, day: Any, hidden: set[int]) -> Any:
    """OrderIntents with only what the order book shows loaded, newest first per account."""
    return _book_query(
        model=OrderIntent,
        source="execution_orderintent o",
        table="o",
        columns="o.id, o.account_id, o.intended_at, o.side, o.tradingsymbol, "
        "o.filled_quantity, o.quantity, o.state",
        at="o.intended_at",
        order="account_id, intended_at DESC, id DESC",
        user=user,
        day=day,
        hidden=hidden,
    )


def _book_trades(*, user: Any, day: Any, hidden: set[int]) -> Any:
    """Fills with their order's side, contract and account (`side`, `tradingsymbol`,
    `account_id` on each), newest first."""
    from execution.models.engine import Fill

    return _book_query(
        model=Fill,
        source="execution_fill f JOIN execution_orderintent o ON o.id = f.intent_id",
        table="f",
        columns="f.id, f.intent_id, f.filled_at, f.quantity, f.price, o.account_id, o.side, "
        "o.tradingsymbol",
        at="f.filled_at",
        order="filled_at DESC, id DESC",
        user=user,
        day=day,
        hidden=hidden,
    )


def desk_for_user(*, user: Any, now: Any = None) -> Desk:
    """Money on the dashboard: funds and margin per account, today's realised and unrealised
    P&L across brokers, open positions, today's runs, each account's latest orders and trades.
    A fixed number of queries whatever the number of orders (funds come from a short cache)."""
    from django.db.models import F, Q
    from django.utils import timezone

    from brokers.models import BrokerAccount
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
    # today), in one query. The desk sums and counts them: only the run's date is joined.
    positions = list(
        Position.objects.filter(Q(run__session_date=today) | ~Q(net_quantity=0), owner=user)
        .annotate(session_date=F("run__session_date"))
        .order_by("pk")
    )
    today_positions = [p for p in positions if p.session_date == today]
    pnl = runs.run_pnl(today_positions)
    open_positions: list[Position] = [p for p in today_positions if p.net_quantity]
    open_positions += [p for p in positions if p.net_quantity and p.session_date != today]
    todays_runs = list(
        ScheduledRun.objects.filter(owner=user, session_date=today)
        .select_related("strategy_version__strategy")
        .only(*RUN_ROW_FIELDS)
        .order_by("fire_at", "id")
    )
    from marketplace import disclosure

    # A black box's orders and trades name its contracts, sizes and times: the books leave them
    # out (counted), as marketplace.disclosure decides which strategies those are.
    hidden_by_strategy = disclosure.hidden_titles(
        user=user, strategy_ids={r.strategy_version.strategy_id for r in todays_runs}
    )
    hidden = set(hidden_by_strategy)
    run_rows = []
    live = bool(open_positions)
    shown_rows = disclosure.runs_disclosed(user=user, runs=todays_runs, hidden=hidden_by_strategy)
    for run, shown in zip(todays_runs, shown_rows, strict=True):
        state, label = runs.run_display_state(run, now)
        run_rows.append({"run": run, "shown": shown, "state": state, "label": label})
        live = live or state in ("planned", "dispatched")
    for order in _book_orders(user=user, day=today, hidden=hidden):
        money[order.account_id].orders.append(order)
        live = live or order.state in runs.UNSETTLED_INTENT_STATES
    for fill in _book_trades(user=user, day=today, hidden=hidden):
        money[fill.account_id].trades.append(fill)
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
