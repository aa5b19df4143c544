"""The one outbound orders-per-second limiter: one budget per broker account, shared by every
worker and every kind of write (the timed sends, retries, orphan sends, failover, cancels).

A sliding one-second window per account in a Redis sorted set (key `ratelimit:<namespace>:<id>`),
checked and taken by Lua scripts, so two workers can never both take the tenth slot. Time is
the caller's wall clock, passed to the script: the same clock that opens the gate at T and
scores the reservations for T, so "now" and "at T" are always on one clock (mixing in the Redis
server's `TIME` put the reservations hours away from "now" under a faked clock, and by the
skew between machines in a deployment; workers keep NTP time). Three ways to take slots:

- `take(account, limit)` / `acquire(..., timeout)`: one slot now (or wait for it);
- `take_many(account, limit, count)`: up to `count` slots now in one round trip (a phase);
- `reserve_at(account, limit, count, at)`: slots scored at a future instant T (taken before T,
  so nothing touches Redis at T), spilling into T + 1 s, T + 2 s… when one second is full.

Quote calls take from the same budget as orders (`quote_slot_take`): every broker counts its
requests per account, and a watch that quoted freely could leave an exit order without a slot.
A broker that documents its own, lower limit on quote calls (Kite and Dhan 1/s) has it checked
too, from `quote_limits.json` (dated rows, as the reference documents them). The budgets for
reading the order and trade books (`book_reads_per_second`, which paces the engine's follow-up
of open orders) are dated rows of `book_read_limits.json`, read the same way.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from datetime import date
from pathlib import Path

import redis
from django.conf import settings

# KEYS[1] window key; ARGV[1] limit, ARGV[2] window (µs), ARGV[3] count, ARGV[4] member prefix,
# ARGV[5] now (µs, the caller's clock).
# Returns {slots taken, µs until the oldest slot leaves the window when none was free}.
_TAKE = """
local now = tonumber(ARGV[5])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
if free <= 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {0, wait}
end
local take = math.min(free, tonumber(ARGV[3]))
for i = 1, take do
  redis.call('ZADD', KEYS[1], now, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return {take, 0}
"""

# As _TAKE, but the slots are scored at the future instant ARGV[5] (µs) and counted against
# the window ending there; ARGV[6] is now (µs). Returns the slots taken (possibly 0).
_RESERVE_AT = """
local now = tonumber(ARGV[6])
local window = tonumber(ARGV[2])
local at = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCOUNT', KEYS[1], at - window + 1, '+inf')
local take = math.min(tonumber(ARGV[1]) - used, tonumber(ARGV[3]))
if take < 0 then take = 0 end
for i = 1, take do
  redis.call('ZADD', KEYS[1], at, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(at - now, 0) + window) / 1000) + 1000)
return take
"""

WINDOW_SECONDS = 1.0


def _now_us() -> int:
    """The caller's wall clock in µs (the clock of the gate at T)."""
    return time.time_ns() // 1000


@functools.cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


class OrderRateLimiter:
    """Per-account sliding-window limiter. `namespace` separates independent budgets (our
    outbound limit, and the paper broker's own simulated exchange-side limit)."""

    def __init__(
        self,
        *,
        namespace: str = "broker-ops",
        window_seconds: float = WINDOW_SECONDS,
        client: redis.Redis | None = None,
    ) -> None:
        self.namespace = namespace
        self.window_us = int(window_seconds * 1_000_000)
        self.client = client if client is not None else _client(settings.REDIS_URL)
        self._take = self.client.register_script(_TAKE)
        self._reserve = self.client.register_script(_RESERVE_AT)

    def _key(self, account_id: int | str) -> str:
        return f"ratelimit:{self.namespace}:{account_id}"

    def take_many(self, account_id: int | str, limit: int, count: int) -> tuple[int, float]:
        """Take up to `count` free slots now: (slots taken, seconds to wait when none were
        free; nothing is taken then)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        taken, wait_us = self._take(
            keys=[self._key(account_id)],
            args=[limit, self.window_us, count, uuid.uuid4().hex, _now_us()],
        )
        return int(taken), int(wait_us) / 1_000_000

    def take(self, account_id: int | str, limit: int) -> float:
        """Take one slot if one is free. Returns 0.0 when taken, else the seconds to wait
        before a slot frees up (nothing is taken then)."""
        taken, wait = self.take_many(account_id, limit, 1)
        return 0.0 if taken else wait

    try_acquire = take

    def acquire(self, account_id: int | str, limit: int, timeout: float) -> bool:
        """Block until a slot is taken (True) or `timeout` seconds pass (False, nothing taken).

        Sleeps exactly as long as the script says the oldest slot needs to leave the window,
        so waiters do not spin on Redis."""
        deadline = time.monotonic() + timeout
        while True:
            wait = self.take(account_id, limit)
            if wait == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait > remaining:
                return False
            time.sleep(wait)

    def reserve_at(
        self, account_id: int | str, limit: int, count: int, at_epoch: float
    ) -> list[float]:
        """One send instant per slot: `at_epoch` for as many as the window ending there
        allows, then `at_epoch` + 1 window, and so on (never above `limit` in any window)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        step = self.window_us / 1_000_000
        times: list[float] = []
        at = at_epoch
        while len(times) < count:
            taken = int(
                self._reserve(
                    keys=[self._key(account_id)],
                    args=[
                        limit,
                        self.window_us,
                        count - len(times),
                        uuid.uuid4().hex,
                        int(at * 1_000_000),
                        _now_us(),
                    ],
                )
            )
            times.extend([at] * taken)
            at += step
        return times

    def reserve_one_at(self, account_id: int | str, limit: int, at_epoch: float) -> bool:
        """One slot scored at the instant `at_epoch` if the window ending there has one free
        (True), else nothing (False)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        taken = self._reserve(
            keys=[self._key(account_id)],
            args=[
                limit,
                self.window_us,
                1,
                uuid.uuid4().hex,
                int(at_epoch * 1_000_000),
                _now_us(),
            ],
        )
        return int(taken) == 1

    def reset(self, account_id: int | str) -> None:
        self.client.delete(self._key(account_id))


@functools.cache
def _limiter(url: str) -> OrderRateLimiter:
    return OrderRateLimiter(client=_client(url))


def order_rate_limiter() -> OrderRateLimiter:
    """The outbound limiter every sender uses before an order write or cancel to a broker."""
    return _limiter(settings.REDIS_URL)


QUOTE_LIMITS_FILE = Path(__file__).with_name("quote_limits.json")
BOOK_READ_LIMITS_FILE = Path(__file__).with_name("book_read_limits.json")


@functools.cache
def _limit_rows(path: Path) -> tuple[tuple[str, date, int], ...]:
    """The dated rows of a limits file (broker, effective_from, per_second), oldest first;
    each row also names its `source`, which a file without one fails to load over."""
    data = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for row in data["rows"]:
        if not str(row.get("source", "")).strip():
            raise ValueError(f"{path.name}: the {row['broker']} row gives no source.")
        effective_from = date.fromisoformat(row["effective_from"])
        rows.append((str(row["broker"]), effective_from, int(row["per_second"])))
    return tuple(sorted(rows))


def _per_second_on(path: Path, broker: str, day: date) -> int | None:
    """The limit of the newest row of `broker` in force on `day`, None without one."""
    found = None
    for name, effective_from, per_second in _limit_rows(path):
        if name == broker and effective_from <= day:
            found = per_second
    return found


def quote_calls_per_second(broker: str, day: date) -> int | None:
    """The broker's own documented limit on quote calls per second in force on `day`, or None
    when it documents none (its quote calls count against the account's one budget only)."""
    return _per_second_on(QUOTE_LIMITS_FILE, broker, day)


def book_reads_per_second(broker: str, day: date) -> int | None:
    """What the broker documents for reading its order and trade books on `day`, calls per
    second for the two together, or None when there is no row (the paper broker)."""
    return _per_second_on(BOOK_READ_LIMITS_FILE, broker, day)


@functools.cache
def _quote_limiter(url: str) -> OrderRateLimiter:
    return OrderRateLimiter(namespace="broker-quotes", client=_client(url))


def quote_slot_take(
    *,
    account_id: int,
    broker: str,
    ops_limit: int,
    day: date,
    timeout: float = 1.0,
    limiter: OrderRateLimiter | None = None,
    quote_limiter: OrderRateLimiter | None = None,
) -> bool:
    """Before one quote call: a slot of the broker's own quote limit (where it documents one)
    and a slot of the account's one budget shared with orders, each waited for at most
    `timeout`. False: no slot came free (make no call; the price counts as not fresh)."""
    per_second = quote_calls_per_second(broker, day)
    if per_second is not None:
        quotes = quote_limiter or _quote_limiter(settings.REDIS_URL)
        if not quotes.acquire(account_id, per_second, timeout=timeout):
            return False
    return (limiter or order_rate_limiter()).acquire(account_id, ops_limit, timeout=timeout)


def quote_slot_reserve(
    *,
    account_id: int,
    broker: str,
    ops_limit: int,
    day: date,
    at_epoch: float,
    limiter: OrderRateLimiter | None = None,
    quote_limiter: OrderRateLimiter | None = None,
) -> bool:
    """The slots of one quote call at the future instant `at_epoch`, reserved now: the broker's
    own quote limit (where it documents one) and the account's budget shared with orders.
    False when either window ending there is full (nothing of the account's budget is kept;
    a quote-limit slot already taken stays, one call's worth, and expires with its window)."""
    per_second = quote_calls_per_second(broker, day)
    if per_second is not None:
        quotes = quote_limiter or _quote_limiter(settings.REDIS_URL)
        if not quotes.reserve_one_at(account_id, per_second, at_epoch):
            return False
    return (limiter or order_rate_limiter()).reserve_one_at(account_id, ops_limit, at_epoch)
