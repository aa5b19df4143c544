"""What a trader is shown of a run, its orders and positions: black boxes stay black.

A subscriber of a subscribe-only listing (SEBI's black-box algo) runs the creator's strategy on
their own accounts but may never learn its logic: no contract symbol, strike, quantity, leg
structure or exact time. Every page, htmx fragment, CSV and message that shows runs, orders or
positions builds its rows here, so the rule lives in one place: templates print the fields of
these rows and never reach into a run, an intent or a position themselves.

What a black-box subscriber does see: the listing's title, the day and the boundary ("entry",
"exit"), "leg N BUY/SELL", each order's state and lateness after T, the share filled, and P&L.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from marketplace.models import Listing, Visibility

HIDDEN = "hidden"
# Contract symbols in any broker's notation (NIFTY26D0826000CE, "NIFTY 26000 CE", …), strikes
# and clock times, scrubbed from free text such as a broker's error or a run's note.
_CONTRACT = re.compile(
    r"\b[A-Z][A-Z&-]{2,}\s?\d[\w ]*?(?:CE|PE|CALL|PUT)\b|\b\d{4,6}(?:\.\d+)?\s?(?:CE|PE)\b"
)
_TIME = re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\b")


def hidden_titles(*, user: Any, strategy_ids: Iterable[int]) -> dict[int, str]:
    """{strategy id: listing title} of the strategies whose logic `user` may not see: listed
    subscribe-only by someone else. One query."""
    ids = {pk for pk in strategy_ids if pk is not None}
    if not ids:
        return {}
    rows = (
        Listing.objects.filter(strategy_id__in=ids, visibility=Visibility.SUBSCRIBE_ONLY)
        .exclude(creator_id=getattr(user, "pk", None))
        .values_list("strategy_id", "title")
    )
    return dict(rows)


def scrub(text: str) -> str:
    """Free text without contract symbols, strikes or clock times."""
    return _TIME.sub("(time hidden)", _CONTRACT.sub("(contract hidden)", text or ""))


def _strategy_id(run: Any) -> int:
    return int(run.strategy_version.strategy_id)


@dataclass(frozen=True)
class RunRow:
    pk: int
    hidden: bool
    title: str
    session_date: datetime.date
    fire_at: datetime.datetime | None  # None when the exact time is hidden
    boundary: str
    is_test: bool
    source: str
    state: str
    note: str
    exit_reason: str
    mtm: Decimal
    price_source: str = ""  # which market priced the run (a broker's quotes or the simulator)


@dataclass(frozen=True)
class OrderRow:
    account: str
    leg: str  # "leg 2"
    side: str
    contract: str
    quantity: int | None
    tag: str
    intended_at: datetime.datetime | None
    sent_at: datetime.datetime | None
    lag_ms: Any
    ack_ms: Any
    acked: bool
    state: str
    error: str
    filled: str  # "50 of 75" or, hidden, "67 %"
    average_price: Decimal | None


@dataclass(frozen=True)
class PositionRow:
    run_pk: int
    title: str
    account: str
    contract: str
    net_quantity: int | None
    last_price: Decimal | None
    pnl: Decimal
    hidden: bool


@dataclass
class ConsolidatedRow:
    contract: str
    net_quantity: int | None = 0
    pnl: Decimal = Decimal(0)
    accounts: list[str] = field(default_factory=list)


def _run_row(run: Any, hidden_title: str | None) -> RunRow:
    hidden = hidden_title is not None
    strategy = run.strategy_version.strategy
    return RunRow(
        pk=run.pk,
        hidden=hidden,
        title=(
            f"{hidden_title} (logic hidden)"
            if hidden
            else f"{strategy.name} v{run.strategy_version.number}"
        ),
        session_date=run.session_date,
        fire_at=None if hidden else run.fire_at,
        boundary=run.get_boundary_display(),
        is_test=run.is_test,
        source=run.source,
        state=run.get_state_display(),
        note=scrub(run.note) if hidden else run.note,
        exit_reason=scrub(run.exit_reason) if hidden else run.exit_reason,
        mtm=run.mtm,
        price_source=run.price_source or "",
    )


def runs_disclosed(
    *, user: Any, runs: Iterable[Any], hidden: dict[int, str] | None = None
) -> list[RunRow]:
    """Rows for a list of the user's runs (strategy_version__strategy selected). `hidden`:
    hidden_titles() of these runs' strategies when the caller has read it already."""
    runs = list(runs)
    if hidden is None:
        hidden = hidden_titles(user=user, strategy_ids=[_strategy_id(run) for run in runs])
    return [_run_row(run, hidden.get(_strategy_id(run))) for run in runs]


def _leg_label(intent_or_position: Any) -> str:
    leg = getattr(intent_or_position, "leg", None)
    return f"leg {leg.position}" if leg is not None else "leg"


def _order_row(intent: Any, hidden: bool) -> OrderRow:
    leg = _leg_label(intent)
    row = OrderRow(
        account=intent.account.label,
        leg=leg,
        side=intent.side,
        contract=intent.tradingsymbol,
        quantity=intent.quantity,
        tag=intent.tag,
        intended_at=intent.intended_at,
        sent_at=intent.sent_at,
        lag_ms=intent.lag_ms,
        ack_ms=intent.ack_ms,
        acked=intent.acked_at is not None,
        state=intent.get_state_display(),
        error=intent.error,
        filled=str(intent.filled_quantity),
        average_price=intent.average_price,
    )
    if not hidden:
        return row
    # Lateness after T stays (it says nothing of the logic); what names the trade goes.
    share = f"{intent.filled_quantity * 100 // intent.quantity} %" if intent.quantity else "—"
    return replace(
        row,
        contract=f"{leg} {intent.side}",
        quantity=None,
        intended_at=None,
        sent_at=None,
        error=scrub(intent.error),
        filled=share,
        average_price=None,
    )


def _position_row(position: Any, title: str, hidden: bool) -> PositionRow:
    return PositionRow(
        run_pk=position.run_id,
        title=title,
        account=position.account.label,
        contract=_leg_label(position) if hidden else position.tradingsymbol,
        net_quantity=None if hidden else position.net_quantity,
        last_price=None if hidden else position.last_price,
        pnl=position.pnl(),
        hidden=hidden,
    )


@dataclass(frozen=True)
class RunDetail:
    run: RunRow
    orders: list[OrderRow]
    positions: list[PositionRow]


def run_disclosed(*, user: Any, run: Any, rows: Literal["all", "hidden"] = "all") -> RunDetail:
    """One run with its orders and positions, as `user` may see it (intents and positions
    prefetched with their accounts). `rows="hidden"`: order and position rows only when the
    run is a black box's (a page that shows the run's own rows otherwise)."""
    hidden_title = hidden_titles(user=user, strategy_ids=[_strategy_id(run)]).get(_strategy_id(run))
    row = _run_row(run, hidden_title)
    hidden = row.hidden
    if rows == "hidden" and not hidden:
        return RunDetail(run=row, orders=[], positions=[])
    return RunDetail(
        run=row,
        orders=[_order_row(intent, hidden) for intent in run.intents.all()],
        positions=[_position_row(position, row.title, hidden) for position in run.positions.all()],
    )


def positions_disclosed(
    *, user: Any, positions: Iterable[Any]
) -> tuple[list[PositionRow], list[ConsolidatedRow]]:
    """Open positions per run and account, and per contract across brokers; a black box's
    positions are summed per listing instead of per contract."""
    positions = list(positions)
    hidden = hidden_titles(user=user, strategy_ids=[_strategy_id(p.run) for p in positions])
    rows: list[PositionRow] = []
    consolidated: dict[str, ConsolidatedRow] = {}
    for position in positions:
        title = hidden.get(_strategy_id(position.run))
        if title is None:
            row = _position_row(position, position.run.strategy_version.strategy.name, False)
            key = position.tradingsymbol
        else:
            row = _position_row(position, f"{title} (logic hidden)", True)
            key = row.title
        rows.append(row)
        group = consolidated.setdefault(
            key, ConsolidatedRow(contract=key, net_quantity=None if row.hidden else 0)
        )
        if group.net_quantity is not None and row.net_quantity is not None:
            group.net_quantity += row.net_quantity
        group.pnl += row.pnl
        group.accounts.append(row.account)
    return rows, list(consolidated.values())


def timing_disclosed(*, user: Any, report: Any) -> Any:
    """The timing report (execution.analytics.reports.TimingReport) with black-box orders named
    "listing · leg SIDE" and without their clock times; latencies stay."""
    from execution.models.engine import ScheduledRun
    from trader.models import Strategy

    orders = [*report.early_orders, *report.slowest]
    run_strategy = dict(
        ScheduledRun.objects.filter(pk__in={o.run_id for o in orders}).values_list(
            "pk", "strategy_version__strategy_id"
        )
    )
    hidden = hidden_titles(user=user, strategy_ids=run_strategy.values())
    if not hidden:
        return report

    def masked(order: Any) -> Any:
        title = hidden.get(run_strategy.get(order.run_id, 0))
        if title is None:
            return order
        return replace(
            order,
            strategy=f"{title} (logic hidden)",
            tradingsymbol=f"({title})",
            intended_at=None,
            sent_at=None,
        )

    # The per-strategy groups are labelled by strategy name: the listing's title replaces it.
    titles_by_name = {
        name: f"{hidden[pk]} (logic hidden)"
        for pk, name in Strategy.objects.filter(pk__in=hidden).values_list("pk", "name")
    }
    return replace(
        report,
        early_orders=[masked(o) for o in report.early_orders],
        slowest=[masked(o) for o in report.slowest],
        by_strategy=[
            replace(g, label=titles_by_name.get(g.label, g.label)) for g in report.by_strategy
        ],
    )


def strategy_rows_disclosed(*, user: Any, rows: Iterable[Any]) -> list[Any]:
    """Per-strategy analytics rows (costs, performance: dataclasses with `strategy_id` and
    `strategy`) with a black box's strategy name replaced by its listing's title."""
    rows = list(rows)
    hidden = hidden_titles(user=user, strategy_ids=[row.strategy_id for row in rows])
    return [
        replace(row, strategy=f"{hidden[row.strategy_id]} (logic hidden)")
        if row.strategy_id in hidden
        else row
        for row in rows
    ]


def strategy_label(*, user: Any, strategy: Any) -> str:
    """A strategy's name as `user` may see it."""
    title = hidden_titles(user=user, strategy_ids=[strategy.pk]).get(strategy.pk)
    return strategy.name if title is None else f"{title} (logic hidden)"
