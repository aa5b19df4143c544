"""Dispatch of a boundary T: from planned runs to committed order intents and per-account sends.

The dispatcher arrives ahead of T, claims the planned runs of T, loads what they need in three
queries (runs with their version, strategy, underlying, owner, limits and kill switches; the
legs or the positions to close; the accounts), checks the calendar, waits until T - ε, reads
the spot, resolves strikes, checks risk, slices by freeze quantity, writes one OrderIntent per
leg x account x slice, commits, and only then starts one Celery task per broker account.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from brokers.models import BrokerAccount
from execution import conf, enqueue
from execution.audit import event_build, events_record
from execution.intents import build, marketable
from execution.intents.build import AccountBatch, algo_id_for, batches_for, close_intents, new_tag
from execution.market import default_market
from execution.market.broker import StalePriceError, boundary_markets, paper_live_sources
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
    ready, strike resolution failed) are marked skipped with the reason in words and an audit
    event; the others get their intents and are sent by one task per account at T.
    """
    from trader.models import Leg
    from trader.strategies import strikes

    result = DispatchResult(fire_at=fire_at)
    claim = _claim(fire_at, run_ids)
    if claim is None:
        return result
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

    # A market passed in (tests, the benchmark) prices every run; otherwise live runs are
    # priced by their trading account's broker and paper runs by the simulator.
    sources = price_sources(runs, accounts, skipped, explicit=market)
    underlyings = quotes_prepare(runs, sources, legs_by_version, reference, skipped)
    result.mark("prepared")
    market = market or default_market()
    if wait:
        _wait_until(fire_at - timedelta(seconds=conf.spot_epsilon_seconds()))
    late = (timezone.now() - fire_at).total_seconds()
    if (wait if late_cap is None else late_cap) and late > conf.entry_late_cap_seconds():
        # The moment has passed: an entry this late is a different trade. Exits still go.
        for run in runs:
            if run.boundary == Boundary.ENTRY and run.pk not in skipped:
                skipped[run.pk] = (
                    f"Missed: {late:.1f} s late (entries are not sent more than "
                    f"{conf.entry_late_cap_seconds():g} s after T)."
                )
    result.mark("woke")
    quotes_read(runs, sources, legs_by_version, reference, skipped, underlyings)
    result.mark("quoted")
    # The spot is read at T - epsilon, or now if later (`now`: a simulated session's clock).
    spot_at = min(now or timezone.now(), fire_at)
    spots: dict[int, dict[str, Decimal]] = defaultdict(dict)
    intents: list[OrderIntent] = []
    for run in runs:
        if run.pk in skipped:
            continue
        run_market = sources.get(run.pk) or market
        run.price_source = getattr(run_market, "name", "") or "simulated market"
        try:
            if run.boundary == Boundary.ENTRY:
                built = _entry_intents(
                    run,
                    legs_by_version[run.strategy_version_id],
                    accounts,
                    reference,
                    run_market,
                    spots[id(run_market)],
                    spot_at,
                    strikes,
                )
            else:
                built = _exit_intents(
                    run,
                    positions_by_run.get(run.entry_run_id or 0, []),
                    accounts,
                    reference,
                    marketable.ContractQuotes(run_market, spot_at),
                )
        except StalePriceError as exc:
            skipped[run.pk] = f"{exc}: not sent."
            continue
        except (ValueError, LookupError) as exc:
            skipped[run.pk] = f"Could not build the orders: {exc}"
            continue
        if isinstance(built, str):
            skipped[run.pk] = built
            continue
        intents.extend(built)

    result.mark("built")
    # The orders first: written, committed and handed to the senders; what only records the
    # boundary (runs' notes, price sources, audit events) follows in a second transaction, off
    # the path to T. Dispatched runs get only their price source there (a plain UPDATE per
    # source): a sender may already be writing a note on them.
    result.skipped = skipped
    result.intents = len(intents)
    with transaction.atomic():
        OrderIntent.objects.bulk_create(intents, batch_size=1000)
        result.mark("written")
        result.batches = batches_for(intents, accounts=accounts, fire_at=fire_at)
        result.mark("batched")
        if start_sends and result.batches:
            payloads = [b.to_json() for b in result.batches]

            def publish() -> None:
                result.mark("durable")
                _start_group(payloads)
                result.mark("published")

            transaction.on_commit(publish)
    with transaction.atomic():
        _dispatch_record(runs, intents, skipped, fire_at)
        held = [pk for pk, note in skipped.items() if "no fresh price" in note.lower()]
        if held:  # the owners are told by email too (live runs; once each)
            transaction.on_commit(lambda: _held_notify(held))
    result.mark("committed")
    return result


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


def quotes_prepare(
    runs: list[ScheduledRun],
    sources: dict[int, Any],
    legs_by_version: dict[int, list[Any]],
    reference: _Reference,
    skipped: dict[int, str],
) -> dict[Any, set[str]]:
    """Before T - ε: each live market's underlyings, and the quote keys of their contracts
    at the expiries the legs use (one master query per market, underlying and expiries), so
    that the pass at T - ε (`quotes_read`) touches no database. Returns market → underlyings."""
    from execution.market.broker import BrokerMarket

    underlyings: dict[Any, set[str]] = defaultdict(set)
    expiries: dict[tuple[Any, str], set[date]] = defaultdict(set)
    for run in runs:
        market = sources.get(run.pk)
        if run.pk in skipped or not isinstance(market, BrokerMarket):
            continue
        if run.boundary != Boundary.ENTRY:
            continue  # exits need no spot: their contracts are quoted as their runs ask
        underlying = run.strategy_version.strategy.underlying
        underlyings[market].add(underlying.symbol)
        for leg in legs_by_version[run.strategy_version_id]:
            try:
                expiries[(market, underlying.symbol)].add(
                    reference.expiry(underlying, leg.expiry_choice)
                )
            except (ValueError, LookupError):
                continue  # the run's own pass says why
    for (market, symbol), days in expiries.items():
        market.keys_load(symbol, days)
    return underlyings


def quotes_read(
    runs: list[ScheduledRun],
    sources: dict[int, Any],
    legs_by_version: dict[int, list[Any]],
    reference: _Reference,
    skipped: dict[int, str],
    underlyings: dict[Any, set[str]],
) -> None:
    """At T - ε, one vectorised pass: every live market's spots (one call per broker, the
    brokers concurrently), the ATM and exact strikes of every entry leg from them, and those
    contracts' quotes (one batch per broker, concurrently). The runs' own pass then finds
    each quote remembered; a failed or stale one holds its runs with the reason."""
    from execution.market.broker import INDEX_KEYS, BrokerMarket, StalePriceError, fetch_all
    from trader.strategies import strikes

    fetch_all(
        {
            market: [k for u in sorted(symbols) if (k := INDEX_KEYS[market.broker].get(u))]
            for market, symbols in underlyings.items()
        }
    )
    contracts: dict[Any, list[str]] = defaultdict(list)
    for run in runs:
        market = sources.get(run.pk)
        if run.pk in skipped or run.boundary != Boundary.ENTRY:
            continue
        if not isinstance(market, BrokerMarket):
            continue
        underlying = run.strategy_version.strategy.underlying
        try:
            spot = market.spot(underlying.symbol)
            step = reference.step(underlying)
        except (ValueError, LookupError):
            continue  # held by the run's own pass, with the reason
        atm = strikes.atm_strike(Decimal(spot), step)
        for leg in legs_by_version[run.strategy_version_id]:
            if leg.strike_mode == "atm":
                strike = atm + (leg.strike_offset or 0) * step
            elif leg.strike_mode == "exact":
                strike = Decimal(leg.strike_price)
            else:
                continue  # premium or delta picks need a chain (not read from quotes yet)
            try:
                expiry = reference.expiry(underlying, leg.expiry_choice)
                contracts[market].append(
                    market.key_for(underlying.symbol, expiry, strike, leg.option_type)
                )
            except (ValueError, LookupError, StalePriceError):
                continue
    fetch_all(contracts)


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
    spots: dict[str, Decimal],
    spot_at: datetime,
    strikes: Any,
) -> list[OrderIntent] | str:
    strategy = run.strategy_version.strategy
    underlying = strategy.underlying
    if not legs:
        return "The strategy version has no legs."
    if underlying.symbol not in spots:
        spots[underlying.symbol] = Decimal(market.spot(underlying.symbol, at=spot_at))
    spot = spots[underlying.symbol]
    step = reference.step(underlying)
    atm = strikes.atm_strike(spot, step)
    resolved = []
    for leg in legs:
        expiry = reference.expiry(underlying, leg.expiry_choice)
        if leg.strike_mode == "atm":
            strike = atm + (leg.strike_offset or 0) * step
        elif leg.strike_mode == "exact":
            strike = Decimal(leg.strike_price)
        else:
            rows = reference._get(
                ("chain", underlying.pk, expiry),
                functools.partial(
                    _chain, market, underlying.symbol, expiry, step, strikes, spot_at
                ),
            )
            picker = strikes.pick_by_premium if leg.strike_mode == "premium" else None
            if picker is not None:
                row = picker(rows, leg.option_type, Decimal(leg.target_premium))
            else:
                row = strikes.pick_by_delta(rows, leg.option_type, Decimal(leg.target_delta))
            strike = Decimal(row.strike)
        resolved.append((leg, expiry, strike))
    prefetch = getattr(market, "prefetch_options", None)
    if prefetch is not None:  # a broker's quotes: every leg in one call, not one each
        prefetch([(underlying.symbol, e, k, leg.option_type) for leg, e, k in resolved])

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
            problems.extend(account_problems)
            continue
        algo_id = algo_id_for(run=run, account=account)
        account_intents: list[OrderIntent] = []
        for (leg, expiry, strike), lots in zip(resolved, leg_lots, strict=True):
            lot_size = reference.lot_size(underlying, expiry)
            symbol, token = reference.symbol(
                underlying, expiry, strike, leg.option_type, account.broker
            )
            slices = build.slice_lots(
                lots=lots, lot_size=lot_size, freeze_quantity=reference.freeze(underlying)
            )
            last_price = reference.last_price(
                market, underlying, expiry, strike, leg.option_type, spot_at
            )
            tick = reference.instrument(underlying, expiry, strike, leg.option_type).tick_size
            for slice_no, slice_lots in enumerate(slices):
                intent = OrderIntent(
                    run=run,
                    leg=leg,
                    account=account,
                    purpose=Purpose.ENTRY,
                    slice_no=slice_no,
                    phase=0 if leg.side == "BUY" else 1,
                    waits_for_hedges=strategy.hedge_confirmation == HedgeConfirmation.ACK,
                    side=leg.side,
                    exchange=underlying.segment,
                    tradingsymbol=symbol,
                    instrument_token=str(token),
                    product="MIS" if strategy.kind == "intraday" else "NRML",
                    order_type="MARKET",
                    quantity=slice_lots * lot_size,
                    lot_size=lot_size,
                    algo_id=algo_id,
                    tag=new_tag(Purpose.ENTRY),
                    intended_at=run.fire_at,
                    reference_price=last_price,
                )
                # MARKET, or a marketable LIMIT where the broker refuses MARKET from algos.
                problem = marketable.terms_apply(intent, broker=account.broker, tick=tick)
                if problem:
                    account_problems.append(f"{account.label}: {problem}")
                account_intents.append(intent)
        if account_problems:
            problems.extend(dict.fromkeys(account_problems))
            continue
        intents.extend(account_intents)
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
    enqueue.account_chunks_enqueue(payloads, chunk_size=conf.send_chunk_accounts())
