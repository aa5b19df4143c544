"""Contract slots: a boundary's entry orders built, committed and handed to the senders before
T - ε, their contract filled in at T - ε by one small message.

What an entry order trades depends on the spot at T - ε (an ATM leg's strike moves with it);
everything else about it (account, side, quantity, slices, algo ID, tag, order type) is known
long before. So dispatch builds every order ahead of T with a placeholder in place of its
trading symbol: one placeholder per distinct contract choice (underlying, expiry, strike rule,
CE/PE, the market that prices it) and broker, however many strategies share it. At T - ε it
resolves the placeholders (spot → strikes → symbols, a few of them, not one per order), writes
them onto the intents (one UPDATE per placeholder) and publishes the resolution under the
boundary's key; each sending worker reads it once per process and fills it into the batches it
already holds.

A resolution maps placeholder → {"s": trading symbol, "t": token, "r": reference price,
"p": {"BUY": price, "SELL": price} (LIMIT orders only), "e": why it cannot be traded}. A run
with an order on a failed placeholder is not sent at all (dispatch marks its intents abandoned
and the run skipped; every batch drops the run's orders, as the placeholders are the same for
all its accounts).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from execution.send import template
from execution.send.sender import OutgoingOrder, engine_redis

logger = logging.getLogger(__name__)

PREFIX = "?"
KEY_TTL_SECONDS = 2 * 86400  # as long as the wire marks: what each tag traded stays known
POLL_SECONDS = 0.002


def unresolved(tradingsymbol: str) -> bool:
    return tradingsymbol.startswith(PREFIX)


@dataclasses.dataclass(frozen=True)
class Slot:
    """One contract choice: how a leg picks its contract, and the market whose spot and
    quotes decide it."""

    market: Any
    underlying: Any
    expiry: date
    mode: str
    option_type: str
    offset: int = 0
    strike: Decimal | None = None
    premium: Decimal | None = None
    delta: Decimal | None = None

    @classmethod
    def of(cls, leg: Any, *, market: Any, underlying: Any, expiry: date) -> Slot:
        def decimal(value: Any) -> Decimal | None:
            return None if value is None else Decimal(value)

        return cls(
            market=market,
            underlying=underlying,
            expiry=expiry,
            mode=leg.strike_mode,
            option_type=leg.option_type,
            offset=int(leg.strike_offset or 0),
            strike=decimal(leg.strike_price) if leg.strike_mode == "exact" else None,
            premium=decimal(leg.target_premium) if leg.strike_mode == "premium" else None,
            delta=decimal(leg.target_delta) if leg.strike_mode == "delta" else None,
        )


class SlotPlan:
    """The placeholders of one dispatch: slot → id, and which brokers (and, for LIMIT
    orders, which sides) use each."""

    def __init__(self, fire_at: datetime) -> None:
        self.fire_at = fire_at
        self.nonce = secrets.token_hex(3)
        self.ids: dict[Slot, int] = {}
        self.uses: dict[int, set[str]] = defaultdict(set)  # slot id -> brokers

    @property
    def key(self) -> str:
        """The Redis key the resolution is published under (carried by each batch)."""
        return _key(self.fire_at, self.nonce)

    def placeholder(self, slot: Slot, broker: str) -> str:
        slot_id = self.ids.setdefault(slot, len(self.ids))
        self.uses[slot_id].add(broker)
        return f"{PREFIX}{self.nonce}:{slot_id}:{broker}"

    def items(self) -> list[tuple[Slot, int, set[str]]]:
        return [(slot, slot_id, self.uses[slot_id]) for slot, slot_id in self.ids.items()]

    def name(self, slot_id: int, broker: str) -> str:
        return f"{PREFIX}{self.nonce}:{slot_id}:{broker}"


def _key(fire_at: datetime, nonce: str) -> str:
    return f"execution:contracts:{fire_at.astimezone(UTC).isoformat()}:{nonce}"


def publish(key: str, resolution: dict[str, dict[str, Any]]) -> None:
    engine_redis().set(key, json.dumps(resolution), ex=KEY_TTL_SECONDS)


def intents_fill(intents: list[Any]) -> list[Any]:
    """Give each of `intents` still naming its contract by a placeholder the contract
    published for it (its T and the placeholder name the key; one read per key), as the
    dispatcher writes them right after publishing (it may have stopped in between). Returns
    those filled in (not saved); one whose resolution is gone or failed keeps its placeholder."""
    todo = [i for i in intents if unresolved(i.tradingsymbol)]
    client = engine_redis() if todo else None
    published: dict[str, dict[str, dict[str, Any]]] = {}
    filled = []
    for intent in todo:
        key = _key(intent.intended_at, intent.tradingsymbol[len(PREFIX) :].split(":")[0])
        if key not in published:
            raw = client.get(key) if client is not None else None
            published[key] = json.loads(raw) if raw is not None else {}
        found = published[key].get(intent.tradingsymbol)
        if found is None or found.get("e"):
            continue
        price = (found.get("p") or {}).get(intent.side)
        intent.tradingsymbol = found["s"]
        intent.instrument_token = found["t"]
        if price is not None:
            intent.price = Decimal(price)
        if found.get("r") is not None:
            intent.reference_price = Decimal(found["r"])
        filled.append(intent)
    return filled


class _Wait:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: dict[str, dict[str, Any]] | None = None


_waits: dict[str, _Wait] = {}
_waits_lock = threading.Lock()


def resolution_wait(key: str, *, until: float) -> dict[str, dict[str, Any]] | None:
    """The resolution published under `key`, waited for until epoch `until` (None: none came).
    One thread per process polls Redis; the others wait for it."""
    with _waits_lock:
        wait = _waits.get(key)
        leader = wait is None
        if wait is None:
            wait = _waits[key] = _Wait()
    if not leader:
        wait.done.wait(max(0.0, until - time.time()) + 0.5)
        return wait.value
    try:
        client = engine_redis()
        while True:
            raw = client.get(key)
            if raw is not None:
                wait.value = json.loads(raw)
                break
            if time.time() > until:
                logger.error("no contracts were published under %s in time: not sent", key)
                break
            time.sleep(POLL_SECONDS)
    finally:
        wait.done.set()
        if wait.value is None:  # let a later task of the boundary ask again
            with _waits_lock:
                _waits.pop(key, None)
    return wait.value


_callbacks: dict[str, list[Callable[[dict[str, dict[str, Any]] | None], None]]] = {}
_done: dict[str, dict[str, dict[str, Any]] | None] = {}
_pool: ThreadPoolExecutor | None = None
# Threads preparing the batches once the contracts come (bound by one interpreter lock: a
# few are enough; a batch of an adapter without HTTP holds one until T).
CALLBACK_THREADS = 4


def when_resolved(
    key: str, *, until: float, then: Callable[[dict[str, dict[str, Any]] | None], None]
) -> None:
    """Call `then(resolution)` once the resolution under `key` is published (None if it did
    not come by epoch `until`), on a thread of this process's pool: the task that hands a
    batch over returns at once, so a worker's task threads take in every batch of a big
    boundary before T - ε instead of waiting, a few at a time, for the resolution."""
    global _pool
    with _waits_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CALLBACK_THREADS, thread_name_prefix="contracts")
        pool = _pool
        if key in _done:
            resolution = _done[key]
            pool.submit(_call, then, resolution)
            return
        waiting = _callbacks.setdefault(key, [])
        waiting.append(then)
        first = len(waiting) == 1
    if first:

        def poll() -> None:
            resolution = resolution_wait(key, until=until)
            with _waits_lock:
                _done[key] = resolution
                calls = _callbacks.pop(key, [])
            for call in calls:
                pool.submit(_call, call, resolution)

        threading.Thread(target=poll, name="contracts-wait", daemon=True).start()


def _call(
    then: Callable[[dict[str, dict[str, Any]] | None], None],
    resolution: dict[str, dict[str, Any]] | None,
) -> None:
    try:
        then(resolution)
    except Exception:  # the batch's orders stay claimed and unsent: looked up, never resent
        logger.exception("a batch could not be sent after its contracts were resolved")


def orders_resolved(
    orders: list[OutgoingOrder], resolution: dict[str, dict[str, Any]] | None
) -> list[OutgoingOrder]:
    """`orders` with their placeholders filled in; the orders of a run with any placeholder
    unresolved are left out (dispatch has marked them abandoned, or, with no resolution at all,
    nothing of the batch is sent)."""
    if resolution is None:
        return [o for o in orders if not unresolved(o.tradingsymbol)]
    failed_runs = {
        o.run_id
        for o in orders
        if unresolved(o.tradingsymbol)
        and (resolution.get(o.tradingsymbol) or {"e": "unknown"}).get("e")
    }
    out = []
    for order in orders:
        if order.run_id in failed_runs:
            continue
        found = resolution.get(order.tradingsymbol) if unresolved(order.tradingsymbol) else None
        if found is None:
            out.append(order)
            continue
        prices = found.get("p") or {}
        out.append(
            template.copy_with(
                order,
                tradingsymbol=found["s"],
                instrument_token=found["t"],
                price=prices.get(order.side, order.price),
                reference_price=found.get("r"),
            )
        )
    return out
