"""A compressed trading day on the engine, under an injected clock (the seed of backtesting).

`simulate_day(strategies=N, speed=X)` runs one session of a chosen day, 09:15 to 15:40 IST, a
simulated minute at a time, with the same engine functions production runs: planning
(`planning.day_plan`), the ready check (`services.accounts_ready_check`), each boundary's
dispatch (`dispatch.boundary_dispatch`), the account sends (`sender.send_batch`, outcomes by
`orders.outcomes_apply`), the watch (`watch.runs_watch`: MTM-driven exits, per-leg stops and
the intraday square-off) and reconciliation (`orders.open_orders_reconcile`). Time is never
patched: a `SessionClock` object is passed to the simulated market that prices the session
and fills the paper books, and as `now` to every engine function that reads the time.

The traders are N new users, each with a paper account and one intraday strategy (a short
strangle with long wings, one lot per leg) whose entry, exit and MTM limits are drawn from a
seeded generator: some exit on a combined target or stop, some at a scheduled exit time, the
rest at the square-off before the close. The summary counts at the paper books (the broker),
by tag: orders written twice (`duplicates`) and orders neither written nor reported by their
state (`lost`).

`speed` compresses the session: X simulated seconds per real second (the loop waits when it
is ahead); `lateness` says how far behind that schedule the engine fell, in real seconds, and
how many boundaries were dispatched after their simulated time.

`states` counts the orders by their final state. The engine's claims and "about to write"
marks live in the Redis of REDIS_URL: run the simulation on a Redis database nothing else
clears meanwhile (the test suite's `cache.clear()` flushes its database). `redis_cleared` says
whether that happened; if it did, orders lost their claims before they were written, were left
to the reconciler and counted under reconciliation "sent" (entries then missed: "abandoned").
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from execution.markettime import IST
from execution.reference import calendar

SESSION_START = dtime(9, 15)
SESSION_END = dtime(15, 40)
ENTRY_TIMES = (dtime(9, 20), dtime(9, 30), dtime(9, 45), dtime(10, 0))
# Scheduled exits before the square-off; 15:25 is after it (those runs are squared off).
EXIT_TIMES = (dtime(13, 0), dtime(14, 30), dtime(15, 10), dtime(15, 25))
REPORTED_STATES = ("rejected", "failed_over", "abandoned", "needs_attention", "cancelled")


class SessionClock:
    """The simulated session's time: starts at a moment, moves only when told to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the session clock needs an aware datetime")
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> None:
        if moment < self._now:
            raise ValueError("a session clock does not go back")
        self._now = moment


@dataclass
class Summary:
    day: date
    strategies: int
    speed: float
    planned_runs: int = 0
    ready_problems: int = 0
    orders: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    fills: int = 0
    exits: dict[str, int] = field(default_factory=dict)
    pnl: Decimal = Decimal("0")
    duplicates: int = 0
    lost: int = 0
    skipped_runs: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, int] = field(default_factory=dict)
    lateness: dict[str, float] = field(default_factory=dict)
    redis_cleared: bool = False
    wall_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "strategies": self.strategies,
            "speed": self.speed,
            "planned_runs": self.planned_runs,
            "ready_problems": self.ready_problems,
            "orders": self.orders,
            "states": self.states,
            "fills": self.fills,
            "exits": self.exits,
            "pnl": str(self.pnl),
            "duplicates": self.duplicates,
            "lost": self.lost,
            "skipped_runs": self.skipped_runs,
            "reconciliation": self.reconciliation,
            "lateness": self.lateness,
            "redis_cleared": self.redis_cleared,
            "wall_seconds": round(self.wall_seconds, 1),
        }


def session_day_for(day: date | None, *, today: date) -> date:
    """`day` if it is an NSE session, else an error; no day: the last session before today."""
    if day is not None:
        status = calendar.day_status(day, "NSE")
        if status.window is None:
            raise ValueError(f"{day} is not an NSE session: {status.closed_reason}")
        return day
    candidate = today - timedelta(days=1)
    for _ in range(15):
        if calendar.day_status(candidate, "NSE").window is not None:
            return candidate
        candidate -= timedelta(days=1)
    raise ValueError(f"no NSE session in the two weeks before {today} (is the calendar loaded?)")


def _at(day: date, moment: dtime) -> datetime:
    return datetime.combine(day, moment, tzinfo=IST)


def seed_traders(*, count: int, day: date, seed: int) -> list[int]:
    """N traders with a logged-in paper account and one intraday strategy each; returns the
    strategy ids. Limits and times are drawn from `seed` (the same seed, the same day)."""
    from brokers.models import AccountStatus, Broker, BrokerAccount, PaperAccount
    from brokers.services import paper_account_log_in
    from execution.models import Underlying
    from trader.models import (
        BrokerAllocation,
        Leg,
        Strategy,
        StrategyKind,
        StrategyStatus,
        StrategyVersion,
        User,
    )

    rng = random.Random(seed)
    stamp = f"{int(time.time() * 1000)}"
    nifty = Underlying.objects.get(symbol="NIFTY")
    strategy_ids = []
    for index in range(count):
        with transaction.atomic():
            user = User.objects.create(email=f"sim{stamp}-{index}@simulate.local")
            account = BrokerAccount.objects.create(
                owner=user,
                broker=Broker.PAPER,
                label="Simulated day",
                status=AccountStatus.EXPIRED,
            )
            PaperAccount.objects.create(
                account=account, starting_cash=Decimal("2000000"), cash=Decimal("2000000")
            )
            strategy = Strategy.objects.create(
                owner=user,
                name=f"simulated {index}",
                underlying=nifty,
                kind=StrategyKind.INTRADAY,
                status=StrategyStatus.ACTIVE,
                hedge_confirmation="none",
                activated_at=timezone.now(),
            )
            kind = rng.choice(("target", "stop", "trailing", "none"))
            version = StrategyVersion.objects.create(
                strategy=strategy,
                number=1,
                entry_time=rng.choice(ENTRY_TIMES),
                exit_time=rng.choice(EXIT_TIMES),
                effective_from=day - timedelta(days=7),
                target_mtm=Decimal(rng.randrange(200, 1200, 50)) if kind == "target" else None,
                stop_loss_mtm=Decimal(rng.randrange(200, 1200, 50)) if kind == "stop" else None,
                trailing_stop_mtm=Decimal(rng.randrange(300, 900, 50))
                if kind == "trailing"
                else None,
            )
            strategy.current_version = version
            strategy.save(update_fields=["current_version"])
            # Wings first (BUY), then the shorts: an iron condor, one lot a leg.
            for position, (side, option_type, offset) in enumerate(
                (("BUY", "CE", 4), ("BUY", "PE", -4), ("SELL", "CE", 2), ("SELL", "PE", -2)),
                start=1,
            ):
                Leg.objects.create(
                    version=version,
                    position=position,
                    side=side,
                    option_type=option_type,
                    lots=1,
                    strike_mode="atm",
                    strike_offset=offset,
                )
            BrokerAllocation.objects.create(
                strategy=strategy, broker_account=account, multiplier=Decimal("1"), priority=1
            )
        paper_account_log_in(account=account, actor=user)
        strategy_ids.append(strategy.pk)
    return strategy_ids


class Session:
    """One simulated session: the clock, its market, and paper adapters priced by it."""

    def __init__(self, *, day: date, clock: SessionClock) -> None:
        from execution.market.simulated import SimulatedMarket

        self.day = day
        self.clock = clock
        self.market = SimulatedMarket(clock=clock)
        self._adapters: dict[int, Any] = {}

    def adapter(self, account: Any) -> Any:
        from brokers.paper.adapter import PaperAdapter
        from brokers.registry import credentials_for

        if account.pk not in self._adapters:
            self._adapters[account.pk] = PaperAdapter(credentials_for(account), market=self.market)
        return self._adapters[account.pk]

    def send(self, payloads: list[dict[str, Any]]) -> int:
        """Send account batches now (simulated T has come) and record their outcomes."""
        from brokers.models import BrokerAccount
        from execution.orders.lifecycle import outcomes_apply
        from execution.send import sender

        accounts = BrokerAccount.objects.in_bulk([p["account_id"] for p in payloads])
        sent = 0
        for payload in payloads:
            account = accounts[payload["account_id"]]
            # The sender judges lateness on the wall clock: each order's time is moved onto it
            # as the batch goes out, keeping how late it is on the session's clock (an entry
            # sent at its minute is on time; in production the accounts send side by side).
            shift = time.time() - self.clock().timestamp()
            orders = []
            for o in payload["orders"]:
                if o.get("intended_at") is not None:
                    o = {**o, "intended_at": o["intended_at"] + shift}
                orders.append(sender.OutgoingOrder(**o))
            # Claimed as an account task claims them (the claim is what the wire mark checks).
            mine = sender.claims_take(o.tag for o in orders)
            orders = [o for o in orders if o.tag in mine]
            report = sender.send_batch(
                account_id=account.pk,
                adapter=self.adapter(account),
                ops_limit=account.orders_per_second,
                orders=orders,
                fire_at_epoch=None,
            )
            outcomes_apply(report.outcomes)
            sent += len(report.outcomes)
        return sent

    def send_unsent(self, *, since: datetime) -> int:
        """Closing orders the watch committed at this minute (it does not send them here)."""
        from execution.intents.build import batches_for
        from execution.models import IntentState, OrderIntent

        intents = list(
            OrderIntent.objects.filter(
                state=IntentState.INTENT, intended_at__gte=since, run__session_date=self.day
            ).exclude(purpose="entry")
        )
        if not intents:
            return 0
        batches = batches_for(intents, fire_at=self.clock())
        return self.send([b.to_json() for b in batches])


def simulate_day(
    *,
    strategies: int,
    speed: float,
    day: date | None = None,
    seed: int = 1,
    today: date | None = None,
    sleep: Any = time.sleep,
    watch_every: int = 1,
) -> Summary:
    """Run one compressed session and return its summary (see the module docstring).
    `watch_every`: minutes between two passes of the watch (1: every minute, as the beat's
    MTM pass at most; more makes a large simulation cheaper and its exits coarser)."""
    from execution import services
    from execution.dispatch import boundary_dispatch
    from execution.models import Fill, OrderIntent, Position, RunState, ScheduledRun
    from execution.orders.lifecycle import open_orders_reconcile
    from execution.planning import plan as planning
    from execution.protection.watch import runs_watch

    if strategies < 1:
        raise ValueError("simulate at least one strategy")
    if speed <= 0:
        raise ValueError("the speed is simulated seconds per real second: more than 0")
    if watch_every < 1:
        raise ValueError("watch at least once a minute apart: --watch-every 1 or more")
    started = time.monotonic()
    today = today or timezone.now().astimezone(IST).date()
    day = session_day_for(day, today=today)
    summary = Summary(day=day, strategies=strategies, speed=speed)
    strategy_ids = seed_traders(count=strategies, day=day, seed=seed)
    witness = _redis_witness_set()

    clock = SessionClock(_at(day, SESSION_START) - timedelta(minutes=30))
    session = Session(day=day, clock=clock)
    # Before the open: plan the day and check the accounts, as the beat does at 08:00-09:00.
    planned = planning.day_plan(day=day)
    runs = ScheduledRun.objects.filter(
        session_date=day, strategy_version__strategy_id__in=strategy_ids
    )
    summary.planned_runs = runs.count()
    if not summary.planned_runs:
        raise ValueError(f"nothing planned on {day}: {planned.not_planned[:3]}")
    summary.ready_problems = sum(len(r.problems) for r in services.accounts_ready_check(day=day))

    run_ids = list(runs.values_list("pk", flat=True))
    begin, end = _at(day, SESSION_START), _at(day, SESSION_END)
    real_start = time.monotonic()
    behind: list[float] = []
    late_boundaries = 0
    minute = begin
    while minute <= end:
        # Pace: simulated time runs `speed` times faster than the wall clock.
        due = real_start + (minute - begin).total_seconds() / speed
        ahead = due - time.monotonic()
        if ahead > 0:
            sleep(ahead)
        behind.append(max(0.0, time.monotonic() - due))
        clock.advance_to(minute)
        fire_times = sorted(
            set(
                ScheduledRun.objects.filter(
                    pk__in=run_ids, state=RunState.PLANNED, fire_at__lte=minute
                ).values_list("fire_at", flat=True)
            )
        )
        for fire_at in fire_times:
            if fire_at < minute - timedelta(minutes=1):
                late_boundaries += 1
            result = boundary_dispatch(
                fire_at=fire_at,
                market=session.market,
                wait=False,
                start_sends=False,
                late_cap=False,
                now=minute,
            )
            session.send([b.to_json() for b in result.batches])
        if int((minute - begin).total_seconds() // 60) % watch_every == 0:
            runs_watch(now=minute, market=session.market, send=False)
            session.send_unsent(since=minute)
        if minute.minute % 15 == 0:
            _reconcile(open_orders_reconcile, minute, summary.reconciliation)
        minute += timedelta(minutes=1)
    _reconcile(open_orders_reconcile, end, summary.reconciliation)

    intents = OrderIntent.objects.filter(run_id__in=run_ids)
    summary.orders = dict(Counter(intents.values_list("purpose", flat=True)))
    summary.orders["total"] = intents.count()
    summary.states = dict(Counter(intents.values_list("state", flat=True)))
    summary.fills = Fill.objects.filter(intent__run_id__in=run_ids).count()
    # How each entry run's position was closed: the watch's reason (MTM limits, a stop, the
    # square-off), else its scheduled exit run, else not at all.
    closed_by_exit = set(
        intents.filter(purpose="exit").values_list("run__entry_run_id", flat=True).distinct()
    )
    reasons: Counter[str] = Counter()
    for run_id, reason in runs.filter(boundary="entry").values_list("pk", "exit_reason"):
        if reason:
            reasons[_reason_kind(reason)] += 1
        elif run_id in closed_by_exit:
            reasons["scheduled exit"] += 1
        elif Position.objects.filter(run_id=run_id).exists():
            reasons["not closed"] += 1
        else:
            reasons["never entered"] += 1
    summary.exits = dict(reasons)
    summary.skipped_runs = dict(
        Counter(
            n.split(":")[0][:60]
            for n in runs.filter(state="skipped").values_list("note", flat=True)
        )
    )
    positions = Position.objects.filter(run_id__in=run_ids)
    summary.pnl = sum((p.pnl() for p in positions), Decimal("0"))
    summary.duplicates, summary.lost = _at_the_broker(intents)
    summary.reconciliation["open_after_close"] = (
        positions.exclude(net_quantity=0).count() + intents.filter(state="intent").count()
    )
    summary.lateness = {
        "boundaries_dispatched_late": late_boundaries,
        "behind_schedule_p50_s": round(_percentile(behind, 50), 3),
        "behind_schedule_max_s": round(max(behind, default=0.0), 3),
    }
    summary.redis_cleared = not _redis_witness_present(witness)
    summary.wall_seconds = time.monotonic() - started
    return summary


def _redis_witness_set() -> str:
    """A key in the engine's Redis that lives as long as the simulation. The claims and
    "about to write" marks live there too: whatever clears that database meanwhile (the test
    suite's `cache.clear()` flushes it when it shares REDIS_URL) takes the claims of orders
    still to be written, and their senders leave them (not theirs any more) to the reconciler,
    which finds them late: entries missed, counted under reconciliation "sent"."""
    from execution.send.sender import engine_redis

    key = f"simulate_day:witness:{time.time_ns()}"
    engine_redis().set(key, "1", ex=86400)
    return key


def _redis_witness_present(key: str) -> bool:
    from execution.send.sender import engine_redis

    return bool(engine_redis().delete(key))


def _reconcile(reconcile: Any, now: datetime, totals: dict[str, int]) -> None:
    for key, value in reconcile(now=now).items():
        totals[key] = totals.get(key, 0) + value


def _reason_kind(reason: str) -> str:
    """`combined target (MTM ₹1,234)` → `combined target`."""
    return reason.split(" (")[0]


def _at_the_broker(intents: Any) -> tuple[int, int]:
    """Duplicates and lost orders, counted at the paper books by tag."""
    from brokers.paper.models import PaperOrder

    tags = list(intents.values_list("tag", "state"))
    written = Counter(
        PaperOrder.objects.filter(tag__in=[t for t, _ in tags]).values_list("tag", flat=True)
    )
    duplicates = sum(n - 1 for n in written.values() if n > 1)
    lost = sum(1 for tag, state in tags if not written[tag] and state not in REPORTED_STATES)
    return duplicates, lost


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]
