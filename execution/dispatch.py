"""Dispatch of a boundary T: from planned runs to committed order intents and per-account sends.

The dispatcher starts ahead of T by a lead sized from the boundary's number of orders and the
measured cost of one (`dispatch_lead`). Before T - ε it does everything that grows with the
number of strategies: claims the planned runs of T, loads what they need in three queries
(runs with their version, strategy, underlying, owner, limits and kill switches; the legs or
the positions to close; the accounts), checks the calendar and risk, slices by freeze
quantity, writes one OrderIntent per leg x account x slice with a placeholder for its contract
(`execution.intents.slots`), commits, and hands the account batches to the sending workers.
At T - ε it reads the spots (one quote call per broker, its slot reserved ahead), resolves
each placeholder's strike and symbols, writes them (one UPDATE per placeholder) and publishes
them to the workers, which fill them into the batches they hold and write the orders at T.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from brokers.models import BrokerAccount
from execution import conf, enqueue
from execution.audit import event_build, events_record
from execution.intents import build, marketable, slots
from execution.intents.build import AccountBatch, algo_id_for, batches_for, close_intents, new_tag
from execution.market import default_market
from execution.market.broker import boundary_markets, paper_live_sources
from execution.markettime import IST
from execution.models.engine import (
    Boundary,
    IntentState,
    KillSwitch,
    KillSwitchScope,
    OrderIntent,
    Position,
    Purpose,
    RunState,
    ScheduledRun,
)
from execution.planning.sources import AccountAllocation
from execution.protection import risk
from execution.reference import calendar, contracts, instruments
from execution.send import sender
from execution.send.sender import OutgoingOrder
from trader.models import HedgeConfirmation

logger = logging.getLogger(__name__)


@dataclass
class DispatchResult:
    fire_at: datetime
    runs: int = 0
    intents: int = 0
    skipped: dict[int, str] = field(default_factory=dict)  # run id -> why
    batches: list[AccountBatch] = field(default_factory=list)
    load_queries: int = 0
    # Database statements of the step at T - ε (spot, strikes, symbols, the resolution
    # written and published): a few per placeholder, never one per order.
    queries_at_epsilon: int = 0
    writes_at_epsilon: int = 0  # of them, statements that write (none unless a run fails)
    # Seconds relative to T (negative: before T) at which each step ended: where a boundary's
    # time goes, for the benchmark and the logs.
    timings: dict[str, float] = field(default_factory=dict)

    def mark(self, step: str) -> None:
        self.timings[step] = round(time.time() - self.fire_at.timestamp(), 4)


class _Reference:
    """Market reference data for one dispatch, each fact looked up once per underlying (or
    contract), however many strategies share it."""

    def __init__(self, day: date) -> None:
        self.day = day
        self._memo: dict[tuple[Any, ...], Any] = {}

    def _get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def step(self, underlying: Any) -> Decimal:
        return self._get(
            ("step", underlying.pk),
            lambda: Decimal(contracts.strike_step(underlying, self.day)),
        )

    def expiry(self, underlying: Any, choice: str) -> date:
        return self._get(
            ("expiry", underlying.pk, choice),
            lambda: contracts.pick_expiry(underlying, self.day, choice),
        )

    def lot_size(self, underlying: Any, expiry: date) -> int:
        return self._get(
            ("lot", underlying.pk, expiry),
            lambda: int(contracts.lot_size(underlying, expiry, on=self.day)),
        )

    def freeze(self, underlying: Any) -> int:
        return self._get(
            ("freeze", underlying.pk),
            lambda: int(contracts.freeze_quantity(underlying, self.day)),
        )

    def instrument(self, underlying: Any, expiry: date, strike: Decimal, option_type: str) -> Any:
        return self._get(
            ("instrument", underlying.pk, expiry, strike, option_type),
            functools.partial(instruments.instrument_for, underlying, expiry, strike, option_type),
        )

    def symbol(
        self, underlying: Any, expiry: date, strike: Decimal, option_type: str, broker: str
    ) -> tuple[str, str]:
        def compute() -> tuple[str, str]:
            instrument = self.instrument(underlying, expiry, strike, option_type)
            # The paper broker speaks Kite's notation.
            return instruments.broker_symbol(instrument, "kite" if broker == "paper" else broker)

        return self._get(("sym", underlying.pk, expiry, strike, option_type, broker), compute)

    def last_price(
        self,
        market: Any,
        underlying: Any,
        expiry: date,
        strike: Decimal,
        option_type: str,
        at: datetime,
    ) -> Decimal | None:
        """The contract's last price at `at` (T - ε): the intents' reference price."""

        def compute() -> Decimal | None:
            if not hasattr(market, "option_quote"):
                return None  # a spot-only feed: no reference (MARKET-only brokers still trade)
            try:
                quote = market.option_quote(underlying.symbol, expiry, strike, option_type, at=at)
            except (KeyError, ValueError, LookupError):
                return None
            return Decimal(quote.ltp)

        return self._get(("ltp", id(market), underlying.pk, expiry, strike, option_type), compute)

    def guard(self, moment: datetime, exchange: str) -> str | None:
        def compute() -> str | None:
            try:
                calendar.assert_can_trade(moment, exchange)
            except calendar.TradingClosedError as exc:
                return exc.reason
            return None

        return self._get(("guard", moment, exchange), compute)


def _load_runs(fire_at: datetime, claim: datetime) -> list[ScheduledRun]:
    """Query 1: the claimed runs, with version, strategy, underlying, owner, the owner's risk
    limit and kill switch, the global kill switch, open strategies and today's P&L."""
    from trader.models import RiskCeiling

    day = fire_at.astimezone(IST).date()
    ceiling = RiskCeiling.objects.filter(pk=1)
    return list(
        ScheduledRun.objects.filter(fire_at=fire_at, state=RunState.DISPATCHED, dispatched_at=claim)
        .select_related(
            "strategy_version__strategy__underlying",
            "owner__risk_limit",
            "owner__kill_switch",
            "entry_run",
        )
        .annotate(
            global_kill=Exists(
                KillSwitch.objects.filter(scope=KillSwitchScope.GLOBAL, engaged=True)
            ),
            # An order of this owner's strategy whose outcome could not be settled halts the
            # strategy's entries (fail closed) until it is found or dismissed by its owner.
            needs_attention=Exists(
                OrderIntent.objects.filter(
                    state=IntentState.NEEDS_ATTENTION,
                    run__owner=OuterRef("owner"),
                    run__strategy_version__strategy=OuterRef("strategy_version__strategy"),
                )
            ),
            open_strategies=Subquery(
                ScheduledRun.objects.filter(
                    owner=OuterRef("owner"), boundary=Boundary.ENTRY, is_test=False
                )
                .filter(Q(positions__net_quantity__lt=0) | Q(positions__net_quantity__gt=0))
                .values("owner")
                .annotate(n=Count("pk", distinct=True))
                .values("n")[:1]
            ),
            day_pnl=Subquery(
                ScheduledRun.objects.filter(
                    owner=OuterRef("owner"), session_date=day, boundary=Boundary.ENTRY
                )
                .values("owner")
                .annotate(total=Coalesce(Sum("mtm"), Decimal(0)))
                .values("total")[:1]
            ),
            # The day's P&L of this run's own target (e.g. one marketplace deployment), for
            # the limits its run source set (risk.source_limit_checks).
            target_day_pnl=Subquery(
                ScheduledRun.objects.filter(
                    owner=OuterRef("owner"),
                    source=OuterRef("source"),
                    source_ref=OuterRef("source_ref"),
                    strategy_version__strategy=OuterRef("strategy_version__strategy"),
                    session_date=day,
                    boundary=Boundary.ENTRY,
                )
                .values("owner")
                .annotate(total=Coalesce(Sum("mtm"), Decimal(0)))
                .values("total")[:1]
            ),
            ceil_order=Subquery(ceiling.values("max_lots_per_order")[:1]),
            ceil_strategy=Subquery(ceiling.values("max_lots_per_strategy")[:1]),
            ceil_open=Subquery(ceiling.values("max_open_strategies")[:1]),
            ceil_loss=Subquery(ceiling.values("max_daily_loss")[:1]),
        )
        .order_by("pk")
    )


def _claim(fire_at: datetime, run_ids: list[int] | None = None) -> datetime | None:
    """Take the planned runs of T (a conditional UPDATE: a second dispatcher finds none)."""
    claim = timezone.now()
    runs = ScheduledRun.objects.filter(fire_at=fire_at, state=RunState.PLANNED)
    if run_ids is not None:
        runs = runs.filter(pk__in=run_ids)
    taken = runs.update(state=RunState.DISPATCHED, dispatched_at=claim)
    return claim if taken else None


def _wait_until(moment: datetime) -> None:
    delay = moment.timestamp() - time.time()
    if delay > 0:
        time.sleep(delay)


def boundary_dispatch(
    *,
    fire_at: datetime,
    market: Any = None,
    wait: bool = True,
    start_sends: bool = True,
    run_ids: list[int] | None = None,
    late_cap: bool | None = None,
    now: datetime | None = None,
) -> DispatchResult:
    """Dispatch every planned run of instant `fire_at` (see the module docstring).

    Entry runs later than the entry lateness cap (conf.entry_late_cap_seconds) are skipped as
    "Missed: N s late"; exits are never dropped. `late_cap` defaults to `wait`: a caller that
    does not wait (tests, the benchmark's floor and naive modes) has timed the call itself.

    Runs refused before any order (calendar closed, kill switch, risk limits, account not
    ready) are marked skipped with the reason in words and an audit event; the others get
    their intents and are sent by one task per account at T.

    Two steps. Before T - ε, everything that grows with the number of strategies: the entry
    intents are built with a placeholder for their contract (`execution.intents.slots`),
    written, committed, recorded and handed to the senders. At T - ε, one pass that does not:
    the spots (one quote call per broker, its slot reserved ahead), the strikes and symbols of
    each placeholder, one UPDATE per placeholder and the resolution published to the senders.
    Exits (their contracts are known, their prices are read at T - ε) are built at T - ε as
    before. A caller that does not wait (tests, the benchmark's floor) gets the batches back
    resolved, published after the resolution (`start_sends`).
    """
    from trader.models import Leg

    result = DispatchResult(fire_at=fire_at)
    claim = _claim(fire_at, run_ids)
    if claim is None:
        return result
    started = time.monotonic()
    runs = _load_runs(fire_at, claim)
    result.mark("claimed")
    entry_versions = {r.strategy_version_id for r in runs if r.boundary == Boundary.ENTRY}
    exit_entries = {r.entry_run_id for r in runs if r.boundary == Boundary.EXIT and r.entry_run_id}
    legs_by_version: dict[int, list[Any]] = defaultdict(list)
    if entry_versions:  # query 2 (entries)
        for leg in Leg.objects.filter(version_id__in=entry_versions).order_by("position"):
            legs_by_version[leg.version_id].append(leg)
    positions_by_run: dict[int, list[Position]] = defaultdict(list)
    if exit_entries:  # query 2 (exits)
        for position in Position.objects.filter(run_id__in=exit_entries).exclude(net_quantity=0):
            positions_by_run[position.run_id].append(position)
    account_ids = {a["account_id"] for r in runs for a in r.allocations}
    account_ids |= {p.account_id for ps in positions_by_run.values() for p in ps}
    accounts = {a.pk: a for a in BrokerAccount.objects.filter(pk__in=account_ids)}  # query 3
    result.runs = len(runs)

    day = fire_at.astimezone(IST).date()
    reference = _Reference(day)
    skipped: dict[int, str] = {}
    for run in runs:
        reason = _pre_checks(run, reference, fire_at)
        if reason:
            skipped[run.pk] = reason
    cap = wait if late_cap is None else late_cap
    _late_skip(runs, skipped, fire_at, cap)

    # A market passed in (tests, the benchmark) prices every run; otherwise live runs are
    # priced by their trading account's broker and paper runs by the simulator.
    sources = price_sources(runs, accounts, skipped, explicit=market)
    market = market or default_market()
    # Each broker market's spot now (a guess, for the band of strikes quoted at T - ε): a
    # market that cannot quote holds its runs before any order is written.
    guesses = spots_guess(runs, sources, skipped)
    result.mark("prepared")

    # --- before T - ε: the entries, their contracts as placeholders -------------------------
    plan = slots.SlotPlan(fire_at)
    entries: list[OrderIntent] = []
    for run in runs:
        if run.pk in skipped or run.boundary != Boundary.ENTRY:
            continue
        run_market = sources.get(run.pk) or market
        try:
            built = _entry_intents(
                run, legs_by_version[run.strategy_version_id], accounts, reference, run_market, plan
            )
        except (ValueError, LookupError) as exc:
            skipped[run.pk] = f"Could not build the orders: {exc}"
            continue
        if isinstance(built, str):
            skipped[run.pk] = built
            continue
        entries.extend(built)
    result.mark("built")
    early = wait and not _eager()  # senders run elsewhere: hand them the batches now
    entry_batches = _write_and_publish(
        entries, accounts, fire_at, result, start=start_sends and early, key=plan.key
    )
    # The quote read at T - ε: one call per broker, its slot reserved ahead.
    bands = quotes_prepare(plan, reference, guesses)
    entry_runs = [r for r in runs if r.boundary == Boundary.ENTRY]
    for run in entry_runs:  # the market that priced it (the one that answered, after failover)
        if run.pk not in skipped:
            run.price_source = (
                getattr(sources.get(run.pk) or market, "name", "") or "simulated market"
            )
    _record(entry_runs, entries, skipped, fire_at)
    if entries:
        _cost_learn(len(entries), time.monotonic() - started)
    result.mark("published")

    # --- T - ε: one pass over the placeholders (not the orders) ------------------------------
    epsilon_at = fire_at - timedelta(seconds=conf.spot_epsilon_seconds())
    if wait:
        _wait_until(epsilon_at - timedelta(seconds=RESERVE_AHEAD_SECONDS))
        quotes_reserve(bands, epsilon_at)
        _wait_until(epsilon_at)
    result.mark("woke")
    # The spot is read at T - epsilon, or now if later (`now`: a simulated session's clock).
    spot_at = min(now or timezone.now(), fire_at)
    counted: list[str] = []
    with connection.execute_wrapper(_counting(counted)):
        quotes_read(bands)
        result.mark("quoted")
        resolution = contracts_resolve(plan, reference, spot_at)
        result.mark("contracts")
        for quoted in bands:  # quote calls made through each broker (1 at T - ε, normally)
            result.timings[f"quote calls {quoted.broker}"] = quoted.calls
        failed = _failed_write(resolution, fire_at)
        _killed_stop(fire_at)
        slots.publish(plan.key, resolution)
    result.queries_at_epsilon = len(counted)
    result.writes_at_epsilon = sum(
        1 for q in counted if not q.lstrip().upper().startswith("SELECT")
    )
    result.mark("resolved")
    # The senders have what they need; the intents get their contracts in one statement
    # (while the senders prepare their requests, before T: fills of the orders find them).
    _resolution_write(resolution, fire_at)
    result.mark("recorded")
    if not early and entry_batches:
        for batch in entry_batches:  # the caller sends them (or they go out now, resolved)
            batch.orders = [
                asdict(o)
                for o in slots.orders_resolved(
                    [OutgoingOrder(**o) for o in batch.orders], resolution
                )
            ]
        if start_sends:
            _start_group([b.to_json() for b in entry_batches])
            result.mark("sent to workers")

    # --- exits: their contracts are known; priced and built at T - ε ---------------------------
    exits: list[OrderIntent] = []
    exit_runs = [r for r in runs if r.boundary == Boundary.EXIT]
    for run in exit_runs:
        if run.pk in skipped:
            continue
        run_market = sources.get(run.pk) or market
        run.price_source = getattr(run_market, "name", "") or "simulated market"
        try:
            built = _exit_intents(
                run,
                positions_by_run.get(run.entry_run_id or 0, []),
                accounts,
                reference,
                marketable.ContractQuotes(run_market, spot_at),
            )
        except (ValueError, LookupError) as exc:
            skipped[run.pk] = f"Could not build the orders: {exc}"
            continue
        exits.extend(built)
    exit_batches = _write_and_publish(exits, accounts, fire_at, result, start=start_sends, key="")
    if exit_runs:
        _record(exit_runs, exits, skipped, fire_at)
    if failed:  # runs refused at T - ε (rare): their owners are told, as for any skipped run
        skipped.update(failed)
        _failed_record(runs, failed)
    result.batches = entry_batches + exit_batches
    result.skipped = skipped
    result.intents = len(entries) + len(exits)
    result.mark("committed")
    return result


def _failed_record(runs: list[ScheduledRun], failed: dict[int, str]) -> None:
    """The audit events of the runs whose contracts could not be resolved at T - ε (their
    state and note were written with the resolution), and the email for those held for want
    of a fresh price."""
    events = [
        event_build(kind="run.skipped", message=note, user_id=run.owner_id, run_id=run.pk)
        for run in runs
        if (note := failed.get(run.pk))
    ]
    events_record(events)
    held = [pk for pk, note in failed.items() if "no fresh price" in note.lower()]
    if held:
        _held_notify(held)


def _eager() -> bool:
    from celery import current_app

    return bool(current_app.conf.task_always_eager)


def _counting(counted: list[str]) -> Callable[..., Any]:
    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counted.append(sql)
        return execute(sql, params, many, context)

    return count


def _late_skip(
    runs: list[ScheduledRun], skipped: dict[int, str], fire_at: datetime, cap: bool
) -> None:
    """The moment has passed: an entry this late is a different trade. Exits still go."""
    late = (timezone.now() - fire_at).total_seconds()
    if not cap or late <= conf.entry_late_cap_seconds():
        return
    for run in runs:
        if run.boundary == Boundary.ENTRY and run.pk not in skipped:
            skipped[run.pk] = (
                f"Missed: {late:.1f} s late (entries are not sent more than "
                f"{conf.entry_late_cap_seconds():g} s after T)."
            )


def _write_and_publish(
    intents: list[OrderIntent],
    accounts: dict[int, BrokerAccount],
    fire_at: datetime,
    result: DispatchResult,
    *,
    start: bool,
    key: str,
) -> list[AccountBatch]:
    """Write the intents, commit, and (when `start`) hand their account batches to the
    senders once committed. `key`: where the batches' placeholders are resolved at T - ε."""
    if not intents:
        return []
    with transaction.atomic():
        OrderIntent.objects.bulk_create(intents, batch_size=1000)
        result.mark("written")
        batches = batches_for(intents, fire_at=fire_at, contracts_key=key)
        result.mark("batched")
        if start:
            payloads = [b.to_json() for b in batches]

            def publish() -> None:
                result.mark("durable")
                _start_group(payloads)
                result.mark("sent to workers")

            transaction.on_commit(publish)
    return batches


def _record(
    runs: list[ScheduledRun], intents: list[OrderIntent], skipped: dict[int, str], fire_at: datetime
) -> None:
    """What only records the boundary (runs' notes, price sources, audit events), in a
    transaction of its own after the orders were handed over."""
    with transaction.atomic():
        _dispatch_record(runs, intents, skipped, fire_at)
        mine = {r.pk for r in runs}
        held = [
            pk for pk, note in skipped.items() if "no fresh price" in note.lower() and pk in mine
        ]
        if held:  # the owners are told by email too (live runs; once each)
            transaction.on_commit(lambda: _held_notify(held))


# --- the lead: how long before T a boundary's dispatch starts -------------------------------
COST_KEY = "execution:dispatch:seconds_per_intent"


def _cost_learn(intents: int, seconds: float) -> None:
    """Remember what building, writing and handing over one intent cost at this boundary
    (a moving average, in Redis): the next boundaries' lead is sized from it."""
    sender.cost_learn(COST_KEY, seconds / max(1, intents))


def seconds_per_intent() -> float:
    """What one entry intent cost before T - ε at the last boundaries (measured), or the
    calibrated figure (conf.dispatch_seconds_per_intent) before any was measured."""
    found = sender.cost_read(COST_KEY)
    return found if found is not None else conf.dispatch_seconds_per_intent()


def dispatch_lead(intents: int) -> float:
    """Seconds before T at which the dispatch of a boundary of about `intents` orders starts:
    ε, plus twice what building them and holding them in the send workers (their requests
    built before T - ε, execution.send.template) is measured to cost, never less than the
    configured lead (conf.dispatch_lead_seconds). The hand-over's cost is counted as if one
    process held every order: with several it is done sooner, never later."""
    from execution.send.template import handover_seconds_per_order

    per_order = seconds_per_intent() + handover_seconds_per_order()
    needed = conf.spot_epsilon_seconds() + 1.0 + 2 * intents * per_order
    return max(conf.dispatch_lead_seconds(), needed)


def expected_intents(fire_at: datetime) -> int:
    """About how many orders the planned runs of `fire_at` will write (legs x accounts, one
    slice each): two queries, whatever the number of runs."""
    from trader.models import Leg

    runs = ScheduledRun.objects.filter(fire_at=fire_at, state=RunState.PLANNED)
    legs = dict(
        Leg.objects.filter(version_id__in=runs.values("strategy_version_id"))
        .values("version_id")
        .annotate(n=Count("pk"))
        .values_list("version_id", "n")
    )
    return sum(
        legs.get(version_id, 1) * max(1, len(allocations or []))
        for version_id, allocations in runs.values_list("strategy_version_id", "allocations")
    )


def _dispatch_record(
    runs: list[ScheduledRun],
    intents: list[OrderIntent],
    skipped: dict[int, str],
    fire_at: datetime,
) -> None:
    """The runs' outcome of a dispatch: skipped or empty runs change state with their reason,
    dispatched ones record their price source; one audit event per run."""
    per_run = Counter(i.run_id for i in intents)
    events = []
    changed = []
    by_source: dict[str, list[int]] = defaultdict(list)
    for run in runs:
        if run.pk in skipped:
            run.state, run.note = RunState.SKIPPED, skipped[run.pk]
            changed.append(run)
            events.append(
                event_build(
                    kind="run.skipped",
                    message=skipped[run.pk],
                    user_id=run.owner_id,
                    run_id=run.pk,
                )
            )
        elif run.pk not in per_run:
            run.state, run.note = RunState.DONE, "Nothing to send."
            changed.append(run)
        else:
            if run.price_source:
                by_source[run.price_source].append(run.pk)
            events.append(
                event_build(
                    kind="run.dispatched",
                    message=f"{per_run[run.pk]} orders written for "
                    f"{fire_at.astimezone(IST):%H:%M:%S} IST.",
                    user_id=run.owner_id,
                    run_id=run.pk,
                )
            )
    ScheduledRun.objects.bulk_update(changed, ["state", "note", "price_source"])
    for source, run_ids in by_source.items():
        ScheduledRun.objects.filter(pk__in=run_ids).update(price_source=source)
    events_record(events)


def price_sources(
    runs: list[ScheduledRun],
    accounts: dict[int, BrokerAccount],
    skipped: dict[int, str],
    *,
    explicit: Any,
) -> dict[int, Any]:
    """run id → the market that prices it: for a live run, the quotes of the broker of the
    account that trades first (or of the run's next live account's broker), never the
    simulator; a live run with no source is held (added to `skipped`). Paper and test runs:
    the simulator (no entry), or the live account their owner chose to price them ("paper on
    live prices", execution.market.broker.paper_live_sources).

    Markets are shared by broker for the whole boundary (`boundary_markets`): N accounts at one
    broker read each quote once, through one connected account of that broker, the others
    standing by should its calls fail."""
    if explicit is not None:
        return {}
    markets = boundary_markets(accounts.values())
    # Paper runs priced by one of their owner's live accounts ("paper on live prices").
    found: dict[int, Any] = dict(paper_live_sources(runs, skipped))
    for run in runs:
        if run.pk in skipped or run.is_test or run.pk in found:
            continue
        live = [
            accounts[a["account_id"]]
            for a in sorted(run.allocations, key=lambda a: a.get("priority", 1))
            if a["account_id"] in accounts and not accounts[a["account_id"]].is_paper
        ]
        if not live:
            continue
        market = next((markets[a.broker] for a in live if a.broker in markets), None)
        if market is None:
            skipped[run.pk] = (
                f"No fresh price: no connected {live[0].get_broker_display()} account gives "
                f"quotes for {live[0].label}: not sent."
            )
            continue
        found[run.pk] = market
    return found


def spots_guess(
    runs: list[ScheduledRun], sources: dict[int, Any], skipped: dict[int, str]
) -> dict[tuple[Any, str], Decimal]:
    """Before any order is written: each broker market's spots of the underlyings its entry
    runs trade (one call per broker, the brokers concurrently). They place the band of strikes
    read at T - ε; a market that cannot quote (stale, every account refused) holds its runs
    now, with the reason, before anything is written. Returns (market, underlying) → spot."""
    from execution.market.broker import INDEX_KEYS, BrokerMarket, StalePriceError, fetch_all

    wanted: dict[Any, set[str]] = defaultdict(set)
    for run in runs:
        market = sources.get(run.pk)
        entry = run.pk not in skipped and run.boundary == Boundary.ENTRY
        if entry and isinstance(market, BrokerMarket):
            wanted[market].add(run.strategy_version.strategy.underlying.symbol)
    fetch_all(
        {
            market: [k for u in sorted(symbols) if (k := INDEX_KEYS[market.broker].get(u))]
            for market, symbols in wanted.items()
        }
    )
    guesses: dict[tuple[Any, str], Decimal] = {}
    for run in runs:
        market = sources.get(run.pk)
        if market is None or market not in wanted or run.pk in skipped:
            continue
        symbol = run.strategy_version.strategy.underlying.symbol
        try:
            if (market, symbol) not in guesses:
                guesses[(market, symbol)] = Decimal(market.spot(symbol))
        except StalePriceError as exc:
            skipped[run.pk] = f"{exc}: not sent."
    return guesses


BAND_MARGIN_STEPS = 20  # strikes each side of the expected ones quoted at T - ε


def quotes_prepare(
    plan: slots.SlotPlan, reference: _Reference, guesses: dict[tuple[Any, str], Decimal]
) -> dict[Any, list[str]]:
    """Before T - ε, for each broker market that prices entries: the quote keys it will read
    at T - ε in one call (its index spots and a band of strikes of the placeholders' expiries
    around the ATM strike of the spot read before the orders were built (`guesses`),
    `BAND_MARGIN_STEPS` each side). Its request slot is reserved for T - ε just before
    (`quotes_reserve`): Kite allows one quote request a second, and the read must not wait
    for one inside the last seconds.
    Returns market → keys."""
    from execution.market.broker import INDEX_KEYS, BrokerMarket
    from trader.strategies import strikes

    by_market: dict[Any, list[slots.Slot]] = defaultdict(list)
    for slot, _, _ in plan.items():
        if isinstance(slot.market, BrokerMarket):
            by_market[slot.market].append(slot)
    bands: dict[Any, list[str]] = {}
    for market, wanted in by_market.items():
        keys: list[str] = []
        expiries: dict[str, set[date]] = defaultdict(set)
        for slot in wanted:
            expiries[slot.underlying.symbol].add(slot.expiry)
        for symbol, days in expiries.items():
            market.keys_load(symbol, days)
            if key := INDEX_KEYS[market.broker].get(symbol):
                keys.append(key)
        for slot in wanted:
            try:
                step = reference.step(slot.underlying)
                if slot.mode == "exact" and slot.strike is not None:
                    around, width = slot.strike, 0
                elif slot.mode == "atm" and (market, slot.underlying.symbol) in guesses:
                    spot = guesses[(market, slot.underlying.symbol)]  # T - ε decides
                    around = strikes.atm_strike(spot, step) + slot.offset * step
                    width = BAND_MARGIN_STEPS
                else:
                    continue  # premium and delta picks read a chain at T - ε
            except (ValueError, LookupError):
                continue  # the read at T - ε says why, for that placeholder
            for n in range(-width, width + 1):
                with contextlib.suppress(LookupError):  # a strike the master lacks
                    keys.append(
                        market.key_for(
                            slot.underlying.symbol, slot.expiry, around + n * step, slot.option_type
                        )
                    )
        bands[market] = list(dict.fromkeys(keys))
        market.forget()  # the guesses are not the prices of T - ε
    return bands


RESERVE_AHEAD_SECONDS = 1.2


def quotes_reserve(bands: dict[Any, list[str]], at: datetime) -> None:
    """Reserve each market's quote call at `at` (T - ε), RESERVE_AHEAD_SECONDS before it:
    reserved earlier, the slot would keep the account's other quote calls (the watch) waiting
    from then on, as a broker allowing one a second counts it from the reservation."""
    for market in bands:
        if not market.read_reserve(at):
            logger.warning(
                "no quote slot free at T - ε for %s: the read takes one then", market.name
            )


def quotes_read(bands: dict[Any, list[str]]) -> None:
    """At T - ε: each broker market's band in one call (the brokers concurrently). A failed
    or stale quote holds the placeholders that need it, with the reason."""
    from execution.market.broker import fetch_all

    fetch_all(bands)


def contracts_resolve(
    plan: slots.SlotPlan, reference: _Reference, spot_at: datetime
) -> dict[str, dict[str, Any]]:
    """At T - ε, one pass over the placeholders (a few per boundary, not one per order):
    spot → strike → each broker's symbol, the contract's last price, and for LIMIT-only
    brokers the marketable price of each side."""
    from trader.strategies import strikes

    resolution: dict[str, dict[str, Any]] = {}
    for slot, slot_id, brokers in plan.items():
        underlying = slot.underlying
        try:
            strike = _strike_of(slot, reference, spot_at, strikes)
            last_price = reference.last_price(
                slot.market, underlying, slot.expiry, strike, slot.option_type, spot_at
            )
            instrument = reference.instrument(underlying, slot.expiry, strike, slot.option_type)
        except (ValueError, LookupError) as exc:
            for broker in brokers:
                resolution[plan.name(slot_id, broker)] = {"e": _refusal(exc)}
            continue
        for broker in brokers:
            name = plan.name(slot_id, broker)
            try:
                symbol, token = reference.symbol(
                    underlying, slot.expiry, strike, slot.option_type, broker
                )
            except (ValueError, LookupError) as exc:
                resolution[name] = {"e": _refusal(exc)}
                continue
            entry: dict[str, Any] = {
                "s": symbol,
                "t": str(token),
                "r": None if last_price is None else str(last_price),
                "p": None,
            }
            if not marketable.market_orders_allowed(broker):
                if last_price is None:
                    entry = {
                        "e": f"Could not build the orders: {symbol}: the broker takes only "
                        "LIMIT orders from algos and no quote was available to price one."
                    }
                else:
                    percent = conf.limit_protection_percent()
                    entry["p"] = {
                        side: str(
                            marketable.protected_limit(
                                side=side,
                                reference=last_price,
                                percent=percent,
                                tick=instrument.tick_size or marketable.DEFAULT_TICK,
                            )
                        )
                        for side in ("BUY", "SELL")
                    }
            resolution[name] = entry
    return resolution


def _refusal(exc: Exception) -> str:
    """Why a run is not sent when its contract cannot be resolved, in words."""
    from execution.market.broker import StalePriceError

    if isinstance(exc, StalePriceError):
        return f"{exc}: not sent."
    return f"Could not build the orders: {exc}"


def _strike_of(slot: slots.Slot, reference: _Reference, spot_at: datetime, strikes: Any) -> Any:
    underlying = slot.underlying
    if slot.mode == "exact" and slot.strike is not None:
        return slot.strike
    step = reference.step(underlying)
    spot = reference._get(
        ("spot", id(slot.market), underlying.pk),
        lambda: Decimal(slot.market.spot(underlying.symbol, at=spot_at)),
    )
    if slot.mode == "atm":
        return strikes.atm_strike(spot, step) + slot.offset * step
    rows = reference._get(
        ("chain", id(slot.market), underlying.pk, slot.expiry),
        functools.partial(
            _chain, slot.market, underlying.symbol, slot.expiry, step, strikes, spot_at
        ),
    )
    if slot.mode == "premium":
        row = strikes.pick_by_premium(rows, slot.option_type, Decimal(slot.premium or 0))
    else:
        row = strikes.pick_by_delta(rows, slot.option_type, Decimal(slot.delta or 0))
    return Decimal(row.strike)


def _failed_write(resolution: dict[str, dict[str, Any]], fire_at: datetime) -> dict[int, str]:
    """A run with an order on a placeholder that could not be resolved is not sent: its
    intents abandoned and the run skipped with the reason (a rare path: statements per failed
    run, none when every placeholder resolved). Returns run id → reason."""
    failed = {name: entry["e"] for name, entry in resolution.items() if entry.get("e")}
    if not failed:
        return {}
    pending = OrderIntent.objects.filter(state=IntentState.INTENT, intended_at=fire_at)
    runs = dict(pending.filter(tradingsymbol__in=failed).values_list("run_id", "tradingsymbol"))
    reasons = {run_id: failed[name] for run_id, name in runs.items()}
    # Their batches are in the senders' hands already (claimed): each order is stopped in
    # Redis before it is called not sent, so that no sender writes what the database says was
    # never sent (a run's orders at another broker resolve apart from these; senders drop a
    # run only when its own placeholder failed). One a sender marked goes out, and is recorded.
    tags = dict(pending.filter(run_id__in=reasons).values_list("tag", "run_id"))
    stopped = sender.unsent_stop_now(list(tags))
    with transaction.atomic():
        for run_id, reason in reasons.items():
            pending.filter(run_id=run_id, tag__in=stopped).update(
                state=IntentState.ABANDONED, error=reason
            )
            ScheduledRun.objects.filter(pk=run_id).update(state=RunState.SKIPPED, note=reason)
    return reasons


KILLED_WORDS = "Not sent: kill switch engaged."


def _killed_stop(fire_at: datetime) -> dict[int, int]:
    """Entries of T whose owner's kill switch (or the global one) was engaged after the
    dispatch loaded their runs: the engage may have committed before the intents did, so it
    did not see them to stop. At T - ε they are committed: each is stopped in Redis (its claim
    taken from its sender unless that sender marked it "about to write") and only those
    stopped are called not sent; the run is skipped and its owner told. One query when no
    switch is engaged (the usual case). Returns run id -> orders stopped."""
    engaged = list(KillSwitch.objects.filter(engaged=True).values_list("scope", "user_id"))
    if not engaged:
        return {}
    pending = OrderIntent.objects.filter(
        state=IntentState.INTENT, intended_at=fire_at, purpose=Purpose.ENTRY
    )
    if all(scope != KillSwitchScope.GLOBAL for scope, _ in engaged):
        pending = pending.filter(run__owner_id__in=[user for _, user in engaged])
    tags = dict(pending.values_list("tag", "run_id"))
    if not tags:
        return {}
    try:
        stopped = sender.unsent_stop_now(list(tags))
    except Exception:  # Redis down: nothing provably unwritten, so nothing is called not sent
        logger.exception("could not stop the orders of a kill switch engaged during dispatch")
        return {}
    per_run = Counter(tags[tag] for tag in stopped)
    with transaction.atomic():
        pending.filter(tag__in=stopped).update(state=IntentState.ABANDONED, error=KILLED_WORDS)
        runs = ScheduledRun.objects.filter(pk__in=per_run)
        owners = dict(runs.values_list("pk", "owner_id"))
        runs.update(state=RunState.SKIPPED, note="Kill switch engaged.")
        events_record(
            [
                event_build(
                    kind="run.killed",
                    message=f"{count} orders not sent: the kill switch was engaged during "
                    "the dispatch.",
                    user_id=owners.get(run_id),
                    run_id=run_id,
                )
                for run_id, count in per_run.items()
            ]
        )
    return dict(per_run)


def _resolution_write(resolution: dict[str, dict[str, Any]], fire_at: datetime) -> int:
    """The resolved contracts onto the intents, once published: one UPDATE for every
    placeholder (a CASE per column), whatever the number of orders. Only the contract's
    columns are written, whatever state the senders have moved an intent to meanwhile."""
    from django.db.models import Case, F, Value, When

    done = {name: entry for name, entry in resolution.items() if not entry.get("e")}
    if not done:
        return 0

    def case(column: str, value: Callable[[dict[str, Any]], Any]) -> Case:
        return Case(
            *(When(tradingsymbol=name, then=Value(value(entry))) for name, entry in done.items()),
            default=F(column),
        )

    def decimal(text: str | None) -> Decimal | None:
        return None if text is None else Decimal(text)

    prices = [
        When(tradingsymbol=name, side=side, then=Value(Decimal(price)))
        for name, entry in done.items()
        for side, price in (entry["p"] or {}).items()
    ]
    return OrderIntent.objects.filter(intended_at=fire_at, tradingsymbol__in=done).update(
        instrument_token=case("instrument_token", lambda e: e["t"]),
        reference_price=case("reference_price", lambda e: decimal(e["r"])),
        price=Case(*prices, default=F("price")) if prices else F("price"),
        tradingsymbol=case("tradingsymbol", lambda e: e["s"]),
    )


def _chain(
    market: Any, symbol: str, expiry: date, step: Decimal, strikes: Any, at: datetime
) -> list[Any]:
    return list(
        market.chain(
            symbol,
            expiry,
            strike_step=step,
            strikes_each_side=strikes.CHAIN_STRIKES_EACH_SIDE,
            at=at,
        )
    )


def _pre_checks(run: ScheduledRun, reference: _Reference, fire_at: datetime) -> str | None:
    strategy = run.strategy_version.strategy
    if not run.is_test:
        closed = reference.guard(fire_at, strategy.underlying.exchange)
        if closed:
            return f"Market closed: {closed}."
    if run.boundary == Boundary.ENTRY:
        kill = getattr(run.owner, "kill_switch", None)
        if run.global_kill or (kill is not None and kill.engaged):  # type: ignore[attr-defined]
            return "Kill switch engaged: no new entries until it is re-armed."
        if run.needs_attention:  # type: ignore[attr-defined]
            return (
                "Halted: an earlier order of this strategy needs your attention (its outcome "
                "could not be settled from the broker's books)."
            )
    return None


def _entry_intents(
    run: ScheduledRun,
    legs: list[Any],
    accounts: dict[int, BrokerAccount],
    reference: _Reference,
    market: Any,
    plan: slots.SlotPlan,
) -> list[OrderIntent] | str:
    """The run's entry orders, each naming its contract by a placeholder of `plan` (resolved
    at T - ε): nothing here depends on the spot."""
    strategy = run.strategy_version.strategy
    underlying = strategy.underlying
    if not legs:
        return "The strategy version has no legs."
    resolved = []
    for leg in legs:
        expiry = reference.expiry(underlying, leg.expiry_choice)
        slot = slots.Slot.of(leg, market=market, underlying=underlying, expiry=expiry)
        resolved.append((leg, expiry, slot))

    limits = risk.limits_from(
        own=getattr(run.owner, "risk_limit", None),
        ceiling={
            "max_lots_per_order": run.ceil_order,  # type: ignore[attr-defined]
            "max_lots_per_strategy": run.ceil_strategy,  # type: ignore[attr-defined]
            "max_open_strategies": run.ceil_open,  # type: ignore[attr-defined]
            "max_daily_loss": run.ceil_loss,  # type: ignore[attr-defined]
        },
    )
    intents: list[OrderIntent] = []
    allocations = [AccountAllocation.from_json(a) for a in run.allocations]
    problems: list[str] = []
    for allocation in sorted(allocations, key=lambda a: a.priority):
        account = accounts.get(allocation.account_id)
        if account is None:
            problems.append(f"Account {allocation.account_id} no longer exists.")
            continue
        if run.is_test and not account.is_paper:
            continue  # a test run never reaches a real broker
        account_problems = risk.account_checks(account=account, day=run.session_date, is_test=False)
        leg_lots = [allocation.lots(leg.lots, run.multiplier) for leg, _, _ in resolved]
        account_problems += risk.strategy_checks(
            limits=limits,
            leg_lots=leg_lots,
            open_strategies=run.open_strategies or 0,  # type: ignore[attr-defined]
            day_pnl=Decimal(run.day_pnl or 0),  # type: ignore[attr-defined]
        )
        account_problems += risk.source_limit_checks(
            limits=allocation.limits,
            leg_lots=leg_lots,
            day_pnl=Decimal(run.target_day_pnl or 0),  # type: ignore[attr-defined]
        )
        if any(lots < 1 for lots in leg_lots):
            account_problems.append(f"{account.label}: a leg would be less than one lot.")
        if account_problems:
            problems.extend(dict.fromkeys(account_problems))
            continue
        algo_id = algo_id_for(run=run, account=account)
        # MARKET, or a marketable LIMIT (priced at T - ε) where the broker refuses MARKET.
        limit_only = not marketable.market_orders_allowed(account.broker)
        for (leg, expiry, slot), lots in zip(resolved, leg_lots, strict=True):
            lot_size = reference.lot_size(underlying, expiry)
            slices = build.slice_lots(
                lots=lots, lot_size=lot_size, freeze_quantity=reference.freeze(underlying)
            )
            placeholder = plan.placeholder(slot, account.broker)
            for slice_no, slice_lots in enumerate(slices):
                intents.append(
                    OrderIntent(
                        run=run,
                        leg=leg,
                        account=account,
                        purpose=Purpose.ENTRY,
                        slice_no=slice_no,
                        phase=0 if leg.side == "BUY" else 1,
                        waits_for_hedges=strategy.hedge_confirmation == HedgeConfirmation.ACK,
                        side=leg.side,
                        exchange=underlying.segment,
                        tradingsymbol=placeholder,
                        instrument_token="",
                        product="MIS" if strategy.kind == "intraday" else "NRML",
                        order_type="LIMIT" if limit_only else "MARKET",
                        limit_protection_percent=(
                            conf.limit_protection_percent() if limit_only else None
                        ),
                        quantity=slice_lots * lot_size,
                        lot_size=lot_size,
                        algo_id=algo_id,
                        tag=new_tag(Purpose.ENTRY),
                        intended_at=run.fire_at,
                    )
                )
    if not intents:
        return " ".join(problems) or "No account to trade on."
    return intents


def _exit_intents(
    run: ScheduledRun,
    positions: list[Position],
    accounts: dict[int, BrokerAccount],
    reference: _Reference,
    quotes: marketable.ContractQuotes,
) -> list[OrderIntent]:
    underlying = run.strategy_version.strategy.underlying
    return close_intents(
        run=run,
        positions=positions,
        accounts=accounts,
        purpose=Purpose.EXIT,
        intended_at=run.fire_at,
        freeze=lambda p: reference.freeze(underlying),
        lot_size=lambda p: p.lot_size,
        quotes=quotes,
    )


def _held_notify(run_ids: list[int]) -> None:
    enqueue.task_enqueue(enqueue.RUNS_HELD_NOTIFY, args=(run_ids,))


def _start_group(payloads: list[dict[str, Any]]) -> None:
    """Hand the account batches to the workers: a few messages of up to
    `conf.send_chunk_accounts()` accounts each rather than one per account, so that publishing
    a big boundary costs a handful of messages (several hundred of them took seconds on a busy
    machine, inside the last seconds before T). Each worker process that takes a chunk sends
    its accounts on its own lane; run N processes to spread the chunks (see the README)."""
    enqueue.account_sends_enqueue(payloads, chunk_size=conf.send_chunk_accounts())
