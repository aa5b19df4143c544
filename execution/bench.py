"""The boundary benchmark behind `manage.py bench_boundary` (see that command for the flags).

It starts the broker emulators and real Celery workers as child processes on 127.0.0.1, seeds
N strategies (each its own trader with its own accounts, one per broker), runs one boundary a
few seconds ahead and reads the arrival times of the orders from the emulators' logs.

Modes: `engine` (the real dispatch: one task per account, hedge-first, at T), `naive` (the
obvious design: one Celery ETA task per order, each loading its intent and making its adapter),
`floor` (the same orders, pre-built, written at T by bare client processes with the engine's
wire client: no database, no Celery; execution.bench_floor). The run gets a declared special
session around now in the calendar (the bench database is a scratch one), so the calendar guard
lets it through at any hour.

`BENCH_DUMP=<file>` writes T, the expected tags and the emulators' raw order log of the last
trial as JSON, for looking at the arrivals order by order (`{t}` in the name: one file per
trial, named by its T in epoch seconds; the scratch database keeps every trial's rows).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from celery import shared_task
from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.db import connection
from django.utils import timezone

from execution import bench_faults, bench_floor
from execution.markettime import IST

logger = logging.getLogger(__name__)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@shared_task(acks_late=True)
def naive_order_send_task(intent_id: int) -> str:
    """Baseline for the benchmark only: one ETA task per order (load, build adapter, send)."""
    from brokers.registry import get_adapter
    from execution.intents.build import outgoing
    from execution.models.engine import OrderIntent
    from execution.orders.lifecycle import outcomes_apply
    from execution.send import sender

    intent = OrderIntent.objects.select_related("account").get(pk=intent_id)
    order = sender.OutgoingOrder(**outgoing(intent))
    sender.claims_take([order.tag])
    outcome = sender.send_one(
        get_adapter(intent.account),
        order,
        intent.account_id,
        ops_limit=intent.account.orders_per_second,
    )
    outcomes_apply([outcome])
    return outcome.state


@dataclass
class Options:
    strategies: int
    legs: int
    accounts: int
    brokers: list[str]
    latency_ms: float
    mode: str
    kill_worker: bool
    workers: int = 2
    lead: float = 8.0
    trials: int = 1
    hedge: str = "ack"  # the strategies' hedge confirmation: ack (wait) or none
    fault_rate: float = 0.0  # mixed broker faults (execution.bench_faults), engine mode only
    seed: int = 1  # decides every order's fault
    floor_processes: int = 0  # the floor's client processes (0: as many as --workers)


@dataclass
class Seeded:
    run_ids: list[int] = field(default_factory=list)
    account_ids: list[int] = field(default_factory=list)
    # tag -> (strategy index, account id)
    expected: dict[str, tuple[int, int]] = field(default_factory=dict)


class CpuMeter:
    """Process CPU seconds (user + system) spent by the engine's side of one trial: the
    sending worker processes (the engine's dispatcher runs in one of them) from when they are
    ready until the orders have arrived, this process's own dispatch and sends in the naive
    mode, and in the floor mode its serializing and its client processes (reported by them,
    execution.bench_floor). The emulators (the brokers) are not counted."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._watched: dict[int, tuple[Any, float]] = {}

    @staticmethod
    def _total(process: Any) -> float:
        times = process.cpu_times()
        return float(times.user + times.system)

    def watch(self, pid: int) -> None:
        import psutil

        process = psutil.Process(pid)
        self._watched[pid] = (process, self._total(process))

    def settle(self, pid: int) -> None:
        """Add what `pid` spent since watched (call before it ends: a killed process's
        counters are gone)."""
        import psutil

        process, base = self._watched.pop(pid, (None, 0.0))
        if process is None:
            return
        with contextlib.suppress(psutil.Error):  # gone already: nothing more to read
            self.seconds += self._total(process) - base

    def settle_all(self) -> None:
        for pid in list(self._watched):
            self.settle(pid)

    @staticmethod
    def own() -> float:
        import resource

        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime


MACHINE = "machine"  # LoadMeter's name for the whole machine's busy CPU


class LoadMeter:
    """CPU around T, sampled by a thread every INTERVAL from half a second before T for up to
    SAMPLE_SECONDS: each broker's emulator (one process, one event loop), the floor's client
    processes and the whole machine. `busy` reads it from T until the last order arrived: an
    emulator near 1.0 core had its loop saturated (it set the lag); the machine near all its
    cores was saturated (what else ran took its share)."""

    INTERVAL = 0.02
    SAMPLE_SECONDS = 30.0
    CLIENT = "client"  # the floor's client processes' names start with it
    WORKER = "worker"  # the engine's worker processes' names start with it

    def __init__(self, emulators: dict[str, Any], fire_at: float) -> None:
        import psutil

        self._processes = {
            broker: psutil.Process(emulator.process.pid)
            for broker, emulator in emulators.items()
            if getattr(emulator, "process", None) is not None
        }
        self._samples: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._sample, args=(fire_at,), name="bench-load", daemon=True
        )
        self._thread.start()

    def watch_processes(self, pids: list[int], *, kind: str = CLIENT) -> None:
        """Sample these processes too: the floor's clients, or (`kind` WORKER) the engine's
        worker processes (a worker's pool and lane threads are in it)."""
        import psutil

        for index, pid in enumerate(pids):
            with contextlib.suppress(psutil.Error):
                self._processes[f"{kind}{index}"] = psutil.Process(pid)

    @staticmethod
    def _machine() -> float:
        import psutil

        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def _sample(self, fire_at: float) -> None:
        import psutil

        if self._stop.wait(max(0.0, fire_at - 0.5 - time.time())):
            return
        while not self._stop.is_set() and time.time() < fire_at + self.SAMPLE_SECONDS:
            now = time.time()
            self._samples[MACHINE].append((now, self._machine()))
            for name, process in list(self._processes.items()):
                with contextlib.suppress(psutil.Error):  # a client that has ended
                    self._samples[name].append((now, CpuMeter._total(process)))
            self._stop.wait(self.INTERVAL)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _cores(self, name: str, start: float, end: float) -> tuple[float, float] | None:
        """(CPU seconds, cores busy on average) of `name` between two instants."""
        samples = self._samples.get(name, [])
        if not samples:
            return None
        before = [s for s in samples if s[0] <= start] or samples[:1]
        after = [s for s in samples if s[0] >= end] or samples[-1:]
        (t0, cpu0), (t1, cpu1) = before[-1], after[0]
        return cpu1 - cpu0, (cpu1 - cpu0) / max(t1 - t0, 1e-3)

    def busy(self, fire_at: float, logs: dict[str, list[dict]]) -> dict[str, Any]:
        """`emulators`: per broker the orders, last arrival (ms after T), CPU ms from T to it
        and that in cores; `machine`: from T to the last arrival of all, the cores busy (of
        how many), and the floor's clients' share of them."""
        import psutil

        busy: dict[str, Any] = {"emulators": {}}
        last_of_all = fire_at
        for broker, entries in logs.items():
            arrivals = [e["arrival_ns"] / 1e9 for e in entries if e.get("kind", "place") == "place"]
            measured = self._cores(broker, fire_at, max(arrivals, default=fire_at))
            if not arrivals or measured is None:
                continue
            last_of_all = max(last_of_all, max(arrivals))
            busy["emulators"][broker] = {
                "orders": len(arrivals),
                "last_arrival_ms": round((max(arrivals) - fire_at) * 1000, 1),
                "cpu_ms": round(measured[0] * 1000, 1),
                "cpu_share": round(measured[1], 2),
            }
        machine = self._cores(MACHINE, fire_at, last_of_all)
        if machine is not None:
            busy["machine"] = {"cores": psutil.cpu_count(), "busy_cores": round(machine[1], 2)}
            for kind, field in (
                (self.CLIENT, "floor_clients_cores"),
                (self.WORKER, "workers_cores"),
            ):
                shares = [
                    self._cores(name, fire_at, last_of_all)
                    for name in self._processes
                    if name.startswith(kind)
                ]
                if shares:
                    busy["machine"][field] = round(sum(c[1] for c in shares if c is not None), 2)
        return busy


def traffic_add(result: dict[str, Any], emulators: dict[str, Any], fire_at: float) -> None:
    """Beside each emulator's CPU: every request it took from T to its last order's arrival
    (orders and anything else, such as book reads, by route) and the connections opened in
    that window (the engine opens its connections before T)."""
    for broker, busy in result.get("emulators", {}).items():
        until = fire_at + (busy["last_arrival_ms"] + 1) / 1000  # rounded to 0.1 ms
        seen = emulators[broker].traffic(int(fire_at * 1e9), int(until * 1e9))
        busy["requests"] = seen["requests"]
        busy["new_connections"] = seen["new_connections"]


# --- processes ------------------------------------------------------------------------------
def start_emulators(opts: Options) -> dict[str, Any]:
    from brokers.emulator import start_subprocess

    return {
        broker: start_subprocess(
            broker,
            latency_ms=opts.latency_ms,
            auto_accounts=True,
            orders_per_second=10,
        )
        for broker in opts.brokers
    }


def _worker_argv(index: int, mode: str) -> list[str]:
    # The execution worker takes many account tasks in ahead of T (they return at once and
    # the sends happen on the process's asynchronous lane), so it prefetches generously.
    # Both designs get the same pool; the naive one sends with `requests` from each task.
    pool = ["-P", "threads", "-c", "16", "--prefetch-multiplier", "4"]
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "trader",
        "worker",
        # The hot path's queue, and the engine's (the reconciliation a restarted worker starts
        # on its way up, which finds a killed worker's orders by tag): make run gives `engine`
        # a background worker of its own.
        "-Q",
        "execution,engine",
        *pool,
        "-n",
        f"bench{index}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-l",
        "WARNING",
        "-I",
        "execution.bench",
    ]


def start_worker(index: int, mode: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(os.path.join(env["BENCH_DIR"], f"worker{index}.log"), "ab")  # noqa: SIM115
    return subprocess.Popen(
        _worker_argv(index, mode), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def wait_for_workers(count: int, timeout: float = 60.0) -> None:
    from trader.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=1.0) or []
        if len(replies) >= count:
            return
    raise RuntimeError(f"only some of {count} Celery workers answered within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- data ----------------------------------------------------------------------------------
def declare_session(start: datetime, end: datetime | None = None) -> None:
    """The benchmark's own session, independent of the wall-clock date (bench database only):
    special sessions covering [start, end] in IST (without `end`: from 5 minutes before
    `start` to 30 minutes after it), split at midnight, so the guard lets the
    run pass at any hour, weekends and holidays included. A year it touches (and the next,
    for expiries) whose holiday list the scratch database lacks is marked loaded, noted as the
    benchmark's, so that the fail-closed calendar has a year to open."""
    from datetime import time as clock_time

    from execution.models import HolidayCalendarYear, SpecialSession

    if end is None:
        start, end = start - timedelta(minutes=5), start + timedelta(minutes=30)
    local_start, local_end = start.astimezone(IST), end.astimezone(IST)
    day = local_start.date()
    while day <= local_end.date():
        opens = local_start.time() if day == local_start.date() else clock_time(0, 0)
        closes = local_end.time() if day == local_end.date() else clock_time.max
        for exchange in ("NSE", "BSE"):
            for year in (day.year, day.year + 1):
                HolidayCalendarYear.objects.get_or_create(
                    exchange=exchange,
                    year=year,
                    defaults={
                        "source": "benchmark (scratch database)",
                        "note": "marked loaded by bench_boundary for its own session",
                    },
                )
            SpecialSession.objects.update_or_create(
                exchange=exchange,
                date=day,
                defaults={
                    "opens_at": opens.replace(microsecond=0),
                    "closes_at": closes,
                    "reason": "Benchmark session",
                },
            )
        day += timedelta(days=1)


def register_contracts(emulators: dict[str, Any], day: Any) -> None:
    """Contracts around ATM, registered with emulators whose orders name instruments by id."""
    from execution.market import default_market
    from execution.reference import contracts, instruments

    spot = default_market().spot("NIFTY")
    step = contracts.strike_step("NIFTY", day)
    expiry = contracts.pick_expiry("NIFTY", day, "current_week")
    atm = (Decimal(spot) / step).quantize(Decimal(1)) * step
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    for offset in range(-40, 41):
        for option_type in ("CE", "PE"):
            instrument = instruments.instrument_for(
                "NIFTY", expiry, atm + offset * step, option_type
            )
            kite_symbol, _ = instruments.broker_symbol(instrument, "kite")
            for broker in emulators:
                if broker in ("kite", "fyers"):
                    continue
                symbol, token = instruments.broker_symbol(instrument, broker)
                rows[broker].append(
                    {
                        "key": token,
                        "token": token,
                        "exchange": "NFO",
                        "exch_seg": "NFO",
                        "tradingsymbol": kite_symbol,
                        "canonical": kite_symbol,
                        "symbol": symbol,
                        "broker_symbol": symbol,
                    }
                )
    for broker, broker_rows in rows.items():
        emulators[broker].add_instruments(broker_rows)


def seed(opts: Options, fire_at: datetime) -> Seeded:
    """N traders, each with one account per broker (round robin) and one strategy of L legs,
    and their entry runs at `fire_at`."""
    from brokers.models import AccountStatus, BrokerAccount
    from execution.models import ScheduledRun, SpecialSession, Underlying
    from trader.models import Leg, Strategy, StrategyStatus, StrategyVersion, User

    stamp = f"{int(time.time())}"
    nifty = Underlying.objects.get(symbol="NIFTY")
    seeded = Seeded()
    users = User.objects.bulk_create(
        [User(email=f"bench{stamp}-{i}@bench.local") for i in range(opts.strategies)]
    )
    accounts = []
    now = timezone.now()
    for i, user in enumerate(users):
        for a in range(opts.accounts):
            key = f"b{stamp}u{i}a{a}"
            accounts.append(
                BrokerAccount(
                    owner=user,
                    broker=opts.brokers[a % len(opts.brokers)],
                    label=f"bench {a}",
                    status=AccountStatus.CONNECTED,
                    api_key=key,
                    api_secret=key,
                    access_token=key,
                    broker_user_id=key[:10].upper(),
                    token_issued_at=now,
                    token_expires_at=now + timedelta(hours=12),
                    static_ip_primary="127.0.0.1",
                )
            )
    accounts = BrokerAccount.objects.bulk_create(accounts)
    seeded.account_ids = [a.pk for a in accounts]
    strategies = Strategy.objects.bulk_create(
        [
            Strategy(
                owner=u,
                name=f"bench {i}",
                underlying=nifty,
                status=StrategyStatus.ACTIVE,
                hedge_confirmation=opts.hedge,
            )
            for i, u in enumerate(users)
        ]
    )
    versions = StrategyVersion.objects.bulk_create(
        [
            StrategyVersion(
                strategy=s,
                number=1,
                entry_time=datetime.strptime("09:20", "%H:%M").time(),
                exit_time=datetime.strptime("15:10", "%H:%M").time(),
                effective_from=now.date(),
            )
            for s in strategies
        ]
    )
    legs = []
    for version in versions:
        for position in range(1, opts.legs + 1):
            # Hedges (BUY, further out) and shorts alternate, like an iron condor.
            buy = position % 2 == 0
            legs.append(
                Leg(
                    version=version,
                    position=position,
                    side="BUY" if buy else "SELL",
                    option_type="CE" if position <= (opts.legs + 1) // 2 else "PE",
                    lots=1,
                    strike_mode="atm",
                    strike_offset=(4 if buy else 2) * (1 if position % 4 in (1, 2) else -1),
                )
            )
    Leg.objects.bulk_create(legs)
    special = SpecialSession.objects.filter(
        exchange=nifty.exchange, date=fire_at.astimezone(IST).date()
    ).first()  # declare_session made one for today (the benchmark may run on a weekend)
    by_owner: dict[int, list[Any]] = defaultdict(list)
    for account in accounts:
        by_owner[account.owner_id].append(account)
    runs = ScheduledRun.objects.bulk_create(
        [
            ScheduledRun(
                session_date=fire_at.astimezone(IST).date(),
                boundary="entry",
                fire_at=fire_at,
                strategy_version=v,
                owner_id=v.strategy.owner_id,
                source="bench",
                source_ref=stamp,
                special_session=special,
                allocations=[
                    {"account_id": acc.pk, "broker": acc.broker, "priority": p}
                    for p, acc in enumerate(by_owner[v.strategy.owner_id], start=1)
                ],
            )
            for v in versions
        ]
    )
    seeded.run_ids = [r.pk for r in runs]
    return seeded


# --- floor: the same orders, pre-built, bare clients (execution.bench_floor) -----------------
def capture_requests(batches: list[Any]) -> list[bench_floor.Steps]:
    """Each account's adapter builds its order requests (its order_request), nothing sent:
    one list of steps per account batch (`steps_of`)."""
    from brokers.models import BrokerAccount
    from brokers.registry import get_adapter
    from execution.send import sender

    captured: list[bench_floor.Steps] = []
    accounts = {
        a.pk: a for a in BrokerAccount.objects.filter(pk__in=[b.account_id for b in batches])
    }
    for batch in batches:
        adapter = get_adapter(accounts[batch.account_id])
        steps = []
        for step in steps_of([sender.OutgoingOrder(**order) for order in batch.orders]):
            built = [adapter.order_request(order.request()) for order in step]
            steps.append([(b.method, b.url, b.headers, b.body) for b in built])
        captured.append(steps)
    return captured


def steps_of(orders: list[Any]) -> list[list[Any]]:
    """One account's orders in the steps the engine sends them in (execution.send.sender):
    first those written at T (`eager`: the first phase, and the later ones that do not wait
    for their hedges), then each later phase's orders that wait, phase by phase."""
    from execution.send import sender

    phases = sender.by_phase(orders)
    first = sender.eager(phases)
    at_t = {order.tag for order in first}
    later = [[o for o in phase_orders if o.tag not in at_t] for phase_orders in phases.values()]
    return [first, *(step for step in later if step)]


# --- analysis ------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def analyse(
    *, mode: str, fire_at: datetime, expected: dict[str, tuple[int, int]], logs: list[dict]
) -> dict[str, Any]:
    t_ns = fire_at.timestamp() * 1e9
    if os.environ.get("BENCH_DUMP"):
        # "{t}" in the name: one file per trial, named by its T (epoch seconds).
        dump = os.environ["BENCH_DUMP"].replace("{t}", str(int(fire_at.timestamp())))
        with open(dump, "w") as fh:
            json.dump({"t_ns": t_ns, "expected": expected, "logs": logs}, fh, default=str)
    arrivals: dict[str, list[float]] = defaultdict(list)
    for entry in logs:
        if entry.get("kind", "place") == "place" and entry.get("tag") in expected:
            arrivals[entry["tag"]].append((entry["arrival_ns"] - t_ns) / 1e6)
    firsts = {tag: min(times) for tag, times in arrivals.items()}
    lags = list(firsts.values())
    spreads: dict[tuple[int, int], list[float]] = defaultdict(list)
    for tag, lag in firsts.items():
        spreads[expected[tag]].append(lag)
    spread_values = [max(v) - min(v) for v in spreads.values() if v]
    return {
        "mode": mode,
        "orders": sum(len(t) for t in arrivals.values()),
        "expected": len(expected),
        "early": sum(1 for times in arrivals.values() for lag in times if lag < 0),
        "duplicates": sum(len(t) - 1 for t in arrivals.values() if len(t) > 1),
        "missing": len(expected) - len(arrivals),
        "lag_ms": {
            "p50": round(percentile(lags, 50), 1),
            "p90": round(percentile(lags, 90), 1),
            "p99": round(percentile(lags, 99), 1),
            "max": round(max(lags, default=0.0), 1),
        },
        "first_order_lag_ms": round(min(lags, default=0.0), 2),
        "leg_spread_ms_p99": round(percentile(spread_values, 99), 1),
        "dispatch_queries": None,
    }


REPORTED_STATES = ("abandoned", "rejected")
UNSETTLED_STATES = ("unknown", "needs_attention")


def not_arrived_accounting(
    run_ids: list[int], expected: dict[str, tuple[int, int]], logs: list[dict]
) -> dict[str, int]:
    """What became of the expected orders that never reached an emulator:

    - `missed_reported`: not sent on purpose and the owner told: the intent is abandoned or
      rejected with its reason (e.g. "Missed: 6.1 s late", or a short not sent because its
      hedge was not placed) and an audit event of it names the owner; a missed trade, reported,
      not a lost order;
    - `unsettled`: maybe written by a worker that died (marked "about to write"), so never
      resent: unknown or needs attention, the owner alerted;
    - `missing`: lost silently: anything else (still an intent, or "sent" / "acknowledged" in
      the database while no broker has it, or abandoned with nobody told)."""
    from execution.models import ExecutionEvent, OrderIntent

    # Every order of the runs counts, those made after `expected` was read too (the unwinds
    # of the leg-failure policy, failover orders): one that reached an emulator arrived.
    arrived = {e.get("tag") for e in logs}
    rows = list(
        OrderIntent.objects.filter(run_id__in=run_ids)
        .exclude(tag__in=arrived)
        .values_list("pk", "run_id", "state", "error")
    )
    told = set(
        ExecutionEvent.objects.filter(
            intent_id__in=[pk for pk, *_ in rows], user_id__isnull=False
        ).values_list("intent_id", flat=True)
    )
    # Or told on the run: an event naming the owner that reports the run's fate (the
    # leg-failure policy stopping it, a skip), not the dispatch's own "N orders written".
    runs_told = set(
        ExecutionEvent.objects.filter(run_id__in=run_ids, user_id__isnull=False)
        .exclude(kind="run.dispatched")
        .exclude(intent_id__isnull=False)
        .values_list("run_id", flat=True)
    )
    counts = {"missing": 0, "missed_reported": 0, "unsettled": 0}
    for pk, run_id, state, error in rows:
        if state in REPORTED_STATES and error and (pk in told or run_id in runs_told):
            counts["missed_reported"] += 1
        elif state in UNSETTLED_STATES and (pk in told or run_id in runs_told):
            counts["unsettled"] += 1
        else:
            counts["missing"] += 1
    return counts


NOT_AT_BROKER_STATES = ("intent", "rejected", "abandoned", "failed_over")


def untracked_count(run_ids: list[int], logs: list[dict]) -> int:
    """Orders of the runs that an emulator created (it gave an order id) while the database
    holds them as never placed (unsent, refused, dropped or moved): positions the platform
    does not know about. Must be 0."""
    from execution.models import OrderIntent

    created = {e.get("tag") for e in logs if e.get("order_id")}
    return (
        OrderIntent.objects.filter(
            run_id__in=run_ids, tag__in=created, state__in=NOT_AT_BROKER_STATES
        )
        .values("tag")
        .distinct()
        .count()
    )


def guarantees_check(
    run_ids: list[int], fire_at: datetime, logs: list[dict], *, latency_ms: float
) -> dict[str, int]:
    """What must hold however many orders leave at once, counted from the brokers' side:

    - `hedge_first_broken`: entry orders that wait for their hedges and reached a broker
      before every earlier phase of their run at that account was created there and could
      have been answered (its arrival plus the emulator's latency); an earlier-phase order
      moved to another account (failed over) is not waited for here, and an order failover
      brought to this account later is waited for only by the orders failover brought with
      it (the account's own shorts went on its own hedges, long before);
    - `over_late_cap`: entries written later after T than the lateness cap allows;
    - `rate_refused`: writes a broker refused for its orders-per-second window (a planned
      429 fault of --fault-rate is not counted: that is the broker's, not our rate)."""
    from execution import conf
    from execution.models import OrderIntent, Purpose

    created: dict[str, float] = {}
    arrived: dict[str, float] = {}
    rate_refused = 0
    for entry in logs:
        tag = entry.get("tag")
        if entry.get("outcome") == "rate" and not entry.get("fault"):
            rate_refused += 1
        if not tag or entry.get("kind", "place") != "place":
            continue
        at = entry["arrival_ns"] / 1e9
        arrived[tag] = min(at, arrived.get(tag, at))
        if entry.get("order_id"):
            created[tag] = min(at, created.get(tag, at))
    rows = list(
        OrderIntent.objects.filter(run_id__in=run_ids, purpose=Purpose.ENTRY).values_list(
            "tag",
            "run_id",
            "account_id",
            "phase",
            "waits_for_hedges",
            "state",
            "sent_at",
            "failover_from_id",
        )
    )
    by_batch: dict[tuple[int, int], list[tuple]] = defaultdict(list)
    for row in rows:
        by_batch[(row[1], row[2])].append(row)
    latency = latency_ms / 1000
    broken = 0
    for batch in by_batch.values():
        for tag, _, _, phase, waits, _, _, moved_here in batch:
            if not waits or tag not in arrived:
                continue
            earlier = [
                r
                for r in batch
                if r[3] < phase and r[5] != "failed_over" and (moved_here or r[7] is None)
            ]
            if any(created.get(r[0], float("inf")) + latency > arrived[tag] for r in earlier):
                broken += 1
    cap = timedelta(seconds=conf.entry_late_cap_seconds())
    over_cap = sum(1 for *_, sent_at, _ in rows if sent_at and sent_at - fire_at > cap)
    return {
        "hedge_first_broken": broken,
        "over_late_cap": over_cap,
        "rate_refused": rate_refused,
    }


def _expected_tags(run_ids: list[int]) -> dict[str, tuple[int, int]]:
    from execution.models import OrderIntent

    return {
        tag: (run_id, account_id)
        for tag, run_id, account_id in OrderIntent.objects.filter(run_id__in=run_ids).values_list(
            "tag", "run_id", "account_id"
        )
    }


def lag_by_step(run_ids: list[int], fire_at: datetime, logs: list[dict]) -> dict[str, Any]:
    """The lag of the orders written at T (`lag_ms_at_t`) and of those written on their hedges'
    answers (`lag_ms_after_hedges`: a later phase of their account's batch that waits for its
    hedges; None when there are none), in both designs: the second includes the hedges' round
    trip through the broker."""
    from execution.models import OrderIntent

    rows = list(
        OrderIntent.objects.filter(run_id__in=run_ids).values_list(
            "tag", "run_id", "account_id", "phase", "waits_for_hedges"
        )
    )
    first: dict[tuple[int, int], int] = {}
    for _, run_id, account_id, phase, _ in rows:
        key = (run_id, account_id)
        first[key] = min(phase, first.get(key, phase))
    after = {
        tag: bool(waits and phase > first[run, account]) for tag, run, account, phase, waits in rows
    }
    t_ns = fire_at.timestamp() * 1e9
    lags: dict[bool, dict[str, float]] = {True: {}, False: {}}
    for entry in logs:
        tag = entry.get("tag")
        if entry.get("kind", "place") == "place" and tag in after:
            lag = (entry["arrival_ns"] - t_ns) / 1e6
            group = lags[after[tag]]
            group[tag] = min(lag, group.get(tag, lag))

    def summary(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        return {"p50": round(percentile(values, 50), 1), "p99": round(percentile(values, 99), 1)}

    return {
        "lag_ms_at_t": summary(list(lags[False].values())),
        "lag_ms_after_hedges": summary(list(lags[True].values())),
    }


def acknowledged_within_ms(run_ids: list[int], fire_at: datetime) -> float | None:
    """The slowest acknowledgement after T among the orders, from the recorded ack times."""
    from execution.models import OrderIntent

    acked = list(
        OrderIntent.objects.filter(run_id__in=run_ids, acked_at__isnull=False).values_list(
            "acked_at", flat=True
        )
    )
    if not acked:
        return None
    return round(max((a - fire_at).total_seconds() * 1000 for a in acked if a), 1)


# --- one trial -------------------------------------------------------------------------------
def run_trial(opts: Options, env: dict[str, str], emulators: dict[str, Any]) -> dict[str, Any]:
    from execution.dispatch import boundary_dispatch, dispatch_lead, expected_intents
    from execution.models import OrderIntent

    for emulator in emulators.values():
        emulator.order_log()  # the log is cumulative: remember where this trial starts
    seen = {broker: len(e.order_log()) for broker, e in emulators.items()}
    fire_at = (timezone.now() + timedelta(seconds=opts.lead)).replace(microsecond=0)
    declare_session(timezone.now() - timedelta(minutes=5), fire_at + timedelta(minutes=30))
    seeded = seed(opts, fire_at)
    workers: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any]
    cpu = CpuMeter()
    plan = bench_faults.FaultPlan()
    floor: bench_floor.FloorReport | None = None
    load = LoadMeter(emulators, fire_at.timestamp())
    try:
        if opts.mode in ("engine", "naive"):
            workers = [start_worker(i, opts.mode, env) for i in range(opts.workers)]
            if opts.fault_rate:
                workers.append(_background_worker(env))
            wait_for_workers(len(workers), timeout=max(60.0, opts.lead * 3))
            for worker in workers:
                cpu.watch(worker.pid)
            load.watch_processes([w.pid for w in workers], kind=LoadMeter.WORKER)
        # The engine's lead, sized as the scheduler sizes it (execution.dispatch.dispatch_lead).
        lead = timedelta(seconds=dispatch_lead(expected_intents(fire_at)))
        if fire_at - timezone.now() < lead + timedelta(seconds=0.5):
            raise RuntimeError(f"workers took too long to start: raise --lead (lead {lead})")
        queries: int | None = None
        if opts.mode == "engine":
            from execution.tasks import boundary_dispatch_task

            print(f"dispatch lead: {lead.total_seconds():.1f} s", file=sys.stderr)
            async_result = boundary_dispatch_task.apply_async(
                args=[fire_at.isoformat()], eta=fire_at - lead, queue="execution"
            )
            if opts.fault_rate:
                plan = _faults_arm(opts, emulators, seeded, fire_at)
            if opts.kill_worker:
                _kill_and_restart(workers, fire_at, opts, env, cpu)
            try:
                answer = async_result.get(timeout=opts.lead + 30)
                queries = answer.get("queries")
                print(f"dispatch steps (s after T): {answer.get('timings')}", file=sys.stderr)
            except CeleryTimeoutError:
                # --kill-worker: the worker that ran the dispatch may be the one killed after T,
                # before it stored its result (the orders went out: they are counted below).
                print("dispatch result lost with the killed worker", file=sys.stderr)
        else:
            # The floor starts earlier by what its clients need to start and connect (their
            # preparation is not what it measures; `client_ready_before_t_ms` shows it).
            expected_orders = opts.strategies * opts.legs * opts.accounts
            ahead = bench_floor.prepare_seconds(expected_orders) if opts.mode == "floor" else 0
            _wait_until(fire_at - lead - timedelta(seconds=ahead))
            counted: list[str] = []

            def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
                counted.append(sql)
                return execute(sql, params, many, context)

            own_cpu = CpuMeter.own()
            with connection.execute_wrapper(count):
                dispatched = boundary_dispatch(fire_at=fire_at, wait=False, start_sends=False)
            queries = len(counted)
            if opts.mode == "naive":
                ids = list(
                    OrderIntent.objects.filter(run_id__in=seeded.run_ids).values_list(
                        "pk", flat=True
                    )
                )
                for intent_id in ids:
                    naive_order_send_task.apply_async(
                        args=[intent_id], eta=fire_at, queue="execution"
                    )
                cpu.seconds += CpuMeter.own() - own_cpu
                if opts.kill_worker:
                    _kill_and_restart(workers, fire_at, opts, env, cpu)
            else:
                built = capture_requests(dispatched.batches)
                # The floor's CPU is its clients' alone (not the dispatch that made the
                # orders): serializing, connecting, writing and reading the answers; their
                # wait for T sleeps and costs none.
                floor = bench_floor.fire(
                    built,
                    fire_at.timestamp(),
                    opts.floor_processes or opts.workers,
                    on_start=load.watch_processes,
                )
                cpu.seconds += floor.cpu_seconds
                if floor.late(fire_at.timestamp()):
                    print("floor: a client process was not ready at T", file=sys.stderr)
        _wait_until(fire_at + timedelta(seconds=3 + (8 if opts.kill_worker else 0)))
        settled_after = _faults_settle(opts, seeded, fire_at)
        expected = _expected_tags(seeded.run_ids)
        # Late orders still count (their lag shows it): wait until every order arrived, or up
        # to a minute after T; what has not arrived by then is missing. (With faults the
        # settle wait above has waited already: the orders at the brokers are final.)
        deadline = fire_at + timedelta(seconds=0 if opts.fault_rate else 60)
        while True:
            logs = []
            for broker, emulator in emulators.items():
                logs.extend(emulator.order_log()[seen[broker] :])
            arrived = {e.get("tag") for e in logs} & expected.keys()
            if len(arrived) == len(expected) or timezone.now() > deadline:
                break
            time.sleep(1.0)
        time.sleep(1.0)  # a duplicate sent late still shows
        by_broker = {b: e.order_log()[seen[b] :] for b, e in emulators.items()}
        logs = [entry for entries in by_broker.values() for entry in entries]
        result = analyse(mode=opts.mode, fire_at=fire_at, expected=expected, logs=logs)
        result.update(lag_by_step(seeded.run_ids, fire_at, logs))
        if floor is not None:
            result.update(floor.fields(fire_at.timestamp(), percentile))
        load.stop()
        result.update(load.busy(fire_at.timestamp(), by_broker))
        traffic_add(result, emulators, fire_at.timestamp())
        cpu.settle_all()
        result.update(not_arrived_accounting(seeded.run_ids, expected, logs))
        # The floor writes no database: "untracked" is the engine's and naive's figure.
        result["untracked"] = (
            None if opts.mode == "floor" else untracked_count(seeded.run_ids, logs)
        )
        # The floor writes no database and keeps no phases: these are the engine's and naive's.
        if opts.mode != "floor":
            result.update(
                guarantees_check(seeded.run_ids, fire_at, logs, latency_ms=opts.latency_ms)
            )
        result["cpu_seconds"] = round(cpu.seconds, 2)
        result["cpu_seconds_per_1000_orders"] = round(cpu.seconds / max(1, len(expected)) * 1000, 3)
        result["dispatch_queries"] = queries
        result["_acked_within_ms"] = acknowledged_within_ms(seeded.run_ids, fire_at)
        if opts.fault_rate:
            result.update(_faults_result(opts, seeded, logs, plan, settled_after))
    finally:
        load.stop()
        if opts.fault_rate:
            bench_faults.faults_disarm(emulators)
        for worker in workers:
            stop_process(worker)
    return result


def _kill_and_restart(
    workers: list[subprocess.Popen[bytes]],
    fire_at: datetime,
    opts: Options,
    env: dict[str, str],
    cpu: CpuMeter,
) -> None:
    """SIGKILL the first worker just after T, then start it again (startup reconciliation)."""
    _wait_until(fire_at + timedelta(milliseconds=20))
    cpu.settle(workers[0].pid)  # read just before the kill (its counters die with it)
    workers[0].send_signal(signal.SIGKILL)
    workers[0].wait(timeout=10)
    workers[0] = start_worker(0, opts.mode, env)
    cpu.watch(workers[0].pid)


# --- --fault-rate (execution.bench_faults) ------------------------------------------------------
def _background_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return bench_faults.start_background_worker(
        env, ROOT, os.path.join(env["BENCH_DIR"], "background.log")
    )


def _faults_arm(
    opts: Options, emulators: dict[str, Any], seeded: Seeded, fire_at: datetime
) -> bench_faults.FaultPlan:
    return bench_faults.faults_arm(
        emulators=emulators,
        run_ids=seeded.run_ids,
        expected_orders=opts.strategies * opts.legs * opts.accounts,
        fire_at=fire_at,
        seed=opts.seed,
        rate=opts.fault_rate,
    )


def _faults_settle(opts: Options, seeded: Seeded, fire_at: datetime) -> float | None:
    if not opts.fault_rate:
        return None
    return bench_faults.settle_wait(
        seeded.run_ids, fire_at, max_seconds=bench_faults.SETTLE_MAX_SECONDS
    )


def _faults_result(
    opts: Options,
    seeded: Seeded,
    logs: list[dict],
    plan: bench_faults.FaultPlan,
    settled_after: float | None,
) -> dict[str, Any]:
    return {
        "fault_rate": opts.fault_rate,
        "seed": opts.seed,
        **bench_faults.fault_accounting(seeded.run_ids, logs, not_arrived_accounting),
        "faults_planned": plan.planned,
        "settled_after_s": settled_after,
    }


def _wait_until(moment: datetime) -> None:
    delay = moment.timestamp() - time.time()
    if delay > 0:
        time.sleep(delay)


def point_adapters_at(emulators: dict[str, Any], env: dict[str, str]) -> None:
    """Adapters of this process and of the workers talk to the emulators."""
    from django.conf import settings

    urls = dict(settings.BROKER_BASE_URLS)
    for broker, emulator in emulators.items():
        hosts = emulator.base_urls
        urls[broker] = hosts["api"]
        if "hft" in hosts:
            urls[f"{broker}_hft"] = hosts["hft"]
        if broker == "dhan":
            urls["dhan_auth"] = hosts.get("auth", hosts["api"])
    settings.BROKER_BASE_URLS = urls
    for name, url in urls.items():
        env[f"BROKER_BASE_URL_{name.upper()}"] = url


def run(opts: Options, env: dict[str, str]) -> dict[str, Any]:
    """All trials; each trial's counts add up, lags are those of the last trial."""
    with ExitStack() as stack:
        emulators = start_emulators(opts)
        for emulator in emulators.values():
            stack.callback(emulator.stop)
        point_adapters_at(emulators, env)

        now = timezone.now()
        declare_session(now - timedelta(minutes=5), now + timedelta(minutes=30))
        register_contracts(emulators, now.astimezone(IST).date())
        results = [run_trial(opts, env, emulators) for _ in range(opts.trials)]
    final = dict(results[-1])
    for key in (
        "orders",
        "expected",
        "early",
        "duplicates",
        "missing",
        "missed_reported",
        "unsettled",
        "untracked",
        "cpu_seconds",
        "hedge_first_broken",
        "over_late_cap",
        "rate_refused",
    ):
        if final.get(key) is not None:  # a mode's own figures only (None: not this mode's)
            final[key] = sum(r.get(key) or 0 for r in results)
    final["cpu_seconds"] = round(final["cpu_seconds"], 2)
    final["cpu_seconds_per_1000_orders"] = round(
        final["cpu_seconds"] / max(1, final["expected"]) * 1000, 3
    )
    if opts.fault_rate:
        bench_faults.totals(final, results)
    acked = final.pop("_acked_within_ms", None)
    if acked is not None:
        print(f"slowest acknowledgement after T: {acked} ms", file=sys.stderr)
    if opts.trials > 1:
        per_trial = [
            {
                k: r.get(k, 0)
                for k in (
                    "duplicates",
                    "missing",
                    "missed_reported",
                    "unsettled",
                    "untracked",
                    "early",
                )
            }
            for r in results
        ]
        print(f"per trial: {json.dumps(per_trial)}", file=sys.stderr)
    return final
