"""The hot path: one broker account's orders of one boundary, sent at T, hedge-first.

Nothing slow happens between T and the send. Before T a task loads (once per worker process
and boundary) the accounts and their adapters, claims its orders in Redis, warms the
connection and waits on the monotonic clock. At T it takes its orders-per-second slots in one
Redis call per phase and sends the phase's orders concurrently (greenlets under Celery's gevent
pool, threads otherwise): BUY orders first (on entry the hedges, on exit the buy-back of the
shorts), then, once every BUY of that run is acknowledged, the SELL orders (unless the strategy
chose not to wait: then they follow right behind the BUYs and are never held back). Outcomes go
to an in-memory buffer that one writer per process flushes to the database after the sends.

Orders of HTTP adapters take the asynchronous lane (`AsyncLane`, `send_batch_async`): requests
prepared as bytes before T and written by the gate of T in one pass (see `execution.send.wire`).

The database is never touched by the per-account greenlets: each would open its own
connection (Django's connections are per greenlet under gevent).
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from brokers.base import (
    BrokerAdapter,
    BrokerError,
    OrderRequest,
    OrderType,
    PermanentError,
    Product,
    RetryableError,
    Side,
    WireAnswer,
)
from execution import conf

logger = logging.getLogger(__name__)

# Retryable errors (429, documented "not accepted" refusals, a refused connection) are tried
# this many times in total; a retry-after longer than MAX_RETRY_WAIT is not waited for (the
# order is reported rejected: a boundary never waits long on one account).
MAX_ATTEMPTS = 3
MAX_RETRY_WAIT = 1.0
# After an ambiguous send (timeout, dropped connection) the order is looked up by tag this
# many times, this far apart, before it is left "unknown" for the reconciler.
LOOKUP_TRIES = 3
LOOKUP_PAUSE = 0.3
# The last stretch before T is spun, not slept: sleeps overshoot by up to a millisecond or two.
SPIN_SECONDS = 0.002
CLAIM_TTL_SECONDS = 900
# A process's liveness key is refreshed every ALIVE_BEAT_SECONDS and expires ALIVE_TTL_SECONDS
# after the last beat: a dead sender's orders are taken over that soon after it dies (a live
# one missed for a stall loses only its unwritten orders to the taker: the marks decide).
ALIVE_TTL_SECONDS = 2
ALIVE_BEAT_SECONDS = 0.5

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
# The claimant name of this process's reconciler (the orders of a dead sender it takes over):
# not WORKER_ID, so that an account task of this same process never counts the reconciler's
# claims as its own, nor the reconciler the task's (both would write the order). Alive as long
# as the process is (worker_alive reads the process's liveness key).
RECONCILER_ID = f"{WORKER_ID}/reconcile"
# The claimant name under which this process stops orders for good (the leg-failure policy).
STOPPER_ID = f"{WORKER_ID}/stop"


def gevent_active() -> bool:
    try:
        from gevent import monkey
    except ImportError:  # pragma: no cover - gevent is a pinned requirement
        return False
    return bool(monkey.is_module_patched("socket"))


# --- payloads -------------------------------------------------------------------------------
@dataclass(frozen=True)
class OutgoingOrder:
    """One intent as the account task receives it (JSON-able, no secrets)."""

    intent_id: int
    run_id: int
    tag: str
    phase: int
    exchange: str
    tradingsymbol: str
    instrument_token: str
    side: str
    quantity: int
    product: str
    order_type: str
    price: str | None
    algo_id: str
    # False: sent right behind the earlier phases, without waiting for their acknowledgements
    # (the strategy's hedge confirmation), and never held back.
    waits_for_hedges: bool = True
    purpose: str = "entry"  # a Purpose value: only entries are dropped for lateness
    intended_at: float = 0.0  # T of the order (epoch seconds); 0: not known, never late
    # Why the session guard before the write does not apply ("paper": the paper broker,
    # including "test now on paper" runs); "" for a live order, always checked.
    session_exempt: str = ""
    # The quote its contract was chosen on, when the contract was resolved at T - ε (a slot);
    # carried back on its outcome with the contract (never part of the request).
    reference_price: str | None = None

    def request(self) -> OrderRequest:
        return OrderRequest(
            exchange=self.exchange,
            tradingsymbol=self.tradingsymbol,
            side=Side(self.side),
            quantity=self.quantity,
            order_type=OrderType(self.order_type),
            product=Product(self.product),
            tag=self.tag,
            price=None if self.price is None else Decimal(self.price),
            market_protection=(
                conf.market_protection() if self.order_type == OrderType.MARKET else None
            ),
            instrument_token=self.instrument_token,
            algo_id=self.algo_id,
        )


@dataclass
class Outcome:
    """What happened to one intent on the hot path; applied to the database later."""

    intent_id: int
    run_id: int
    account_id: int
    tag: str
    state: str  # an IntentState value
    sent_at: float | None = None  # epoch seconds
    acked_at: float | None = None
    broker_order_id: str = ""
    error: str = ""
    error_class: str = ""  # permanent | retryable | ambiguous | blocked
    attempts: int = 0
    # The contract the order was sent with: an entry's is resolved at T - ε after its intent
    # was written, and outcomes_apply writes it onto an intent still holding its placeholder
    # (the dispatcher stopped before writing the resolution).
    tradingsymbol: str = ""
    instrument_token: str = ""
    price: str | None = None
    reference_price: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def of(cls, order: OutgoingOrder, account_id: int, **fields: Any) -> Outcome:
        """A fresh outcome of `order` (state "intent" unless given)."""
        fields.setdefault("state", "intent")
        return cls(
            intent_id=order.intent_id,
            run_id=order.run_id,
            account_id=account_id,
            tag=order.tag,
            tradingsymbol=order.tradingsymbol,
            instrument_token=order.instrument_token,
            price=order.price,
            reference_price=order.reference_price,
            **fields,
        )


@dataclass
class BatchReport:
    account_id: int
    outcomes: list[Outcome] = field(default_factory=list)
    first_send_lag_ms: float | None = None

    @property
    def needs_attention(self) -> bool:
        return any(o.state not in ("acknowledged",) for o in self.outcomes)

    def record(self, results: list[Outcome], *, start: float) -> set[int]:
        """Add one round of outcomes; returns the runs with an order not acknowledged (their
        later phases are held back)."""
        results = [r for r in results if r.error_class != "not_ours"]
        sent = [r.sent_at for r in results if r.sent_at]
        if self.first_send_lag_ms is None and sent:
            self.first_send_lag_ms = (min(sent) - start) * 1000
        self.outcomes.extend(results)
        return {r.run_id for r in results if r.state != "acknowledged"}


def by_phase(orders: list[OutgoingOrder]) -> dict[int, list[OutgoingOrder]]:
    """The orders grouped by phase, phases in sending order."""
    phases: dict[int, list[OutgoingOrder]] = {}
    for order in sorted(orders, key=lambda o: o.phase):
        phases.setdefault(order.phase, []).append(order)
    return phases


# --- the monotonic wait -----------------------------------------------------------------------
def wait_until(fire_at_epoch: float) -> None:
    """Return at (never before) the wall-clock instant `fire_at_epoch`.

    The remaining time is converted once to a monotonic deadline (immune to clock steps while
    waiting); the final check on the wall clock guarantees "never before T" as the broker's
    clock sees it."""
    deadline = time.monotonic() + (fire_at_epoch - time.time())
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= SPIN_SECONDS:
            break
        time.sleep(remaining - SPIN_SECONDS)
    while time.monotonic() < deadline or time.time() < fire_at_epoch:
        pass


# --- Redis: claims, liveness and "about to write" marks --------------------------------------
# (The orders-per-second budget is brokers.ratelimit's, shared by every kind of write.)
# Take over a claim only when it is still held by the claimant we saw dead (compare-and-set).
_TAKE_OVER = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""


@functools.cache
def _redis_for(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url)


def engine_redis() -> Any:
    """The Redis client of the engine's claims, liveness keys and marks (REDIS_URL)."""
    return _redis_for(settings.REDIS_URL)


def cost_learn(key: str, measured: float) -> None:
    """Fold `measured` (seconds per order) into the moving average kept under `key` in Redis
    (half the last figure, half the new; kept 30 days): what sizes the next dispatch leads."""
    try:
        client = engine_redis()
        previous = client.get(key)
        value = measured if previous is None else 0.5 * float(previous) + 0.5 * measured
        client.set(key, f"{value:.6f}", ex=30 * 86400)
    except Exception:  # a lead from the last known figure is still sound
        logger.warning("could not record the cost per order under %s", key, exc_info=True)


def cost_read(key: str) -> float | None:
    """The moving average kept under `key` (cost_learn), or None when none is known."""
    try:
        found = engine_redis().get(key)
    except Exception:
        found = None
    return None if found is None else float(found)


def claim_key(tag: str) -> str:
    return f"execution:claim:{tag}"


def alive_key(worker_id: str) -> str:
    return f"execution:alive:{worker_id}"


def claims_take(tags: Iterable[str], *, owner: str = WORKER_ID) -> set[str]:
    """Claim tags for this worker in one round trip; returns those now ours."""
    tags = list(tags)
    pipe = engine_redis().pipeline(transaction=False)
    for tag in tags:
        pipe.set(claim_key(tag), owner, nx=True, ex=CLAIM_TTL_SECONDS)
    for tag in tags:
        pipe.get(claim_key(tag))
    answers = pipe.execute()[len(tags) :]
    return {tag for tag, value in zip(tags, answers, strict=True) if value == owner.encode()}


def claim_take_over(tag: str, *, dead_owner: str | None, owner: str = WORKER_ID) -> bool:
    script = engine_redis().register_script(_TAKE_OVER)
    return bool(script(keys=[claim_key(tag)], args=[dead_owner or "", owner, CLAIM_TTL_SECONDS]))


def claims_take_over(dead_owners: dict[str, str | None], *, owner: str = WORKER_ID) -> set[str]:
    """claim_take_over for many tags in one round trip: {tag: the claimant seen dead, or None
    when unclaimed}; returns the tags now ours."""
    if not dead_owners:
        return set()
    client = engine_redis()
    script = client.register_script(_TAKE_OVER)
    pipe = client.pipeline(transaction=False)
    tags = list(dead_owners)
    for tag in tags:
        script(
            keys=[claim_key(tag)],
            args=[dead_owners[tag] or "", owner, CLAIM_TTL_SECONDS],
            client=pipe,
        )
    return {tag for tag, won in zip(tags, pipe.execute(), strict=True) if won}


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def claim_release(tag: str, *, owner: str = WORKER_ID) -> bool:
    """Give up our claim of `tag` (compare-and-delete: another's claim stays)."""
    script = engine_redis().register_script(_RELEASE)
    return bool(script(keys=[claim_key(tag)], args=[owner]))


# "About to write" marks. Set, in one round trip per batch, immediately before the first byte
# of the batch's orders is written, and only for the orders whose claim this worker still
# holds (checked in the same script, so a worker that stalled past its liveness and lost its
# claims to a reconciler can no longer write them). The reconciler takes the claim over first
# and then reads the mark: no mark means no sender ever came close to writing the order, the
# one case in which it may be sent again. A mark means "maybe written": looked up, never resent.
# Redis must keep its data across restarts (appendonly) for this proof, as for the claims.
WIRE_MARK_TTL_SECONDS = 2 * 86400
_MARK = """
local n = #KEYS / 2
local marked = {}
for i = 1, n do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('SET', KEYS[n + i], ARGV[1], 'EX', ARGV[2])
    marked[#marked + 1] = i
  end
end
return marked
"""


def wire_key(tag: str) -> str:
    return f"execution:wire:{tag}"


def wire_marks_set(tags: Iterable[str], *, owner: str = WORKER_ID) -> set[str]:
    """Mark these orders "about to be written" (those still claimed by `owner`); returns the
    tags marked. An order not returned must not be written by this worker."""
    tags = list(tags)
    if not tags:
        return set()
    script = engine_redis().register_script(_MARK)
    marked = script(keys=_mark_keys(tags), args=[owner, WIRE_MARK_TTL_SECONDS])
    return {tags[int(i) - 1] for i in marked}


def _mark_keys(tags: list[str]) -> list[str]:
    return [claim_key(t) for t in tags] + [wire_key(t) for t in tags]


async def wire_marks_set_async(client: Any, tags: list[str], *, owner: str = WORKER_ID) -> set[str]:
    """wire_marks_set on an asyncio Redis client (the lane's loop never blocks on it)."""
    if not tags:
        return set()
    script = client.register_script(_MARK)
    marked = await script(keys=_mark_keys(tags), args=[owner, WIRE_MARK_TTL_SECONDS])
    return {tags[int(i) - 1] for i in marked}


def wire_marked(tags: Iterable[str]) -> set[str]:
    """The tags some sender marked as about to be written (maybe on the wire)."""
    tags = list(tags)
    if not tags:
        return set()
    answers = engine_redis().mget([wire_key(t) for t in tags])
    return {tag for tag, value in zip(tags, answers, strict=True) if value is not None}


def unsent_stop(tags: Iterable[str]) -> set[str]:
    """Make sure orders will never be written, where that can be proved: each one that no
    live process holds is claimed under STOPPER_ID (so no sender can mark it any more), and
    of those, the ones nobody marked "about to write" are returned: never written, and now
    never will be. An order a live sender (or reconciler) holds, or one marked (maybe on the
    wire), is not returned: its outcome is that sender's, or the lookup's."""
    owners = claim_owners(tags)
    alive = {o: worker_alive(o) for o in {o for o in owners.values() if o is not None}}
    taken = claims_take_over(
        {t: o for t, o in owners.items() if o is None or not alive[o]}, owner=STOPPER_ID
    )
    return taken - wire_marked(taken)


# Stops an order for good unless a sender already marked it "about to write": its claim is
# taken (from anyone, a live sender included) in the same script that reads the mark. A mark
# is set by a script that checks the claim (_MARK), and Redis runs scripts one at a time:
# either the mark came first (the order may go out, and is not returned) or the stop did (the
# sender's mark is refused, so it never writes the order).
_STOP_UNLESS_MARKED = """
local n = #KEYS / 2
local stopped = {}
for i = 1, n do
  if redis.call('EXISTS', KEYS[n + i]) == 0 then
    redis.call('SET', KEYS[i], ARGV[1], 'EX', ARGV[2])
    stopped[#stopped + 1] = i
  end
end
return stopped
"""


def unsent_stop_now(tags: list[str]) -> set[str]:
    """Make these orders unwritable where no sender marked them "about to write" yet (one
    round trip); returns those: never written, and now never will be. Unlike the leg-failure
    policy's `unsent_stop`, a live sender's claim is taken too: a skipped run or an
    engaged kill switch stops what a sender holds but has not begun to write."""
    if not tags:
        return set()
    script = engine_redis().register_script(_STOP_UNLESS_MARKED)
    stopped = script(keys=_mark_keys(tags), args=[STOPPER_ID, CLAIM_TTL_SECONDS])
    return {tags[int(i) - 1] for i in stopped}


def claim_owner(tag: str) -> str | None:
    value = engine_redis().get(claim_key(tag))
    return value.decode() if value else None


def claim_owners(tags: Iterable[str]) -> dict[str, str | None]:
    """The claimant of each tag (None: unclaimed), in one round trip."""
    tags = list(tags)
    if not tags:
        return {}
    answers = engine_redis().mget([claim_key(t) for t in tags])
    return {t: (v.decode() if v else None) for t, v in zip(tags, answers, strict=True)}


def worker_alive(worker_id: str) -> bool:
    """Whether the process of claimant `worker_id` (a WORKER_ID or a RECONCILER_ID) lives."""
    process = worker_id.split("/", 1)[0]
    return process == WORKER_ID or bool(engine_redis().exists(alive_key(process)))


_heartbeat_started = threading.Event()


def heartbeat_start() -> None:
    """Keep this process's liveness key fresh, so a reconciler can tell a dead claimant."""
    if _heartbeat_started.is_set():
        return
    _heartbeat_started.set()
    client = engine_redis()

    def beat() -> None:
        while True:
            try:
                client.set(alive_key(WORKER_ID), "1", ex=ALIVE_TTL_SECONDS)
            except Exception:  # Redis down: the next beat retries; claims stay ours meanwhile.
                logger.warning("execution heartbeat could not reach Redis")
            time.sleep(ALIVE_BEAT_SECONDS)

    client.set(alive_key(WORKER_ID), "1", ex=ALIVE_TTL_SECONDS)
    threading.Thread(target=beat, name="execution-heartbeat", daemon=True).start()


# --- adapters, loaded once per process and boundary -----------------------------------------
@dataclass
class _CachedAdapter:
    adapter: BrokerAdapter
    version: str
    ops_limit: int
    warmed_at: float = 0.0
    broker: str = ""


class AdapterPool:
    """Adapters (with their pooled HTTP sessions) per account, kept across boundaries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._adapters: dict[int, _CachedAdapter] = {}
        self._loaded_for: dict[str, float] = {}

    def prepare(self, boundary_key: str, account_ids: list[int]) -> None:
        """Load every account of the boundary in one query (the first task to arrive does it;
        the others wait on the lock). Adapters are rebuilt only when the account changed.
        `account_ids` may be empty: then the accounts with orders due at the boundary
        (`boundary_key` is T in ISO form) are loaded."""
        with self._lock:
            if boundary_key in self._loaded_for:
                return
            from brokers.models import BrokerAccount
            from brokers.registry import get_adapter

            if account_ids:
                accounts = BrokerAccount.objects.filter(pk__in=account_ids)
            else:
                accounts = BrokerAccount.objects.filter(
                    order_intents__intended_at=datetime.fromisoformat(boundary_key),
                    order_intents__state="intent",
                ).distinct()
            for account in accounts:
                version = f"{account.updated_at.timestamp()}:{account.token_issued_at}"
                cached = self._adapters.get(account.pk)
                if cached is None or cached.version != version:
                    self._adapters[account.pk] = _CachedAdapter(
                        adapter=get_adapter(account),
                        version=version,
                        ops_limit=account.orders_per_second,
                        broker=account.broker,
                    )
            self._loaded_for = {boundary_key: time.time()}

    def get(self, account_id: int) -> _CachedAdapter:
        if account_id not in self._adapters:
            # Not among the boundary's accounts (a failover or kill-switch batch): load it.
            self._loaded_for.clear()
            self.prepare(f"account:{account_id}", [account_id])
        return self._adapters[account_id]

    def put(self, account_id: int, adapter: BrokerAdapter, ops_limit: int) -> None:
        """Register an adapter directly (tests, the floor benchmark)."""
        self._adapters[account_id] = _CachedAdapter(adapter, "manual", ops_limit)

    def clear(self) -> None:
        with self._lock:
            self._adapters.clear()
            self._loaded_for.clear()


ADAPTERS = AdapterPool()

# Idle keep-alive connections are closed by servers after a while; warm again past this age.
WARM_MAX_AGE = 20.0
# Garbage collection is done this long before T, then paused for at most GC_PAUSE_MAX seconds
# (see AsyncLane._collector_pause).
GC_QUIET_BEFORE = 0.8
# Orders armed for T are marked "about to write" this long before T (one Redis call).
MARK_AHEAD = 0.05
# The pass at T gives up the CPU once, after writing this many orders: the other processes
# that are ready then (the other send workers at their own gate, and where brokers are
# emulated on the same machine, the emulators reading the first orders) get a core at T
# instead of after the whole pass (thousands of writes, tens of milliseconds). Measured at
# 10,000 orders on 2 cores: the first order arrived 12 to 20 ms after T without, 1.5 to 3.4 with.
YIELD_AFTER = 16
GC_PAUSE_MAX = 4.0
# Connections a process opens to one broker host before T, at most: one per order it writes
# there at T (HTTP/1.1 carries one request at a time); an order that finds none idle at T opens
# its own, and at T a connection costs the broker and the sender far more than an idle one.
# Together they stay under half the process's open-files limit (WARM_FILES_SHARE).
MAX_WARM_CONNECTIONS = 4096
WARM_FILES_SHARE = 0.5
# Connections opened at a time while warming: a burst of connects beyond the server's accept
# backlog is dropped and retried by TCP a second later.
WARM_STEP = 128


def warm(cached: _CachedAdapter) -> None:
    """Open the pooled connection before T with a cheap read, so T pays no TCP handshake."""
    if time.monotonic() - cached.warmed_at < WARM_MAX_AGE:
        return
    try:
        cached.adapter.funds()
    except BrokerError as exc:
        # Not fatal: the send will report the real problem (expired token, IP) in words.
        logger.info("warm-up read failed: %s", exc.message)
    cached.warmed_at = time.monotonic()


# --- concurrency ----------------------------------------------------------------------------
_threads: ThreadPoolExecutor | None = None


def run_concurrently(calls: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Run the calls at once: greenlets under gevent, else a shared thread pool."""
    if len(calls) == 1:
        return [calls[0]()]
    if gevent_active():
        import gevent

        jobs = [gevent.spawn(call) for call in calls]
        gevent.joinall(jobs, raise_error=True)
        return [job.value for job in jobs]
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(max_workers=64, thread_name_prefix="execution-send")
    return list(_threads.map(_in_thread, calls))


def _in_thread(call: Callable[[], Outcome]) -> Outcome:
    try:
        return call()
    finally:
        # The paper broker books orders in the database: release the thread's connection.
        from django.db import connections

        connections.close_all()


# --- sending ---------------------------------------------------------------------------------
# --- the lateness cap ------------------------------------------------------------------------
MISSED_PREFIX = "Missed:"


def missed(order: OutgoingOrder, *, now: float | None = None) -> str:
    """The words of an entry too late to send ("Missed: N s late…"), else "". Checked before
    every write that is not at T (orphans, retries, failover, late or rate-delayed sends).
    Exits and kill-switch flattening are never missed: a position must be closed late or not."""
    if order.purpose != "entry" or not order.intended_at:
        return ""
    late = (time.time() if now is None else now) - order.intended_at
    cap = conf.entry_late_cap_seconds()
    if late <= cap:
        return ""
    return f"{MISSED_PREFIX} {late:.1f} s late (entries are not sent more than {cap:g} s after T)."


def missed_outcome(order: OutgoingOrder, account_id: int, words: str, **fields: Any) -> Outcome:
    fields.setdefault("state", "abandoned")
    return Outcome.of(order, account_id, error=words, error_class="late", **fields)


# --- the fourth weekend/holiday layer: the session guard just before the write ---------------
# Options trade on NSE (NFO) and BSE (BFO): the calendar is the exchange's.
_CALENDAR_EXCHANGE = {"NFO": "NSE", "BFO": "BSE"}
NOT_IN_SESSION = "Not sent: the exchange is closed at the write"


def session_refusal(order: OutgoingOrder, *, at: float) -> str:
    """Words refusing a live order written at epoch `at` outside that date's session window
    (execution.reference.calendar's public closed_reason, which the dispatcher's layer uses too); ""
    when open or when the order is exempt (paper). Reads the calendar: called before T for
    orders written at a planned instant, or off the hot path for late writes."""
    if order.session_exempt:
        return ""
    exchange = _CALENDAR_EXCHANGE.get(order.exchange, order.exchange)
    reason = _closed_reason(exchange, int(at), int(time.time() // 60))
    return f"{NOT_IN_SESSION} ({exchange}: {reason})." if reason else ""


@functools.lru_cache(maxsize=4096)
def _closed_reason(exchange: str, second: int, minute_now: int) -> str | None:
    """calendar.closed_reason for one whole second, asked once per process and minute (a
    burst of account tasks asks the same question hundreds of times before T; an admin's
    change of the calendar is seen within a minute)."""
    from execution.reference import calendar

    try:
        return reconnecting(
            calendar.closed_reason, datetime.fromtimestamp(second, tz=UTC), exchange
        )
    except (LookupError, ValueError) as exc:  # no calendar for that date: fail closed
        return f"no session known ({exc})"


def reconnecting(call: Callable[..., Any], *args: Any) -> Any:
    """`call(*args)` on this thread's database connection, once more on a fresh one if the
    connection turned out dead (the server restarted, an administrator terminated it). The
    lane's and the writer's threads live as long as the worker: a connection that died
    between two boundaries must not fail the next batch before its writes, or lose its
    outcomes, while the worker holding their claims is alive."""
    from django.db import InterfaceError, OperationalError, connection

    try:
        return call(*args)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        logger.warning("database connection lost on %s: retrying on a fresh one", call)
        connection.close()
        return call(*args)


def session_refusals(orders: Iterable[OutgoingOrder], *, at: dict[str, float]) -> dict[str, str]:
    """`session_refusal` of each order written at `at[tag]`, asking the calendar once per
    exchange and second; only the refused orders, by tag."""
    asked: dict[tuple[str, str, int], str] = {}
    refused = {}
    for order in orders:
        key = (order.session_exempt, order.exchange, int(at[order.tag]))
        if key not in asked:
            asked[key] = session_refusal(order, at=at[order.tag])
        if asked[key]:
            refused[order.tag] = asked[key]
    return refused


def closed_outcome(order: OutgoingOrder, account_id: int, words: str, **fields: Any) -> Outcome:
    fields.setdefault("state", "abandoned")
    return Outcome.of(order, account_id, error=words, error_class="closed", **fields)


# --- one classifier and one retry policy for every order write -------------------------------
# Both the synchronous path (send_one) and the lane (AsyncLane.batch) apply each attempt's
# result with `attempt_apply` and take a fresh orders-per-second slot before every retry.
def error_class(error: BrokerError) -> str:
    """ "retryable": the broker certainly did not accept it (429, a refusal it documents as
    before acceptance, a refused connection); "permanent": refused for good; "ambiguous":
    anything else (timeout, dropped connection, 5xx on a write, unclassified): the order may
    exist and is looked up by tag, never sent again."""
    if isinstance(error, RetryableError):
        return "retryable"
    if isinstance(error, PermanentError):
        return "permanent"
    return "ambiguous"


def attempt_apply(outcome: Outcome, result: Any, *, answered: float) -> str:
    """Record one attempt's result (an OrderAck or a BrokerError) on `outcome` and say what
    comes next: "done", "retry" (after `retry_wait(result)`, with a new slot) or "lookup".
    A retry is allowed only for a retryable error, at most MAX_ATTEMPTS attempts in total, and
    only when the broker's retry-after fits in MAX_RETRY_WAIT (never sooner than it asks)."""
    if not isinstance(result, BrokerError):
        outcome.state, outcome.acked_at = "acknowledged", answered
        outcome.broker_order_id = result.broker_order_id
        outcome.error = outcome.error_class = ""
        return "done"
    outcome.error, outcome.error_class = result.message, error_class(result)
    if outcome.error_class == "ambiguous":
        return "lookup"
    retryable = outcome.error_class == "retryable" and outcome.attempts < MAX_ATTEMPTS
    if retryable and retry_wait(result) <= MAX_RETRY_WAIT:
        return "retry"
    outcome.state = "rejected"
    return "done"


def retry_wait(error: BrokerError) -> float:
    """Seconds before the next attempt: the broker's retry-after, at least a little."""
    return max(float(getattr(error, "retry_after", 0.0)), 0.05)


def slot_take(account_id: int, ops_limit: int) -> bool:
    """One orders-per-second slot for a single write (a retry, an orphan, a cancel); waits for
    it at most one window. False: none came free (the write is not made)."""
    from brokers.ratelimit import order_rate_limiter

    return order_rate_limiter().acquire(account_id, ops_limit, timeout=1.5)


def send_one(
    adapter: BrokerAdapter,
    order: OutgoingOrder,
    account_id: int,
    *,
    ops_limit: int,
    marked: bool = False,
    slot_taken: bool = False,
    session_checked: bool = False,
    owner: str = WORKER_ID,
) -> Outcome:
    """Place one order; classify the result. Retryable errors are retried (bounded, each
    attempt with its own orders-per-second slot), an ambiguous one is looked up by tag, never
    sent again. `marked`: the caller set the order's "about to write" mark (wire_marks_set)
    already; otherwise it is set here, and an order whose claim this worker does not hold is
    not sent (state stays "intent", not recorded). `slot_taken`: the caller took the first
    attempt's slot; `session_checked`: the caller ran the session guard for it just now;
    `owner`: the claimant the order must be claimed by (the reconciler's RECONCILER_ID).
    Every attempt is refused past the entry lateness cap or outside the session window."""
    outcome = Outcome.of(order, account_id)
    request = order.request()
    while True:
        words = missed(order)
        if words:
            outcome.state, outcome.error, outcome.error_class = "abandoned", words, "late"
            return outcome
        if outcome.attempts or not session_checked:
            words = session_refusal(order, at=time.time())
            if words:
                outcome.state, outcome.error, outcome.error_class = "abandoned", words, "closed"
                return outcome
        # Marked only once nothing can stop the write any more (a refused order is unmarked).
        if not marked:
            if not wire_marks_set([order.tag], owner=owner):
                outcome.error, outcome.error_class = "Claimed by another sender.", "not_ours"
                return outcome
            marked = True
        if (outcome.attempts or not slot_taken) and not slot_take(account_id, ops_limit):
            outcome.state = "rejected" if outcome.attempts else "intent"
            outcome.error = "No orders-per-second slot came free for this account."
            outcome.error_class = "retryable"
            return outcome
        outcome.attempts += 1
        outcome.sent_at = time.time()
        try:
            result: Any = adapter.place_order(request)
        except BrokerError as exc:
            result = exc
        step = attempt_apply(outcome, result, answered=time.time())
        if step == "lookup":
            return lookup_by_tag(adapter, outcome)
        if step == "done":
            return outcome
        time.sleep(retry_wait(result))


def lookup_by_tag(adapter: BrokerAdapter, outcome: Outcome) -> Outcome:
    """Resolve an ambiguous send by finding our tag at the broker. Found: acknowledged (or
    whatever the broker says). Still absent after a few looks: unknown, for the reconciler."""
    for attempt in range(LOOKUP_TRIES):
        if attempt:
            time.sleep(LOOKUP_PAUSE)
        try:
            found = adapter.find_order_by_tag(outcome.tag)
        except BrokerError:
            continue
        if found is not None:
            outcome.acked_at = time.time()
            outcome.broker_order_id = found.broker_order_id
            outcome.state = "rejected" if found.status == "rejected" else "acknowledged"
            if found.status == "rejected":
                outcome.error = found.status_message or "Rejected by the broker."
                outcome.error_class = "permanent"
            return outcome
    outcome.state = "unknown"
    return outcome


def send_batch(
    *,
    account_id: int,
    adapter: BrokerAdapter,
    ops_limit: int,
    orders: list[OutgoingOrder],
    fire_at_epoch: float | None,
    limiter: Any = None,
) -> BatchReport:
    """Send one account's orders: wait for T, then phase by phase (BUY before SELL) within the
    account's orders-per-second budget. A run whose BUY leg did not get acknowledged here has
    its SELL legs held back ("blocked"): never a short without its hedge."""
    from brokers.ratelimit import order_rate_limiter

    limiter = limiter or order_rate_limiter()
    report = BatchReport(account_id=account_id)
    if fire_at_epoch is not None:
        wait_until(fire_at_epoch)
    start = time.time()
    failed_runs: set[int] = set()
    for phase_orders in by_phase(orders).values():
        pending = []
        for order in phase_orders:
            if order.run_id in failed_runs and order.waits_for_hedges:
                report.outcomes.append(held_back(order, account_id))
            else:
                pending.append(order)
        while pending:
            taken, wait = limiter.take_many(account_id, ops_limit, len(pending))
            if not taken:
                time.sleep(wait)
                continue
            now_batch, pending = pending[:taken], pending[taken:]
            now = time.time()
            closed = session_refusals(now_batch, at={o.tag: now for o in now_batch})
            failed_runs |= report.record(
                [
                    closed_outcome(o, account_id, closed[o.tag])
                    for o in now_batch
                    if o.tag in closed
                ],
                start=start,
            )
            now_batch = [o for o in now_batch if o.tag not in closed]
            ours = wire_marks_set(o.tag for o in now_batch)
            results = run_concurrently(
                [
                    functools.partial(
                        send_one,
                        adapter,
                        o,
                        account_id,
                        ops_limit=ops_limit,
                        marked=True,
                        slot_taken=True,
                        session_checked=True,
                    )
                    for o in now_batch
                    if o.tag in ours
                ]
            )
            failed_runs |= report.record(results, start=start)
    return report


# --- one writer per process -----------------------------------------------------------------
class OutcomeWriter:
    """Buffers outcomes and writes them in batches after the sends of a wave are over.

    Senders `begin()` before waiting for T and `end()` after their last send; the writer flushes
    when no sender is active (or after `MAX_HOLD` seconds), in one database connection."""

    MAX_HOLD = 2.0

    def __init__(self, apply: Callable[[list[Outcome]], None]) -> None:
        self.apply = apply
        self._queue: queue.Queue[Outcome] = queue.Queue()
        self._active = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        with self._lock:
            self._active += 1
            self._idle.clear()

    def end(self, outcomes: list[Outcome], *, background: bool) -> None:
        """Hand over a sender's outcomes. `background`: the process-wide writer flushes them
        (gevent pool); otherwise the caller calls `flush_now` itself."""
        for outcome in outcomes:
            self._queue.put(outcome)
        with self._lock:
            self._active -= 1
            if self._active <= 0:
                self._active = 0
                self._idle.set()
        if background:
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="execution-writer", daemon=True)
            self._thread.start()

    def _drain(self) -> list[Outcome]:
        items = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                return items

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            self._idle.wait(timeout=self.MAX_HOLD)
            batch = [first, *self._drain()]
            try:
                reconnecting(self.apply, batch)
            except Exception:
                # The intents stay as they were; the reconciler finds them by tag.
                logger.exception("could not record %d order outcomes", len(batch))

    def flush_now(self) -> None:
        """Write whatever is buffered, in the caller's thread (tests, solo workers)."""
        batch = self._drain()
        if batch:
            self.apply(batch)


def epoch_to_datetime(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


# --- the asynchronous lane --------------------------------------------------------------------
# Each adapter stays the one place that knows its broker's wire format and error taxonomy, in
# two plain methods (brokers.base): before T it builds each order's HTTP request
# (`order_request`), serialized to bytes here (execution.send.wire); at T one asyncio loop per
# process writes them on keep-alive connections opened before T (no thread or greenlet per
# order, nothing encoded at T); each answer is read by the same adapter (`order_answer`): the
# acknowledgement or the classified BrokerError exactly as its synchronous place_order gives.


class AsyncLane:
    """One asyncio loop thread per process with a pool of keep-alive connections
    (execution.send.wire): the orders are written at T as bytes prepared before T."""

    READ_TIMEOUT = 7.0
    # Lookups by tag of lost answers (each up to LOOKUP_TRIES reads with pauses) run on a pool
    # of their own: on the loop's default executor (cpu count + 4 threads) a few dozen of them
    # held up the quick steps of every retry (the session guard, the orders-per-second slot)
    # for seconds, and retried entries were missed for lateness (bench --fault-rate 0.2).
    LOOKUP_THREADS = 32

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self._lookups = ThreadPoolExecutor(
            max_workers=self.LOOKUP_THREADS, thread_name_prefix="execution-lookup"
        )
        self._pool: Any = None
        self._gates: dict[float, Any] = {}
        self._armed: dict[float, list[_Armed]] = {}
        self._busy = 0  # batches started and not finished
        self._gc_paused = False
        # Connections wanted open at T, per (T, origin): the orders this process writes there
        # at T (`want`); the origins being warmed now.
        self._wanted: dict[tuple[float, Any], int] = {}
        self._warming: dict[Any, Any] = {}  # origin -> its warming task
        self._mark_queue: list[tuple[list[str], Any]] = []
        self._marking = False
        self._mark_task: Any = None
        self._aredis: Any = None
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            started.set()
            self.loop.run_forever()

        threading.Thread(target=run, name="execution-async-lane", daemon=True).start()
        started.wait(5)

    def _pool_get(self) -> Any:
        from execution.send.wire import WirePool

        if self._pool is None:
            self._pool = WirePool(read_timeout=self.READ_TIMEOUT)
        return self._pool

    def run(self, coro: Any, timeout: float) -> Any:
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # --- connections open before T ------------------------------------------------------------
    # HTTP/1.1 carries one order at a time per connection, so the orders a process writes at T
    # to one broker host need as many idle connections to leave together. Each batch adds its
    # own to what the process's other batches of the same T want; the later phases (the shorts
    # after their hedges' answers) reuse the connections the answers free.
    def want(self, fire_at_epoch: float, origins: dict[Any, int], *, warm: bool) -> None:
        """Any thread: `origins` (execution.send.wire.Origin -> orders written there at T) are
        added to what this process wants open at T; `warm`: open what is missing now (else at
        `warm_wanted`). The caller does not wait."""
        self.loop.call_soon_threadsafe(self._want, fire_at_epoch, dict(origins), warm)

    def warm_wanted(self, fire_at_epoch: float) -> None:
        """Any thread: open what is missing of every origin wanted at T (connections opened
        long ago have aged out of the pool: wire.IDLE_MAX_SECONDS)."""
        self.loop.call_soon_threadsafe(self._warm_all, fire_at_epoch)

    def _want(self, fire_at_epoch: float, origins: dict[Any, int], warm: bool) -> None:
        for origin, count in origins.items():
            key = (fire_at_epoch, origin)
            self._wanted[key] = self._wanted.get(key, 0) + count
            if warm:
                self._warm_start(origin)

    def _warm_all(self, fire_at_epoch: float) -> None:
        for at, origin in list(self._wanted):
            if at == fire_at_epoch:
                self._warm_start(origin)

    def wanted(self, origin: Any) -> int:
        """Connections to keep open to `origin`: the most any coming T wants, within the caps
        (MAX_WARM_CONNECTIONS, and WARM_FILES_SHARE of the open-files limit in all)."""
        now = time.time()
        for key in [k for k in self._wanted if k[0] < now - 60]:
            del self._wanted[key]
        most = max((n for (_, o), n in self._wanted.items() if o == origin), default=0)
        pool = self._pool_get()
        others = sum(pool.idle_count(o) for o in pool.origins() if o != origin)
        return max(0, min(most, MAX_WARM_CONNECTIONS, files_limit() - others))

    def _warm_start(self, origin: Any) -> None:
        import asyncio

        if origin not in self._warming:
            self._warming[origin] = asyncio.ensure_future(self._warm_up(origin))

    async def _warm_up(self, origin: Any) -> None:
        """Open connections to `origin`, WARM_STEP at a time, until as many as wanted are idle
        (what is wanted may grow meanwhile); stops when a step opens none (refused: the sends
        report it in words)."""
        pool = self._pool_get()
        try:
            while True:
                idle, target = pool.idle_count(origin), self.wanted(origin)
                if idle >= target or await pool.warm(origin, target, step=WARM_STEP) <= idle:
                    return
        finally:
            self._warming.pop(origin, None)

    def _gate_for(self, fire_at_epoch: float) -> Any:
        """The event that opens at T (one timer per boundary). When it opens, every request
        armed for T is written first, in one pass (`arm`), then the batches wake up."""
        import asyncio

        gate = self._gates.get(fire_at_epoch)
        if gate is None:
            gate = self._gates[fire_at_epoch] = asyncio.Event()
            deadline = self.loop.time() + (fire_at_epoch - time.time())

            def open_gate() -> None:
                if time.time() < fire_at_epoch:  # the wall clock has the last word
                    self.loop.call_later(0.0002, open_gate)
                    return
                self._collector_pause(collect=False)
                pool = self._pool_get()
                due = self._armed.pop(fire_at_epoch, [])
                mark_armed(due)  # those armed since the marks ahead of T (usually none)
                for index, armed in enumerate(due):
                    if armed.marked:
                        armed.flight = pool.write_now(armed.prepared)
                    else:
                        armed.lost = True
                    if index + 1 == YIELD_AFTER:
                        os.sched_yield()
                # After the writes: each answer is handed to its order's task as it comes
                # (no task woke for the writes; none can have been read yet).
                for armed in due:
                    if armed.flight is not None:
                        pool.on_answer(armed.flight, armed.answer)
                    else:  # not ours, or no idle connection: the task sees to it
                        armed.answered.set_result(None)
                gate.set()
                self.loop.call_later(60, self._gates.pop, fire_at_epoch, None)

            def mark_armed(armed: list[_Armed]) -> None:
                todo = [a for a in armed if not a.marked and not a.lost]
                if not todo:
                    return
                try:
                    ours = wire_marks_set(a.tag for a in todo)
                except Exception:  # Redis down: nothing marked, so nothing is written
                    logger.exception("could not mark %d orders about to be written", len(todo))
                    ours = set()
                for a in todo:
                    a.marked = a.tag in ours
                    a.lost = not a.marked

            # The orders armed for T are marked "about to write" in one Redis call MARK_AHEAD
            # before T, so the writes at T wait for nothing (a worker that dies in between
            # leaves them marked: looked up, never resent, which fails safe).
            self.loop.call_at(
                deadline - MARK_AHEAD, lambda: mark_armed(self._armed.get(fire_at_epoch, []))
            )
            if fire_at_epoch - time.time() > GC_QUIET_BEFORE + 0.2:
                # A collection takes tens of milliseconds: only when T is far enough ahead.
                self.loop.call_at(deadline - GC_QUIET_BEFORE, self._collector_pause)
            self.loop.call_at(deadline, open_gate)
        return gate

    async def _gate(self, fire_at_epoch: float) -> None:
        """Return at T."""
        await self._gate_for(fire_at_epoch).wait()

    def _collector_pause(self, collect: bool = True) -> None:
        """No garbage collection from shortly before T until the batches are done: a full
        collection of a worker's heap (set off by any thread of the process) stops every thread
        for tens of milliseconds, and the burst at T allocates enough to set one off. The heap
        is collected once, GC_QUIET_BEFORE ahead of T; collection resumes when the last batch
        is done, or after GC_PAUSE_MAX seconds whatever happens."""
        import gc

        if self._busy and gc.isenabled():
            if collect:
                gc.collect()
            gc.disable()
            self._gc_paused = True
            self.loop.call_later(GC_PAUSE_MAX, self._collector_resume)

    def _collector_resume(self) -> None:
        import gc

        if self._gc_paused:
            self._gc_paused = False
            gc.enable()

    def arm(self, fire_at_epoch: float, tag: str, prepared: Any) -> _Armed | None:
        """Have `prepared` written the instant the gate of T opens, before any batch wakes
        (the batch then only reads its answer). None when T has passed or its gate opened."""
        if time.time() >= fire_at_epoch:
            # T has passed (a late task): sent by the batch, after the lateness check.
            return None
        gate = self._gate_for(fire_at_epoch)
        if gate.is_set():
            return None
        armed = _Armed(tag, prepared, self.loop.create_future())
        self._armed.setdefault(fire_at_epoch, []).append(armed)
        return armed

    async def _answer_of(self, armed: _Armed) -> tuple[float, WireAnswer, float] | None:
        """The answer to a request armed for T, once the gate has opened and it came; sent
        now if no connection was idle at T; None when it was not ours to write (lost)."""
        answered = await armed.answered
        if armed.lost:
            return None
        if answered is None:
            return await self._send(armed.prepared)
        return answered  # type: ignore[no-any-return]

    async def _send(self, wire: Any) -> tuple[float, WireAnswer, float]:
        """Write one prepared request (execution.send.wire.Prepared) and read its answer."""
        return await _as_wire_answer(self._pool_get().send(wire), time.time())

    async def marks(self, tags: list[str]) -> set[str]:
        """wire_marks_set for orders written after T, without blocking the loop (an asyncio
        Redis client): requests made while one call is under way are joined into the next,
        so a burst of acknowledgements (every batch's next phase) costs a few calls."""
        import asyncio

        if not tags:
            return set()
        waiter = self.loop.create_future()
        self._mark_queue.append((tags, waiter))
        if not self._marking:
            self._marking = True
            self._mark_task = asyncio.ensure_future(self._marks_flush())
        return await waiter  # type: ignore[no-any-return]

    def _async_redis(self) -> Any:
        """The lane's own asyncio Redis client (created on, and used only by, its loop)."""
        if self._aredis is None:
            import redis.asyncio

            self._aredis = redis.asyncio.Redis.from_url(settings.REDIS_URL)
        return self._aredis

    async def _marks_flush(self) -> None:
        try:
            while self._mark_queue:
                queued, self._mark_queue = self._mark_queue, []
                tags = [t for group, _ in queued for t in group]
                try:
                    ours = await wire_marks_set_async(self._async_redis(), tags)
                except Exception as exc:  # Redis down: nothing marked, nothing written
                    for _, waiter in queued:
                        waiter.set_exception(exc)
                    continue
                for _, waiter in queued:
                    waiter.set_result(ours)
        finally:
            self._marking = False

    async def tracked(self, batch: Any) -> BatchReport:
        """Await one account's `batch` coroutine, counted as busy (garbage collection stays
        paused while any batch of the process is sending)."""
        self._busy += 1
        try:
            return await batch  # type: ignore[no-any-return]
        finally:
            self._busy -= 1
            if not self._busy:
                self._collector_resume()

    async def batch(
        self,
        *,
        account_id: int,
        cached: _CachedAdapter,
        orders: list[OutgoingOrder],
        wires: dict[str, Any],
        send_at: dict[str, float],
        fire_at_epoch: float | None,
        closed: dict[str, str] | None = None,
        refused: dict[str, str] | None = None,
    ) -> BatchReport:
        """Send one account's orders phase by phase from the loop (see send_batch). `closed`:
        the orders the session guard refused (by tag, in words): never written."""
        closed = closed or {}
        refused = refused or {}
        unwritten = closed.keys() | refused.keys()  # never armed, marked or written
        import asyncio

        report = BatchReport(account_id=account_id)
        failed_runs: set[int] = set()
        phases = by_phase(orders)
        # Orders that wait for nothing (`eager`): those due at T are written by the gate.
        at_once = eager(phases)
        armed: dict[str, _Armed | None] = {}
        if fire_at_epoch is not None:
            for order in at_once:
                if order.tag not in unwritten and send_at.get(order.tag, 0.0) <= fire_at_epoch:
                    armed[order.tag] = self.arm(fire_at_epoch, order.tag, wires[order.tag])
        start = fire_at_epoch if fire_at_epoch is not None else time.time()

        marked: set[str] = set()

        async def one(order: OutgoingOrder) -> Outcome:
            if order.tag in refused:
                return Outcome.of(
                    order,
                    account_id,
                    state="rejected",
                    error=refused[order.tag],
                    error_class="permanent",
                )
            if order.tag in closed:
                return closed_outcome(order, account_id, closed[order.tag])
            written = armed.get(order.tag)
            if written is None and order.tag not in marked:
                return _not_ours(order, account_id)
            if written is not None:
                got = await self._answer_of(written)
                if got is None:
                    return _not_ours(order, account_id)
                sent, answer, answered = got
            else:
                delay = send_at.get(order.tag, 0.0) - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                words = missed(order)
                if words:
                    return missed_outcome(order, account_id, words)
                sent, answer, answered = await self._send(wires[order.tag])
            outcome = Outcome.of(order, account_id, sent_at=sent, attempts=1)
            while True:
                try:
                    result: Any = cached.adapter.order_answer(answer)
                except BrokerError as exc:
                    result = exc
                step = attempt_apply(outcome, result, answered=answered)
                if step == "done":
                    return outcome
                if step == "lookup":
                    return await self.loop.run_in_executor(
                        self._lookups, lookup_by_tag, cached.adapter, outcome
                    )
                # The same prepared bytes again (same tag), after the broker's retry-after,
                # with a slot of its own; the mark set before the first write still holds.
                await asyncio.sleep(retry_wait(result))
                words = missed(order)
                if words:
                    return missed_outcome(order, account_id, words, attempts=outcome.attempts)
                words = await self.loop.run_in_executor(
                    None, functools.partial(session_refusal, order, at=time.time())
                )
                if words:
                    return closed_outcome(order, account_id, words, attempts=outcome.attempts)
                if not await self.loop.run_in_executor(
                    None, slot_take, account_id, cached.ops_limit
                ):
                    outcome.state = "rejected"
                    outcome.error = "No orders-per-second slot came free for this account."
                    return outcome
                outcome.attempts += 1
                sent, answer, answered = await self._send(wires[order.tag])
                outcome.sent_at = sent

        # The orders the gate writes have their tasks before T: they wake on their answers,
        # so nothing but the gate's pass runs at T. The batch itself waits for the gate only
        # for its other orders that go at once (T had passed, refused, or due later): those
        # are marked "about to write" just before their tasks start, after the armed ones
        # (tasks start in creation order: hedges before shorts).
        started = {
            order.tag: asyncio.ensure_future(one(order))
            for order in at_once
            if armed.get(order.tag) is not None
        }
        if len(started) < len(at_once):
            if fire_at_epoch is not None:
                await self._gate(fire_at_epoch)
            marked |= await self.marks(
                [o.tag for o in at_once if armed.get(o.tag) is None and o.tag not in unwritten]
            )
            started.update(
                (order.tag, asyncio.ensure_future(one(order)))
                for order in at_once
                if order.tag not in started
            )
        for phase_orders in phases.values():
            tasks = []
            due = []
            for order in phase_orders:
                if order.tag in started:
                    tasks.append(started[order.tag])
                elif order.run_id in failed_runs:
                    report.outcomes.append(held_back(order, account_id))
                else:
                    due.append(order)
            marked |= await self.marks([o.tag for o in due if o.tag not in unwritten])
            tasks.extend(asyncio.ensure_future(one(order)) for order in due)
            failed_runs |= report.record(list(await asyncio.gather(*tasks)), start=start)
        return report


async def _as_wire_answer(pending: Any, sent: float) -> tuple[float, WireAnswer, float]:
    """(time written, answer, time answered) of an execution.send.wire exchange; a failure becomes a
    WireAnswer of its kind, for the adapter to classify."""
    from execution.send.wire import WireFailure

    try:
        sent, answer, answered = await pending
    except WireFailure as exc:
        return sent, classified(exc), time.time()
    return sent, answer, answered


def classified(answer: Any) -> WireAnswer:
    """An answer as the adapter reads it: a wire failure (execution.send.wire.WireFailure)
    becomes a WireAnswer of its kind, for the adapter to classify."""
    from execution.send.wire import WireFailure

    if isinstance(answer, WireFailure):
        return WireAnswer(failure=answer.kind)
    return answer  # type: ignore[no-any-return]


@dataclass
class _Armed:
    """A request to be written when the gate of T opens; `flight` once it was; `lost` when
    its claim was no longer this worker's at T (not written). `answered` (a future of the
    lane's loop) gets (time written, answer, time answered) when the answer comes, or None
    when the gate did not write it (lost, or no idle connection)."""

    tag: str
    prepared: Any
    answered: Any
    flight: Any = None
    marked: bool = False
    lost: bool = False

    def answer(self, sent: float, answer: Any, answered: float) -> None:
        """WirePool.on_answer's callback (a failure `classified`)."""
        if not self.answered.done():
            self.answered.set_result((sent, classified(answer), answered))


def _not_ours(order: OutgoingOrder, account_id: int) -> Outcome:
    """An order this worker must not write: its claim went to another sender (not recorded)."""
    return Outcome.of(order, account_id, error="Claimed by another sender.", error_class="not_ours")


def held_back(order: OutgoingOrder, account_id: int) -> Outcome:
    """A later phase's order not written because an earlier phase of its run (a hedge) was
    not acknowledged: never a short without its hedge."""
    return Outcome.of(
        order,
        account_id,
        state="abandoned",
        error="Not sent: a hedge leg of this strategy was not placed first.",
        error_class="blocked",
    )


_lane: AsyncLane | None = None
_lane_lock = threading.Lock()


def lane() -> AsyncLane:
    global _lane
    with _lane_lock:
        if _lane is None:
            _lane = AsyncLane()
    return _lane


def slots_reserve(
    account_id: int, ops_limit: int, orders: list[OutgoingOrder], fire_at_epoch: float
) -> dict[str, float]:
    """Each order's send instant, its orders-per-second slot scored there and taken now
    (hedges first: in the orders' phase order)."""
    from brokers.ratelimit import order_rate_limiter

    times = order_rate_limiter().reserve_at(account_id, ops_limit, len(orders), fire_at_epoch)
    return {order.tag: at for order, at in zip(orders, times, strict=True)}


def files_limit() -> int:
    """The connections a process may hold open before T in all (WARM_FILES_SHARE of its
    open-files limit: the rest stays for the database, Redis, logs and connections at T)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_WARM_CONNECTIONS * 8
    return int(soft * WARM_FILES_SHARE)


def eager(phases: dict[int, list[OutgoingOrder]]) -> list[OutgoingOrder]:
    """Of a batch's orders by phase (`by_phase`), those written at T without waiting for
    anything: the first phase's, and later ones sent right behind it (waits_for_hedges off),
    in phase order."""
    first = next(iter(phases), 0)
    return [
        order
        for phase, phase_orders in phases.items()
        for order in phase_orders
        if phase == first or not order.waits_for_hedges
    ]


def origins_at_t(orders: list[OutgoingOrder], wires: dict[str, Any]) -> dict[Any, int]:
    """Per origin, the orders among `orders` written at T (one connection each)."""
    counts: dict[Any, int] = {}
    for order in eager(by_phase(orders)):
        prepared = wires.get(order.tag)
        if prepared is not None:
            counts[prepared.origin] = counts.get(prepared.origin, 0) + 1
    return counts


def send_batch_async(
    *,
    account_id: int,
    cached: _CachedAdapter,
    orders: list[OutgoingOrder],
    fire_at_epoch: float | None,
    send_at: dict[str, float] | None = None,
) -> Any:
    """The asynchronous lane for adapters that speak HTTP: returns a concurrent Future of the
    BatchReport at once (the sends happen at T on the lane's loop), or None when the adapter
    does not speak HTTP (the caller then uses send_batch). Everything slow (writing the
    requests, the budget reservations, warming connections) is done here, before T.
    `send_at`: each order's send instant by tag, its orders-per-second slot reserved earlier
    by the caller (`slots_reserve`); otherwise reserved here."""
    from execution.send import wire

    if not cached.adapter.speaks_http:
        return None
    wires = {}
    refused: dict[str, str] = {}
    for order in orders:
        try:
            built = cached.adapter.order_request(order.request())
        except BrokerError as exc:  # refused before anything leaves (e.g. MARKET at Angel)
            refused[order.tag] = exc.message
            continue
        wires[order.tag] = wire.serialize(built.method, built.url, built.headers, built.body)
    base = fire_at_epoch if fire_at_epoch is not None else time.time()
    from brokers.ratelimit import order_rate_limiter

    # The slots are scored at the instants the orders will leave, taken now, before T.
    if send_at is None:
        times = order_rate_limiter().reserve_at(account_id, cached.ops_limit, len(orders), base)
        send_at = {order.tag: at for order, at in zip(orders, times, strict=True)}
    # The session guard for each order at the instant it is planned to be written (the
    # calendar is read here, before T; a later retry asks again off the loop).
    closed = session_refusals(orders, at={o.tag: max(send_at[o.tag], time.time()) for o in orders})
    the_lane = lane()
    if fire_at_epoch is not None:
        the_lane.want(fire_at_epoch, origins_at_t(orders, wires), warm=True)
    import asyncio

    return asyncio.run_coroutine_threadsafe(
        the_lane.tracked(
            the_lane.batch(
                account_id=account_id,
                cached=cached,
                orders=orders,
                wires=wires,
                send_at=send_at,
                fire_at_epoch=fire_at_epoch,
                closed=closed,
                refused=refused,
            )
        ),
        the_lane.loop,
    )
