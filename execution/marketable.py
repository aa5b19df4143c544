"""Order terms per broker: MARKET where the broker takes it, else a marketable LIMIT.

Since 1-Apr-2026 some brokers refuse MARKET orders from algos outright (Angel One; see
shared/reference/broker-apis.md). Their adapters say so with
`Capabilities.market_orders_allowed = False`. For those accounts the engine sends a LIMIT
priced from the quote it resolved at T - ε, moved by EXECUTION_LIMIT_PROTECTION_PERCENT in the
direction that makes it marketable (a BUY above the quote, rounded up to the tick; a SELL
below it, rounded down), so it fills at once like a protected market order and can never fill
worse than the protection.

Every intent records that quote as `reference_price` (whatever its order type), so analytics
can measure slippage: the fill's average price against the price the engine saw.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from execution import conf, pricing

logger = logging.getLogger(__name__)

DEFAULT_TICK = Decimal("0.05")


def market_orders_allowed(broker: str) -> bool:
    """Whether the broker's adapter accepts MARKET orders (unknown brokers: yes, their own
    adapter refuses what it cannot send)."""
    from brokers.registry import AdapterUnavailableError, adapter_class

    try:
        return adapter_class(broker).capabilities.market_orders_allowed
    except AdapterUnavailableError:
        return True


def protected_limit(*, side: str, reference: Decimal, percent: Decimal, tick: Decimal) -> Decimal:
    """A marketable LIMIT price: BUY `percent` above the reference rounded up to the tick,
    SELL `percent` below it rounded down (never below one tick)."""
    tick = tick or DEFAULT_TICK
    if side == "BUY":
        return pricing.round_to_tick(reference * (100 + percent) / 100, tick, direction="up")
    price = pricing.round_to_tick(reference * (100 - percent) / 100, tick, direction="down")
    return max(price, tick)


def terms_apply(intent: Any, *, broker: str, tick: Decimal | None) -> str | None:
    """Set the intent's order type (and LIMIT price) for the account's broker from its
    `reference_price`. Returns why it cannot be sent, in words, or None."""
    if market_orders_allowed(broker):
        intent.order_type, intent.price, intent.limit_protection_percent = "MARKET", None, None
        return None
    if intent.reference_price is None:
        return (
            f"{intent.tradingsymbol}: the broker takes only LIMIT orders from algos and no "
            "quote was available to price one."
        )
    percent = conf.limit_protection_percent()
    intent.order_type = "LIMIT"
    intent.limit_protection_percent = percent
    intent.price = protected_limit(
        side=intent.side,
        reference=intent.reference_price,
        percent=percent,
        tick=tick or DEFAULT_TICK,
    )
    return None


class ContractQuotes:
    """Last prices (and ticks) of contracts named by a broker's trading symbol, from the
    simulated market at one instant; one lookup per contract."""

    def __init__(self, market: Any, at: datetime) -> None:
        self.market = market
        self.at = at
        self._memo: dict[tuple[str, str], tuple[Decimal, Decimal] | None] = {}

    def quote(self, *, broker: str, tradingsymbol: str) -> tuple[Decimal, Decimal] | None:
        """(last price, tick size), or None when the symbol is not a known contract."""
        key = (broker, tradingsymbol)
        if key not in self._memo:
            self._memo[key] = self._lookup(broker, tradingsymbol)
        return self._memo[key]

    def ltp(self, *, broker: str, tradingsymbol: str, run_id: int | None = None) -> Decimal | None:
        """The last price (`run_id` is for sources that price runs apart; unused here)."""
        found = self.quote(broker=broker, tradingsymbol=tradingsymbol)
        return None if found is None else found[0]

    def _lookup(self, broker: str, tradingsymbol: str) -> tuple[Decimal, Decimal] | None:
        from execution.instruments import instrument_from_broker_symbol

        try:
            # The paper broker speaks Kite's notation.
            instrument = instrument_from_broker_symbol(
                "kite" if broker == "paper" else broker, tradingsymbol
            )
        except Exception:  # an unknown symbol has no price here
            logger.info("no instrument for %s at %s", tradingsymbol, broker)
            return None
        quote = self.market.option_quote(
            instrument.underlying.symbol,
            instrument.expiry,
            instrument.strike,
            instrument.option_type,
            at=self.at,
        )
        return Decimal(quote.ltp), Decimal(instrument.tick_size)


def closing_terms_apply(
    intents: Iterable[Any], *, accounts: dict[int, Any], quotes: ContractQuotes
) -> list[str]:
    """Reference price and order terms for closing intents built from positions; returns the
    problems (intents that cannot be priced for a LIMIT-only broker are left MARKET, and their
    adapter refuses them in words)."""
    problems = []
    for intent in intents:
        broker = accounts[intent.account_id].broker
        found = quotes.quote(broker=broker, tradingsymbol=intent.tradingsymbol)
        tick = None
        if found is not None:
            intent.reference_price, tick = found
        problem = terms_apply(intent, broker=broker, tick=tick)
        if problem:
            problems.append(problem)
    return problems
