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


# Index names as the brokers' quote APIs spell them → the simulated market's underlying.
INDEX_UNDERLYINGS = {
    "NIFTY 50": "NIFTY",
    "NIFTY BANK": "BANKNIFTY",
    "NIFTY FIN SERVICE": "FINNIFTY",
    "NIFTY MID SELECT": "MIDCPNIFTY",
    "SENSEX": "SENSEX",
}


class SimulatedQuotes:
    """Quotes from `execution.market.SimulatedMarket` for Kite-style option symbols and index
    names. Unknown or unparseable symbols give None (the broker then refuses the order).

    A quote is a snapshot per second of the emulator clock: pricing an option (Black-76 and
    its implied volatility) costs far more than serving an order, so at a thousand orders a
    second the same snapshot is reused within that second.
    """

    def __init__(
        self,
        *,
        seed: int,
        clock: Callable[[], datetime],
        monthly_expiry_weekday: int = 1,
        params: dict[str, Any] | None = None,
    ) -> None:
        from execution.market import parse_kite_symbol
        from execution.market.simulated import DEFAULT_PARAMS, SimulatedMarket

        self.clock = clock
        # `params` (UnderlyingParams by underlying) let a test give this broker's market its
        # own levels, e.g. a NIFTY far from the platform's simulator.
        self.market = SimulatedMarket(seed, clock, {**DEFAULT_PARAMS, **(params or {})})
        self._parse = parse_kite_symbol
        # Monthly Kite symbols carry no day; without the holiday calendar (the emulator has no
        # database) the month's last `monthly_expiry_weekday` stands in for the expiry.
        self.monthly_expiry_weekday = monthly_expiry_weekday
        self._cache: dict[tuple[str, str], MarketQuote | None] = {}
        self._cache_second = -1

    def warm(self) -> None:
        """Price one option now, so that the first order does not pay for the pricing code's
        first run (imports, caches: several milliseconds)."""
        from datetime import timedelta

        now = self.clock()
        spot = self.market.spot("NIFTY", now)
        strike = (spot / 50).quantize(Decimal(1)) * 50
        self.market.option_quote("NIFTY", (now + timedelta(days=7)).date(), strike, "CE", now)

    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        now = self.clock()
        second = int(now.timestamp())
        if second != self._cache_second:
            self._cache.clear()
            self._cache_second = second
        key = (exchange, tradingsymbol)
        if key not in self._cache:
            self._cache[key] = self._price(exchange, tradingsymbol, now)
        return self._cache[key]

    def _price(self, exchange: str, tradingsymbol: str, now: datetime) -> MarketQuote | None:
        try:
            if exchange in {"NSE", "BSE"}:
                underlying = INDEX_UNDERLYINGS.get(tradingsymbol, tradingsymbol)
                spot = self.market.spot(underlying, now)
                return MarketQuote(spot, spot, spot, timestamp=now)
            contract = self._parse(tradingsymbol)
            raw = self.market.option_quote(
                contract.underlying,
                contract.approx_expiry(self.monthly_expiry_weekday),
                contract.strike,
                contract.option_type,
                now,
            )
        except (KeyError, ValueError):
            return None
        return MarketQuote(
            last_price=_decimal(raw.ltp),
            bid=_decimal(raw.bid),
            ask=_decimal(raw.ask),
            timestamp=now,
        )
