"""Outbound orders-per-second limiter, one budget per broker account, shared by every worker.

A sliding one-second window kept in a Redis sorted set and checked-and-taken by one Lua script,
so two workers can never both take the tenth slot. Time comes from the Redis server's clock
(`TIME`), not the workers', so machines with skewed clocks still share one window.
"""

from __future__ import annotations

import functools
import time
import uuid

import redis
from django.conf import settings

# KEYS[1] window key; ARGV[1] limit, ARGV[2] window in microseconds, ARGV[3] unique member.
# Returns 0 when a slot was taken, else the microseconds until the oldest slot leaves the window.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window - now
if wait < 1 then wait = 1 end
return wait
"""

WINDOW_SECONDS = 1.0


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
        self._script = self.client.register_script(_ACQUIRE)

    def _key(self, account_id: int | str) -> str:
        return f"ratelimit:{self.namespace}:{account_id}"

    def try_acquire(self, account_id: int | str, limit: int) -> float:
        """Take a slot if one is free. Returns 0.0 when taken, else the seconds to wait before
        a slot frees up (nothing is taken then)."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        wait_us = self._script(
            keys=[self._key(account_id)], args=[limit, self.window_us, uuid.uuid4().hex]
        )
        return int(wait_us) / 1_000_000

    def acquire(self, account_id: int | str, limit: int, timeout: float) -> bool:
        """Block until a slot is taken (True) or `timeout` seconds pass (False, nothing taken).

        Sleeps exactly as long as the script says the oldest slot needs to leave the window,
        so waiters do not spin on Redis."""
        deadline = time.monotonic() + timeout
        while True:
            wait = self.try_acquire(account_id, limit)
            if wait == 0:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0 or wait > remaining:
                return False
            time.sleep(wait)

    def reset(self, account_id: int | str) -> None:
        self.client.delete(self._key(account_id))


def order_rate_limiter() -> OrderRateLimiter:
    """The outbound limiter every sender uses before an order write to a broker."""
    return OrderRateLimiter()
