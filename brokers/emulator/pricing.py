"""Where emulated fills and quotes get their prices: the simulated market.

The emulator process must not need Django's database, so only the pure parts of
`execution.market` are imported (the simulated market and the Kite symbol parser), lazily.
Contracts are named by their Kite-style trading symbol (the emulators' canonical name);
indices by their quote name (``NIFTY 50``, ``NIFTY BANK``, ``SENSEX``…).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class MarketQuote:
    last_price: Decimal
    bid: Decimal
    ask: Decimal
    tick_size: Decimal = Decimal("0.05")
    timestamp: datetime | None = None


class QuoteSource(Protocol):
    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        """The current quote, or None when the instrument is unknown."""


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


class SimulatedQuotes:
    """Quotes from `execution.market.SimulatedMarket` for Kite-style option symbols and index
    names. Unknown or unparseable symbols give None (the broker then refuses the order)."""

    def __init__(self, *, seed: int, clock: Callable[[], datetime]) -> None:
        self.seed = seed
        self.clock = clock
        self._market: Any = None

    def _load(self) -> Any:
        if self._market is None:
            from execution import market

            self._module = market
            self._market = market.SimulatedMarket(self.seed, self.clock)
        return self._market

    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        market = self._load()
        if exchange in {"NSE", "BSE"}:
            spot = market.index_ltp(tradingsymbol)
            if spot is None:
                return None
            price = _decimal(spot)
            return MarketQuote(price, price, price, timestamp=self.clock())
        try:
            contract = self._module.parse_kite_symbol(tradingsymbol)
        except ValueError:
            return None
        if contract is None:
            return None
        raw = market.option_quote(
            contract.underlying, contract.expiry, contract.strike, contract.option_type
        )
        return MarketQuote(
            last_price=_decimal(raw.last_price),
            bid=_decimal(raw.bid),
            ask=_decimal(raw.ask),
            tick_size=_decimal(getattr(raw, "tick_size", "0.05")),
            timestamp=self.clock(),
        )
