"""Analytics read from what the engine recorded: order timings, broker outcomes, fills and the
positions they made. Nothing is simulated or typed in; a figure the records cannot give (a
charge rate missing for a date, a reference price the engine never stored) is left out and said.

Every selector runs a fixed number of queries however many orders or runs there are, and sees
only the user's own runs (`run.owner`): a subscriber's deployment runs are the subscriber's,
not the strategy creator's.
"""

from __future__ import annotations

import datetime
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from django.db.models import Q
from django.shortcuts import get_object_or_404

from brokers.models import Broker
from execution.models import (
    BrokerageRate,
    ChargeRate,
    ExecutionEvent,
    Fill,
    IntentState,
    OrderIntent,
    Position,
)
from execution.reference.charges import (
    SEGMENT_EXCHANGE,
    ChargeBreakdown,
    ChargeFill,
    ChargeRateMissing,
    charges_compute,
)

PAPER = Broker.PAPER.value
ONE_MS = datetime.timedelta(microseconds=1)
TENTH = Decimal("0.1")
PAISA = Decimal("0.01")


def mode_of(broker: str) -> str:
    """Paper and live figures are never mixed: every row says which it is."""
    return "paper" if broker == PAPER else "live"


# Which runs an analytics page counts: the same choice on every page, shown as a filter.
RUN_KINDS = {"live": "Live", "paper": "Paper", "test": "Paper tests (Test now)"}
DEFAULT_KINDS = ("live", "paper")


def kinds_q(kinds: Sequence[str], prefix: str = "") -> Q:
    """Rows (orders, positions; fills with prefix "intent__") of runs of these kinds: live
    (a real broker), paper (the paper broker, planned runs) and test (paper test runs)."""
    is_test, broker = f"{prefix}run__is_test", f"{prefix}account__broker"
    condition = Q(pk__in=[])
    if "test" in kinds:
        condition |= Q(**{is_test: True})
    if "paper" in kinds:
        condition |= Q(**{is_test: False, broker: PAPER})
    if "live" in kinds:
        condition |= Q(**{is_test: False}) & ~Q(**{broker: PAPER})
    return condition


# --- latency ---------------------------------------------------------------------------------
def milliseconds(delta: datetime.timedelta) -> Decimal:
    """Exact milliseconds (to the microsecond) of a time difference; negative when early."""
    return Decimal(delta // ONE_MS) / 1000


def percentile(ordered: Sequence[Decimal], p: int) -> Decimal | None:
    """Nearest-rank percentile of sorted values: the smallest value with at least p% of the
    values at or below it. Always a latency that really happened, never an interpolation."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p * len(ordered) / 100))
    return ordered[rank - 1]


@dataclass(frozen=True)
class LatencyStats:
    count: int
    p50: Decimal | None
    p90: Decimal | None
    p99: Decimal | None
    max: Decimal | None

    @classmethod
    def of(cls, values: Sequence[Decimal]) -> LatencyStats:
        ordered = sorted(values)
        return cls(
            count=len(ordered),
            p50=percentile(ordered, 50),
            p90=percentile(ordered, 90),
            p99=percentile(ordered, 99),
            max=ordered[-1] if ordered else None,
        )


# --- equity curve (shared with the marketplace's verified track record) ----------------------
@dataclass(frozen=True)
class EquityPoint:
    day: Any
    pnl: Decimal
    cumulative: Decimal
    drawdown: Decimal  # rupees below the best cumulative so far (which starts at 0)


@dataclass(frozen=True)
class EquityCurve:
    points: list[EquityPoint]
    winning_days: int

    @property
    def total(self) -> Decimal:
        return self.points[-1].cumulative if self.points else Decimal(0)

    @property
    def max_drawdown(self) -> Decimal:
        return max((point.drawdown for point in self.points), default=Decimal(0))

    @property
    def win_rate_percent(self) -> Decimal:
        if not self.points:
            return Decimal(0)
        return (Decimal(self.winning_days) * 100 / len(self.points)).quantize(TENTH)


def equity_curve(daily: Sequence[tuple[Any, Decimal]]) -> EquityCurve:
    """Cumulative P&L and drawdown from daily P&L in day order. A winning day made money; a
    flat day is not a win."""
    points = []
    cumulative = peak = Decimal(0)
    winning = 0
    for day, pnl in daily:
        cumulative += pnl
        peak = max(peak, cumulative)
        winning += pnl > 0
        points.append(
            EquityPoint(day=day, pnl=pnl, cumulative=cumulative, drawdown=peak - cumulative)
        )
    return EquityCurve(points=points, winning_days=winning)


def closed_position_rows(*conditions: Q, **filters: Any) -> list[dict[str, Any]]:
    """Positions the engine opened and closed (net zero), with their run, account and
    strategy, in one query. Open positions have no realised P&L yet and are left out."""
    rows = Position.objects.filter(*conditions, net_quantity=0, **filters).values(
        "run_id",
        "run__session_date",
        "run__multiplier",
        "run__allocations",
        "run__source_ref",
        "run__strategy_version__strategy_id",
        "run__strategy_version__strategy__name",
        "account_id",
        "account__broker",
        "leg__lots",
        "buy_value",
        "sell_value",
    )
    return _rows(rows)


def _rows(values: Any) -> list[dict[str, Any]]:
    """A `.values()` query evaluated, typed as plain rows."""
    return cast(list[dict[str, Any]], list(values))


# --- execution timing ------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderTiming:
    intent_id: int
    run_id: int
    tag: str
    day: datetime.date
    strategy: str
    account: str
    broker: str
    side: str
    tradingsymbol: str
    intended_at: datetime.datetime
    sent_at: datetime.datetime
    send_ms: Decimal
    ack_ms: Decimal | None


@dataclass(frozen=True)
class TimingGroup:
    label: str
    send: LatencyStats
    ack: LatencyStats
    early: int


@dataclass(frozen=True)
class TimingReport:
    overall: TimingGroup
    by_day: list[TimingGroup]
    by_account: list[TimingGroup]
    by_strategy: list[TimingGroup]
    early_orders: list[OrderTiming]
    slowest: list[OrderTiming]


def _timing_group(label: str, orders: list[OrderTiming]) -> TimingGroup:
    return TimingGroup(
        label=label,
        send=LatencyStats.of([o.send_ms for o in orders]),
        ack=LatencyStats.of([o.ack_ms for o in orders if o.ack_ms is not None]),
        early=sum(o.send_ms < 0 for o in orders),
    )


def _grouped(orders: list[OrderTiming], key: Any) -> list[TimingGroup]:
    groups: dict[str, list[OrderTiming]] = defaultdict(list)
    for order in orders:
        groups[key(order)].append(order)
    return [_timing_group(label, rows) for label, rows in groups.items()]


def _account_label(label: str, broker: str) -> str:
    return f"{label} · {Broker(broker).label}" if broker in Broker.values else label


def timing_for_user(
    *,
    user: Any,
    start: datetime.date,
    end: datetime.date,
    slowest: int = 10,
    kinds: Sequence[str] = DEFAULT_KINDS,
) -> TimingReport:
    """How late each sent order left after its intended instant T, and how late the broker's
    acknowledgement came (both measured from T), on the user's sessions start..end."""
    rows = _rows(
        OrderIntent.objects.filter(
            kinds_q(kinds),
            run__owner=user,
            run__session_date__range=(start, end),
            sent_at__isnull=False,
        )
        .order_by("run__session_date", "intended_at", "id")
        .values(
            "id",
            "run_id",
            "tag",
            "run__session_date",
            "run__strategy_version__strategy__name",
            "account__label",
            "account__broker",
            "side",
            "tradingsymbol",
            "intended_at",
            "sent_at",
            "acked_at",
        )
    )
    orders = [
        OrderTiming(
            intent_id=row["id"],
            run_id=row["run_id"],
            tag=row["tag"],
            day=row["run__session_date"],
            strategy=row["run__strategy_version__strategy__name"],
            account=_account_label(row["account__label"], row["account__broker"]),
            broker=row["account__broker"],
            side=row["side"],
            tradingsymbol=row["tradingsymbol"],
            intended_at=row["intended_at"],
            sent_at=row["sent_at"],
            send_ms=milliseconds(row["sent_at"] - row["intended_at"]),
            ack_ms=None
            if row["acked_at"] is None
            else milliseconds(row["acked_at"] - row["intended_at"]),
        )
        for row in rows
    ]
    return TimingReport(
        overall=_timing_group("All orders", orders),
        by_day=_grouped(orders, lambda o: o.day.isoformat()),
        by_account=sorted(_grouped(orders, lambda o: o.account), key=lambda g: g.label),
        by_strategy=sorted(_grouped(orders, lambda o: o.strategy), key=lambda g: g.label),
        early_orders=[o for o in orders if o.send_ms < 0],
        slowest=sorted(orders, key=lambda o: (-o.send_ms, o.intent_id))[:slowest],
    )


# --- broker comparison -----------------------------------------------------------------------
# How an order whose outcome was unknown turned out, in words (the state it moved to).
RESOLUTION_WORDS: dict[str, str] = {
    IntentState.NEEDS_ATTENTION: "Not settled by the broker's books in time: needs attention",
    IntentState.ABANDONED: "Confirmed absent at the broker by its owner: not sent again",
    IntentState.ACKNOWLEDGED: "Found at the broker, open",
    IntentState.PARTIALLY_FILLED: "Found at the broker, partly filled",
    IntentState.FILLED: "Found at the broker, filled",
    IntentState.CANCELLED: "Found at the broker, cancelled",
    IntentState.REJECTED: "Found at the broker, rejected",
}


@dataclass
class BrokerRow:
    account_id: int
    account: str
    mode: str
    orders: int = 0
    acknowledged: int = 0
    ack_latency: LatencyStats = field(default_factory=lambda: LatencyStats.of([]))
    rejected: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    unknown: int = 0
    resolutions: list[tuple[str, int]] = field(default_factory=list)
    unresolved: int = 0
    filled: int = 0
    # Slippage of filled orders against the quote the engine resolved at T - ε (the intent's
    # reference price), in rupees: positive when the fill was worse than that quote (a BUY
    # paid more, a SELL got less). Orders without a reference price are not counted.
    slippage_orders: int = 0
    slippage_rupees: Decimal = Decimal(0)
    slippage_reference_value: Decimal = Decimal(0)

    @property
    def rejection_percent(self) -> Decimal | None:
        if not self.orders:
            return None
        return (Decimal(self.rejected) * 100 / self.orders).quantize(TENTH)

    @property
    def slippage_percent(self) -> Decimal | None:
        """Slippage as % of the traded value at the reference prices (quantity-weighted)."""
        if not self.slippage_reference_value:
            return None
        return (self.slippage_rupees * 100 / self.slippage_reference_value).quantize(
            Decimal("0.01")
        )


def slippage_rupees(*, side: str, reference: Decimal, average: Decimal, quantity: int) -> Decimal:
    """Rupees lost against the reference quote on `quantity` filled units (negative: gained)."""
    per_unit = average - reference if side == "BUY" else reference - average
    return per_unit * quantity


def broker_comparison_for_user(
    *,
    user: Any,
    start: datetime.date,
    end: datetime.date,
    top_reasons: int = 3,
    kinds: Sequence[str] = DEFAULT_KINDS,
) -> list[BrokerRow]:
    """Per broker account, the orders sent on sessions start..end: acknowledgement latency (from
    the send to the broker's answer), rejections with their most frequent reasons, and orders
    whose outcome was unknown with how each was resolved, and the fills' slippage against the
    reference quote the engine resolved at T - ε. Two queries."""
    intents = OrderIntent.objects.filter(
        kinds_q(kinds),
        run__owner=user,
        run__session_date__range=(start, end),
        sent_at__isnull=False,
    )
    rows = _rows(
        intents.order_by("account__label", "account_id").values(
            "id",
            "account_id",
            "account__label",
            "account__broker",
            "state",
            "sent_at",
            "acked_at",
            "error",
            "filled_quantity",
            "side",
            "reference_price",
            "average_price",
        )
    )
    # Rejections and unknown outcomes come from the audit trail: an order rejected and then
    # moved to another account, or unknown and later found, no longer shows it in its state.
    events = ExecutionEvent.objects.filter(
        user_id=user.pk, intent_id__in=intents.values("pk")
    ).filter(Q(kind__in=["order.rejected", "order.unknown"]) | Q(data__from=IntentState.UNKNOWN))
    rejected_message: dict[int, str] = {}
    went_unknown: set[int] = set()
    resolved_to: dict[int, str] = {}
    for event in _rows(events.order_by("at", "id").values("intent_id", "kind", "message", "data")):
        if event["kind"] == "order.rejected":
            rejected_message[event["intent_id"]] = event["message"]
        if event["kind"] == "order.unknown":
            went_unknown.add(event["intent_id"])
        if (event["data"] or {}).get("from") == IntentState.UNKNOWN:
            resolved_to[event["intent_id"]] = event["data"].get("to", "")

    by_account: dict[int, BrokerRow] = {}
    acks: dict[int, list[Decimal]] = defaultdict(list)
    reasons: dict[int, Counter[str]] = defaultdict(Counter)
    resolutions: dict[int, Counter[str]] = defaultdict(Counter)
    for row in rows:
        account_id = row["account_id"]
        report = by_account.setdefault(
            account_id,
            BrokerRow(
                account_id=account_id,
                account=_account_label(row["account__label"], row["account__broker"]),
                mode=mode_of(row["account__broker"]),
            ),
        )
        report.orders += 1
        report.filled += row["filled_quantity"] > 0
        if row["filled_quantity"] and row["reference_price"] and row["average_price"]:
            report.slippage_orders += 1
            report.slippage_rupees += slippage_rupees(
                side=row["side"],
                reference=row["reference_price"],
                average=row["average_price"],
                quantity=row["filled_quantity"],
            )
            report.slippage_reference_value += row["reference_price"] * row["filled_quantity"]
        if row["acked_at"] is not None:
            report.acknowledged += 1
            acks[account_id].append(milliseconds(row["acked_at"] - row["sent_at"]))
        if row["id"] in rejected_message:
            report.rejected += 1
            reason = row["error"] or rejected_message[row["id"]] or "No reason given."
            reasons[account_id][reason.strip()[:200]] += 1
        if row["id"] in went_unknown or row["id"] in resolved_to:
            report.unknown += 1
            if row["state"] == IntentState.UNKNOWN:
                report.unresolved += 1
            elif row["id"] in resolved_to:
                to = resolved_to[row["id"]]
                resolutions[account_id][RESOLUTION_WORDS.get(to, to)] += 1
    for account_id, report in by_account.items():
        report.ack_latency = LatencyStats.of(acks[account_id])
        report.reasons = reasons[account_id].most_common(top_reasons)
        report.resolutions = resolutions[account_id].most_common()
    return list(by_account.values())


# --- cost per strategy -----------------------------------------------------------------------
@dataclass
class CostRow:
    strategy_id: int
    strategy: str
    mode: str
    month: datetime.date  # first day of the month
    charges: ChargeBreakdown = field(default_factory=ChargeBreakdown)
    gross_pnl: Decimal = Decimal(0)
    orders_without_rate: int = 0  # orders whose date has no rate row: not counted above

    @property
    def net_pnl(self) -> Decimal:
        return self.gross_pnl - self.charges.total

    @property
    def percent_of_gross(self) -> Decimal | None:
        """Charges as % of gross P&L; only meaningful while the strategy made money."""
        if self.gross_pnl <= 0:
            return None
        return (self.charges.total * 100 / self.gross_pnl).quantize(TENTH)


def _month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def costs_for_user(
    *,
    user: Any,
    start: datetime.date,
    end: datetime.date,
    kinds: Sequence[str] = DEFAULT_KINDS,
    strategy_id: int | None = None,
) -> list[CostRow]:
    """Brokerage, taxes and fees of the user's filled orders per strategy, paper or live, and
    month, beside the gross P&L of the positions closed in that month. Charges are computed per
    account and session day (a contract note's scope) from the rate rows in force that day.
    Runs of `kinds` only (default: live and paper, tests left out). Four queries."""
    window: dict[str, Any] = {"run__owner": user, "run__session_date__range": (start, end)}
    if strategy_id is not None:
        window["run__strategy_version__strategy_id"] = strategy_id
    fills = Fill.objects.filter(
        kinds_q(kinds, "intent__"), **{f"intent__{key}": value for key, value in window.items()}
    ).values(
        "intent_id",
        "quantity",
        "price",
        "intent__side",
        "intent__exchange",
        "intent__account_id",
        "intent__account__broker",
        "intent__run__session_date",
        "intent__run__strategy_version__strategy_id",
        "intent__run__strategy_version__strategy__name",
    )
    notes: dict[tuple[Any, ...], list[ChargeFill]] = defaultdict(list)
    names: dict[int, str] = {}
    for row in fills:
        strategy_id = row["intent__run__strategy_version__strategy_id"]
        names[strategy_id] = row["intent__run__strategy_version__strategy__name"]
        key = (
            strategy_id,
            row["intent__account__broker"],
            row["intent__account_id"],
            row["intent__run__session_date"],
        )
        notes[key].append(
            ChargeFill(
                order_ref=row["intent_id"],
                side=row["intent__side"],
                quantity=row["quantity"],
                price=row["price"],
                exchange=SEGMENT_EXCHANGE.get(row["intent__exchange"], row["intent__exchange"]),
            )
        )
    charge_rates = list(ChargeRate.objects.all())
    brokerage_rates = list(BrokerageRate.objects.all())
    table: dict[tuple[int, str, datetime.date], CostRow] = {}

    def row_for(strategy_id: int, mode: str, day: datetime.date) -> CostRow:
        key = (strategy_id, mode, _month(day))
        if key not in table:
            table[key] = CostRow(
                strategy_id=strategy_id, strategy=names[strategy_id], mode=mode, month=key[2]
            )
        return table[key]

    for (strategy_id, broker, _account, day), charge_fills in notes.items():
        cost = row_for(strategy_id, mode_of(broker), day)
        try:
            cost.charges += charges_compute(
                fills=charge_fills,
                trade_date=day,
                broker=broker,
                charge_rates=charge_rates,
                brokerage_rates=brokerage_rates,
            )
        except ChargeRateMissing:
            cost.orders_without_rate += len({fill.order_ref for fill in charge_fills})
    for position in closed_position_rows(kinds_q(kinds), **window):
        strategy_id = position["run__strategy_version__strategy_id"]
        names.setdefault(strategy_id, position["run__strategy_version__strategy__name"])
        cost = row_for(
            strategy_id, mode_of(position["account__broker"]), position["run__session_date"]
        )
        cost.gross_pnl += position["sell_value"] - position["buy_value"]
    return sorted(
        table.values(), key=lambda r: (r.strategy.lower(), r.strategy_id, r.mode, r.month)
    )


# --- performance per strategy ----------------------------------------------------------------
@dataclass
class StrategyPerformance:
    strategy_id: int
    strategy: str
    mode: str
    curve: EquityCurve
    runs: int
    charges: Decimal = Decimal(0)
    orders_without_rate: int = 0
    brokerage_simulated: bool = False

    @property
    def net_pnl(self) -> Decimal:
        return self.curve.total - self.charges


def performance_for_user(
    *,
    user: Any,
    start: datetime.date,
    end: datetime.date,
    strategy_id: int | None = None,
    kinds: Sequence[str] = DEFAULT_KINDS,
) -> list[StrategyPerformance]:
    """Realised P&L per strategy, live and paper apart: daily and cumulative, maximum drawdown
    in rupees, win rate over traded days, runs that traded, and the charges of the period
    (see `costs_for_user`). Runs of `kinds` only, as on every analytics page. Five queries."""
    window: dict[str, Any] = {
        "run__owner": user,
        "run__session_date__range": (start, end),
    }
    if strategy_id is not None:
        window["run__strategy_version__strategy_id"] = strategy_id
    daily: dict[tuple[int, str], dict[datetime.date, Decimal]] = defaultdict(
        lambda: defaultdict(Decimal)
    )
    runs: dict[tuple[int, str], set[int]] = defaultdict(set)
    names: dict[int, str] = {}
    for row in closed_position_rows(kinds_q(kinds), **window):
        key = (row["run__strategy_version__strategy_id"], mode_of(row["account__broker"]))
        names[key[0]] = row["run__strategy_version__strategy__name"]
        daily[key][row["run__session_date"]] += row["sell_value"] - row["buy_value"]
        runs[key].add(row["run_id"])
    charges: dict[tuple[int, str], CostRow] = {}
    for cost in costs_for_user(
        user=user, start=start, end=end, kinds=kinds, strategy_id=strategy_id
    ):
        key = (cost.strategy_id, cost.mode)
        if key in charges:
            charges[key].charges += cost.charges
            charges[key].orders_without_rate += cost.orders_without_rate
        else:
            charges[key] = cost
    results = []
    for key, days in daily.items():
        curve = equity_curve([(day, pnl.quantize(PAISA)) for day, pnl in sorted(days.items())])
        period_cost = charges.get(key)
        results.append(
            StrategyPerformance(
                strategy_id=key[0],
                strategy=names[key[0]],
                mode=key[1],
                curve=curve,
                runs=len(runs[key]),
                charges=period_cost.charges.total if period_cost else Decimal(0),
                orders_without_rate=period_cost.orders_without_rate if period_cost else 0,
                brokerage_simulated=bool(period_cost and period_cost.charges.brokerage_simulated),
            )
        )
    # Live before paper, as real money comes first.
    return sorted(results, key=lambda p: (p.strategy.lower(), p.strategy_id, p.mode != "live"))


def analytics_strategy_get_for_user(*, user: Any, pk: int) -> Any:
    """A strategy the user owns or has runs of (a subscriber's deployments); 404 otherwise."""
    from trader.models import Strategy

    return get_object_or_404(
        Strategy.objects.filter(Q(owner=user) | Q(versions__scheduled_runs__owner=user)).distinct(),
        pk=pk,
    )
