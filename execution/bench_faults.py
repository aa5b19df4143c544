"""`bench_boundary --fault-rate F --seed S`: mixed broker faults at one boundary, and what
became of every order (see README, "Benchmark").

Every order's fault is decided from the seed and the order's place in the benchmark (strategy
index, account index, leg, slice, purpose), never from its random tag or its arrival order, so
two runs with the same seed inject the same faults. The plan is pushed to each emulator
(brokers.emulator.tagfaults) between the dispatch's commit (T - ε) and T.

- Accounts with a fallback (a lower-priority account in their run's allocations) are down for
  the whole boundary with probability F / 6: every write is refused with the broker's "not
  accepted" server error (Kite 502) and every book read with 503, so their orders fail over.
- Every other order gets a fault with probability 5F / 6, its kind drawn evenly among
  `5xx-after`, `drop` (accept-then-drop), `429` (a burst of 1 to 3 refusals), `book-lag`
  (answer lost and the order hidden from the books for 1 to 5 s) and `lookup-fail` (answer
  lost and the account's books answering 503 for 1 to 6 s).

After T the benchmark waits (bounded) until no order is still in flight, acting as the beat
(the 15-second reconcilers) meanwhile, then counts at the emulators and in the database.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from brokers.emulator.tagfaults import TAG_FAULT_KINDS

FAULT_KINDS = ("down", *TAG_FAULT_KINDS)
IN_FLIGHT_STATES = ("intent", "sent", "unknown")
SETTLE_MAX_SECONDS = 240.0  # after T: the wait for lookups and follow-ups always ends
SETTLE_QUIET_SECONDS = 4.0  # nothing in flight and nothing new for this long: settled
BEAT_SECONDS = 15.0  # the reconcilers' period in production (execution/schedule.py)


# --- the plan (pure: the seed and the orders' places decide it) ---------------------------
def _rng(seed: int, *parts: Any) -> random.Random:
    return random.Random("|".join(str(p) for p in (seed, *parts)))


def account_down(seed: int, rate: float, account_key: str) -> bool:
    return _rng(seed, "down", account_key).random() < rate / len(FAULT_KINDS)


def order_fault(seed: int, rate: float, order_key: str) -> dict[str, Any] | None:
    """The fault of one order, as the emulator's plan takes it, or None."""
    rng = _rng(seed, "order", order_key)
    if rng.random() >= rate * len(TAG_FAULT_KINDS) / len(FAULT_KINDS):
        return None
    kind = rng.choice(TAG_FAULT_KINDS)
    fault: dict[str, Any] = {"kind": kind}
    if kind == "429":
        fault["count"] = rng.randint(1, 3)
    elif kind == "book-lag":
        fault["seconds"] = round(rng.uniform(1.0, 5.0), 1)
    elif kind == "lookup-fail":
        fault["seconds"] = round(rng.uniform(1.0, 6.0), 1)
    return fault


@dataclass(frozen=True)
class PlannedOrder:
    tag: str
    key: str  # its place in the benchmark: s<strategy>/a<account>/l<leg>/n<slice>/<purpose>
    broker: str
    api_key: str


@dataclass(frozen=True)
class PlannedAccount:
    key: str  # s<strategy>/a<account>
    broker: str
    api_key: str
    has_fallback: bool


@dataclass
class FaultPlan:
    tags: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # broker -> tag ->
    down: dict[str, list[str]] = field(default_factory=dict)  # broker -> api keys
    planned: dict[str, int] = field(default_factory=dict)  # kind -> orders

    def by_key(self, orders: list[PlannedOrder]) -> dict[str, str]:
        """kind of each order key (for comparing two plans whose tags differ)."""
        kinds = {}
        down = {k for keys in self.down.values() for k in keys}
        for order in orders:
            fault = self.tags.get(order.broker, {}).get(order.tag)
            if order.api_key in down:
                kinds[order.key] = "down"
            elif fault:
                kinds[order.key] = fault["kind"]
        return kinds


def fault_plan(
    seed: int, rate: float, orders: list[PlannedOrder], accounts: list[PlannedAccount]
) -> FaultPlan:
    plan = FaultPlan()
    down = {a.api_key for a in accounts if a.has_fallback and account_down(seed, rate, a.key)}
    for account in accounts:
        plan.tags.setdefault(account.broker, {})
        plan.down.setdefault(account.broker, [])
        if account.api_key in down:
            plan.down[account.broker].append(account.api_key)
    planned: Counter[str] = Counter()
    for order in orders:
        if order.api_key in down:
            planned["down"] += 1
            continue
        fault = order_fault(seed, rate, order.key)
        if fault is not None:
            plan.tags.setdefault(order.broker, {})[order.tag] = fault
            planned[fault["kind"]] += 1
    plan.planned = dict(sorted(planned.items()))
    return plan


# --- arming the emulators before T ---------------------------------------------------------
def _index(name: str) -> str:
    return name.rsplit(" ", 1)[-1]  # "bench 12" -> "12" (bench.seed's names)


def boundary_orders(run_ids: list[int]) -> tuple[list[PlannedOrder], list[PlannedAccount]]:
    """The dispatch's orders of these runs and the runs' accounts, with their places."""
    from brokers.models import BrokerAccount
    from execution.models import OrderIntent, ScheduledRun

    rows = OrderIntent.objects.filter(run_id__in=run_ids).values_list(
        "tag",
        "run__strategy_version__strategy__name",
        "account__label",
        "account__broker",
        "account__api_key",
        "leg__position",
        "slice_no",
        "purpose",
    )
    orders = [
        PlannedOrder(
            tag=tag,
            key=f"s{_index(strategy)}/a{_index(label)}/l{leg}/n{slice_no}/{purpose}",
            broker=broker,
            api_key=api_key,
        )
        for tag, strategy, label, broker, api_key, leg, slice_no, purpose in rows
    ]
    runs = ScheduledRun.objects.filter(pk__in=run_ids).select_related("strategy_version__strategy")
    accounts: list[PlannedAccount] = []
    labels = dict(BrokerAccount.objects.values_list("pk", "label"))
    keys = dict(BrokerAccount.objects.values_list("pk", "api_key"))
    brokers = dict(BrokerAccount.objects.values_list("pk", "broker"))
    for run in runs:
        strategy = _index(run.strategy_version.strategy.name)
        priorities = [a["priority"] for a in run.allocations]
        for allocation in run.allocations:
            pk = allocation["account_id"]
            accounts.append(
                PlannedAccount(
                    key=f"s{strategy}/a{_index(labels[pk])}",
                    broker=brokers[pk],
                    api_key=keys[pk],
                    has_fallback=allocation["priority"] < max(priorities),
                )
            )
    return orders, accounts


def faults_arm(
    *,
    emulators: dict[str, Any],
    run_ids: list[int],
    expected_orders: int,
    fire_at: datetime,
    seed: int,
    rate: float,
) -> FaultPlan:
    """Wait for the dispatch's orders (committed at T - ε), then plan and push the faults.
    Orders not committed by T - 0.3 s get none (the plan says how many were planned)."""
    from execution.models import OrderIntent

    give_up = fire_at - timedelta(seconds=0.3)
    while timezone.now() < give_up:
        if OrderIntent.objects.filter(run_id__in=run_ids).count() >= expected_orders:
            break
        time.sleep(0.05)
    orders, accounts = boundary_orders(run_ids)
    plan = fault_plan(seed, rate, orders, accounts)
    for broker, emulator in emulators.items():
        emulator.plan_tag_faults(plan.tags.get(broker, {}), down=plan.down.get(broker, []))
    if timezone.now() > fire_at:
        print("faults: the plan reached the emulators after T", file=sys.stderr)
    return plan


def faults_disarm(emulators: dict[str, Any]) -> None:
    for emulator in emulators.values():
        emulator.plan_tag_faults({}, down=[])


# --- after T: the background worker, the beat, and the wait -----------------------------------
def background_worker_argv(name: str) -> list[str]:
    """`make run`'s background worker (engine and default queues: the fast follow-up of live
    orders and the reconcilers), which settles unknown outcomes; its command line is
    run_platform's own."""
    from trader.management.commands.run_platform import worker_argv

    return worker_argv(
        sys.executable, name=name, queues=("engine", "default"), concurrency=4, loglevel="WARNING"
    )


def start_background_worker(env: dict[str, str], root: str, log_path: str) -> Any:
    import os

    log = open(log_path, "ab")  # noqa: SIM115
    return subprocess.Popen(
        background_worker_argv(f"benchbg-{os.getpid()}@%h"),
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _beat() -> None:
    from execution import enqueue

    enqueue.task_enqueue(enqueue.RECONCILE_OPEN_ORDERS, queue="engine")
    enqueue.task_enqueue("execution.tasks.trade_books_reconcile_task", queue="engine")


def settle_wait(run_ids: list[int], fire_at: datetime, *, max_seconds: float) -> float:
    """Wait until no order of the runs is in flight (intent, sent, unknown) and none appeared
    for SETTLE_QUIET_SECONDS, or until `max_seconds` after T; meanwhile start the reconcilers
    every BEAT_SECONDS, as beat does. Returns the seconds after T at which it stopped."""
    from execution.models import OrderIntent

    deadline = fire_at + timedelta(seconds=max_seconds)
    next_beat = time.monotonic()
    last: tuple[int, int] | None = None
    quiet_since = time.monotonic()
    while timezone.now() < deadline:
        if time.monotonic() >= next_beat:
            _beat()
            next_beat = time.monotonic() + BEAT_SECONDS
        intents = OrderIntent.objects.filter(run_id__in=run_ids)
        now = (intents.count(), intents.filter(state__in=IN_FLIGHT_STATES).count())
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif now[1] == 0 and time.monotonic() - quiet_since >= SETTLE_QUIET_SECONDS:
            break
        time.sleep(0.5)
    return round((timezone.now() - fire_at).total_seconds(), 1)


# --- what became of the orders -----------------------------------------------------------------
def _created(logs: list[dict]) -> Counter[str]:
    """Orders created at the emulators, by tag (a refusal creates none)."""
    return Counter(
        e["tag"]
        for e in logs
        if e.get("kind", "place") == "place" and e.get("order_id") and e.get("tag")
    )


def injected_faults(logs: list[dict]) -> dict[str, int]:
    """Orders (distinct tags) that met each fault at the emulators."""
    seen = {(e["fault"], e.get("tag")) for e in logs if e.get("fault")}
    return dict(sorted(Counter(kind for kind, _ in seen).items()))


def chains(rows: list[tuple[int, str, int | None]]) -> list[list[str]]:
    """Each order with the orders failover moved its lots to (any depth), oldest first:
    one lot-leg each. `rows`: (id, tag, failover_from id)."""
    children: dict[int | None, list[tuple[int, str]]] = defaultdict(list)
    for pk, tag, parent in rows:
        children[parent].append((pk, tag))
    result = []
    for root_pk, root_tag in sorted(children[None]):
        chain, todo = [], [(root_pk, root_tag)]
        while todo:
            pk, tag = todo.pop()
            chain.append((pk, tag))
            todo.extend(children.get(pk, []))
        result.append([tag for _, tag in sorted(chain)])
    return result


def fault_accounting(
    run_ids: list[int], logs: list[dict], not_arrived: Callable[..., dict[str, int]]
) -> dict[str, Any]:
    """Duplicates and lost lots across failover, and how the faults were settled.

    - `duplicates`: orders created at the emulators beyond one per lot-leg: the same tag
      created twice, or one leg created at two accounts (an order and its failover);
    - `lost`: lot-legs created nowhere and not reported to their owner (the `missing` of
      `not_arrived`, i.e. bench.not_arrived_accounting, asked about the last order of each
      such chain), next to `missed_reported` and `unsettled`;
    - `failed_over`: orders failover created; `unknown_resolved`: orders whose answer was lost
      (ambiguous or unknown) now settled from the broker's books; `needs_attention`."""
    from execution.models import ExecutionEvent, OrderIntent

    rows = list(
        OrderIntent.objects.filter(run_id__in=run_ids).values_list(
            "pk", "tag", "failover_from_id", "state"
        )
    )
    created = _created(logs)
    duplicates = 0
    unplaced_ends = set()
    for chain in chains([(pk, tag, parent) for pk, tag, parent, _ in rows]):
        placed = sum(created[tag] for tag in chain)
        duplicates += max(0, placed - 1)
        if not placed:
            unplaced_ends.add(chain[-1])
    tags = {tag for _, tag, _, _ in rows}
    counts = not_arrived(
        run_ids, dict.fromkeys(tags, (0, 0)), [{"tag": t} for t in tags - unplaced_ends]
    )
    states = {pk: state for pk, _, _, state in rows}
    lost_answer: set[int | None] = set(
        ExecutionEvent.objects.filter(intent_id__in=list(states))
        .filter(kind="order.unknown")
        .values_list("intent_id", flat=True)
    ) | set(
        ExecutionEvent.objects.filter(
            intent_id__in=list(states), data__error_class="ambiguous"
        ).values_list("intent_id", flat=True)
    )
    unsettled = ("unknown", "needs_attention", *IN_FLIGHT_STATES)
    return {
        "duplicates": duplicates,
        "lost": counts["missing"],
        "missing": counts["missing"],
        "missed_reported": counts["missed_reported"],
        "unsettled": counts["unsettled"],
        "orders": sum(created[t] for t in tags),
        "failed_over": sum(1 for _, _, parent, _ in rows if parent is not None),
        "unknown_resolved": sum(
            1 for pk in lost_answer if states.get(pk or 0, "") not in unsettled
        ),
        "unknown_left": sum(1 for s in states.values() if s == "unknown"),
        "needs_attention": sum(1 for s in states.values() if s == "needs_attention"),
        "faults": injected_faults(logs),
    }


SUMMED = ("lost", "failed_over", "unknown_resolved", "unknown_left", "needs_attention")


def totals(final: dict[str, Any], results: list[dict[str, Any]]) -> None:
    """Several trials: the fault figures add up (as bench.run adds the others)."""
    for key in SUMMED:
        final[key] = sum(r.get(key, 0) for r in results)
    for key in ("faults", "faults_planned"):
        merged: Counter[str] = Counter()
        for r in results:
            merged.update(r.get(key, {}))
        final[key] = dict(sorted(merged.items()))
