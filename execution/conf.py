"""Engine settings, each overridable in Django settings (and so from the environment)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings


def dispatch_lead_seconds() -> float:
    """How long before T the dispatch task starts loading (it takes the spot at T - ε)."""
    return float(getattr(settings, "EXECUTION_DISPATCH_LEAD_SECONDS", 7.0))


def dispatch_seconds_per_intent() -> float:
    """The calibrated cost of one entry order before T - ε (build, write, commit, hand over),
    used to size a boundary's lead until the engine has measured its own
    (`execution.dispatch.seconds_per_intent`): 1.2 ms, what the whole dispatch of 10,000
    orders took on a busy 2-core machine on 2026-12-04 (12.4 s from its start at T - 4 s)."""
    return float(getattr(settings, "EXECUTION_DISPATCH_SECONDS_PER_INTENT", 0.0012))


def spot_epsilon_seconds() -> float:
    """ε: how long before T the spot is read and strikes resolved (the rest must fit in it)."""
    return float(getattr(settings, "EXECUTION_SPOT_EPSILON_SECONDS", 4.0))


def send_chunk_accounts() -> int:
    """How many accounts' batches of one boundary travel in one task message to the workers
    (a boundary of 400 accounts is 16 messages at 25): fewer messages to publish just before
    T, and still enough of them to spread over several worker processes."""
    return int(getattr(settings, "EXECUTION_SEND_CHUNK_ACCOUNTS", 25))


def late_tolerance_seconds() -> float:
    """A boundary found later than this after T is not sent at all (the moment has passed)."""
    return float(getattr(settings, "EXECUTION_LATE_TOLERANCE_SECONDS", 30.0))


def entry_late_cap_seconds() -> float:
    """An entry later than this after its T is not sent ("missed: N s late"): a 09:20 entry
    sent at 09:20:40 is a different trade. Exits and kill-switch orders are never dropped."""
    return float(getattr(settings, "EXECUTION_ENTRY_LATE_CAP_SECONDS", 5.0))


def market_protection() -> Decimal:
    """Percent carried by MARKET orders where brokers require it (SEBI 2026 rules)."""
    return Decimal(str(getattr(settings, "EXECUTION_MARKET_PROTECTION", "2")))


def square_off_minutes_before_close() -> int:
    """Intraday positions still open this many minutes before the close are squared off."""
    return int(getattr(settings, "EXECUTION_SQUARE_OFF_MINUTES", 10))


def limit_protection_percent() -> Decimal:
    """Percent by which a marketable LIMIT (for brokers that refuse MARKET orders from algos)
    is priced through the quote read at T - ε: above it for a BUY, below it for a SELL."""
    return Decimal(str(getattr(settings, "EXECUTION_LIMIT_PROTECTION_PERCENT", "2")))


def quote_max_age_seconds() -> float:
    """A broker quote older than this never prices an order or fires an exit: the run is
    held ("no fresh price: not sent") and the watch alerts instead."""
    return float(getattr(settings, "EXECUTION_QUOTE_MAX_AGE_SECONDS", 5.0))


def unknown_settle_seconds() -> float:
    """How long an order whose outcome is unknown is looked up in the broker's books before it
    is marked "needs attention" (owner alerted, the strategy's entries halted)."""
    return float(getattr(settings, "EXECUTION_UNKNOWN_SETTLE_SECONDS", 120.0))


def follow_interval_seconds() -> float:
    """The shortest pause between two reads of one account's order and trade books while
    its live orders are open (the broker's read budget may make it longer)."""
    return float(getattr(settings, "EXECUTION_FOLLOW_INTERVAL_SECONDS", 1.0))


def follow_budget_share() -> float:
    """The share of a broker's documented book-read budget the fast follow-up may use; the
    rest stays for the reconciler, the pages and the trader's own tools."""
    return float(getattr(settings, "EXECUTION_FOLLOW_BUDGET_SHARE", 0.5))


def follow_max_seconds() -> float:
    """How long an account's open orders are followed fast after the last order was sent;
    orders still open then (a resting LIMIT) are left to the 15-second reconcilers. 0 turns
    the fast follow-up off."""
    return float(getattr(settings, "EXECUTION_FOLLOW_MAX_SECONDS", 120.0))
