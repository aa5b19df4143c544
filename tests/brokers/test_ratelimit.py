"""The per-account orders-per-second limiter on the real Redis (REDIS_URL)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from brokers.ratelimit import OrderRateLimiter


@pytest.fixture
def limiter():
    # A namespace of our own per test, so parallel runs and other tests never share a window.
    made = OrderRateLimiter(namespace=f"test-{uuid.uuid4().hex}")
    yield made
    made.reset(1)
    made.reset(2)


def test_tenth_order_passes_and_eleventh_waits_at_most_a_second(limiter):
    assert [limiter.try_acquire(1, 10) for _ in range(10)] == [0.0] * 10
    wait = limiter.try_acquire(1, 10)
    assert 0 < wait <= 1.0


def test_accounts_have_separate_budgets(limiter):
    for _ in range(3):
        assert limiter.try_acquire(1, 3) == 0
    assert limiter.try_acquire(1, 3) > 0
    assert limiter.try_acquire(2, 3) == 0


def test_window_slides(limiter):
    short = OrderRateLimiter(namespace=limiter.namespace, window_seconds=0.2)
    assert short.try_acquire(1, 2) == 0 and short.try_acquire(1, 2) == 0
    wait = short.try_acquire(1, 2)
    assert 0 < wait <= 0.2
    time.sleep(wait + 0.01)
    assert short.try_acquire(1, 2) == 0


def test_blocking_acquire_waits_for_a_slot(limiter):
    short = OrderRateLimiter(namespace=limiter.namespace, window_seconds=0.2)
    assert short.acquire(1, 1, timeout=0.1)
    started = time.monotonic()
    assert short.acquire(1, 1, timeout=1.0)
    assert time.monotonic() - started > 0.1  # it waited for the window to slide


def test_blocking_acquire_gives_up_at_its_timeout_without_taking(limiter):
    assert limiter.acquire(1, 1, timeout=0.1)
    started = time.monotonic()
    assert limiter.acquire(1, 1, timeout=0.05) is False
    assert time.monotonic() - started < 1.0  # gave up near its timeout, did not block on
    assert limiter.client.zcard(limiter._key(1)) == 1


def test_concurrent_workers_never_exceed_the_limit(limiter):
    """Twenty threads (separate connections, like separate workers) race for ten slots."""
    granted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(20)

    def worker() -> None:
        own = OrderRateLimiter(namespace=limiter.namespace, client=None)
        barrier.wait(timeout=5)
        ok = own.try_acquire(1, 10) == 0
        with lock:
            granted.append(ok)

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert len(granted) == 20 and sum(granted) == 10


def test_limit_must_be_positive(limiter):
    with pytest.raises(ValueError):
        limiter.try_acquire(1, 0)


def test_take_many_takes_what_is_free_in_one_call(limiter):
    assert limiter.take_many(1, 10, 7) == (7, 0.0)
    assert limiter.take_many(1, 10, 7)[0] == 3
    taken, wait = limiter.take_many(1, 10, 1)
    assert taken == 0 and 0 < wait <= 1.0


def test_reserve_at_spills_into_the_next_second_and_counts_against_takes(limiter):
    at = time.time() + 5
    times = limiter.reserve_at(1, 4, 10, at)
    assert times == [at] * 4 + [at + 1] * 4 + [at + 2] * 2
    # Reservations at T and takes now share one window per account (one budget).
    assert limiter.take_many(1, 12, 12)[0] == 2


def test_quotes_take_from_the_orders_budget_of_the_account(limiter):
    import datetime

    from brokers.ratelimit import quote_slot_take

    quotes = OrderRateLimiter(namespace=f"{limiter.namespace}-quotes")
    day = datetime.date(2026, 12, 3)
    try:
        # Upstox documents no quote limit of its own: quotes count against the orders' 3/s.
        assert [limiter.try_acquire(1, 3) for _ in range(2)] == [0.0, 0.0]
        kwargs = {"limiter": limiter, "quote_limiter": quotes, "day": day, "timeout": 0}
        assert quote_slot_take(account_id=1, broker="upstox", ops_limit=3, **kwargs)
        assert limiter.try_acquire(1, 3) > 0  # the quote took the order's third slot
        assert not quote_slot_take(account_id=1, broker="upstox", ops_limit=3, **kwargs)
        # Kite: one quote call a second of its own, inside the shared budget.
        assert quote_slot_take(account_id=2, broker="kite", ops_limit=10, **kwargs)
        assert not quote_slot_take(account_id=2, broker="kite", ops_limit=10, **kwargs)
        assert limiter.try_acquire(2, 10) == 0  # the refused quote took no order slot
    finally:
        quotes.reset(1)
        quotes.reset(2)


def test_a_quote_call_reserved_for_t_minus_epsilon_waits_for_no_slot_then(limiter):
    """The dispatcher reserves its quote call at T - ε ahead: the slot is its own at that
    instant (Kite: one quote call a second), and counts in the account's shared budget."""
    import datetime

    from brokers.ratelimit import quote_slot_reserve, quote_slot_take

    quotes = OrderRateLimiter(namespace=f"{limiter.namespace}-quotes")
    day = datetime.date(2026, 12, 3)
    at = time.time() + 0.5
    kwargs = {"limiter": limiter, "quote_limiter": quotes, "day": day}
    try:
        assert quote_slot_reserve(account_id=1, broker="kite", ops_limit=3, at_epoch=at, **kwargs)
        # A second call in the same second is refused (Kite's limit), reserved or taken now.
        assert not quote_slot_reserve(
            account_id=1, broker="kite", ops_limit=3, at_epoch=at, **kwargs
        )
        assert not quote_slot_take(account_id=1, broker="kite", ops_limit=3, timeout=0, **kwargs)
        # The reserved call holds one of the account's 3 slots in the window ending at T - ε.
        assert limiter.reserve_at(1, 3, 3, at) == [at, at, at + 1.0]
    finally:
        quotes.reset(1)


def test_quote_limits_are_read_by_date():
    import datetime

    from brokers.ratelimit import quote_calls_per_second

    assert quote_calls_per_second("kite", datetime.date(2026, 12, 3)) == 1
    assert quote_calls_per_second("angelone", datetime.date(2027, 1, 26)) == 10
    assert quote_calls_per_second("upstox", datetime.date(2026, 12, 3)) is None
    assert quote_calls_per_second("kite", datetime.date(2026, 1, 1)) is None


def test_book_read_budgets_are_dated_rows_with_sources():
    import datetime

    from brokers.ratelimit import book_reads_per_second

    day = datetime.date(2026, 12, 7)
    brokers = ("kite", "angelone", "fyers", "dhan", "upstox")
    budgets = {broker: book_reads_per_second(broker, day) for broker in brokers}
    assert budgets == {"kite": 10, "angelone": 2, "fyers": 10, "dhan": 20, "upstox": 2}
    assert book_reads_per_second("paper", day) is None
    assert book_reads_per_second("kite", datetime.date(2026, 10, 31)) is None  # before the row


def test_a_limits_row_without_a_source_is_refused(tmp_path):
    import datetime

    from brokers import ratelimit

    limits = tmp_path / "limits.json"
    limits.write_text(
        '{"rows": [{"broker": "kite", "effective_from": "2026-11-01", "per_second": 3}]}'
    )
    with pytest.raises(ValueError, match="kite row gives no source"):
        ratelimit._per_second_on(limits, "kite", datetime.date(2026, 12, 7))
