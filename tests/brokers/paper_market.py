"""A still market for paper-broker tests: fixed spot and quotes, so fills can be asserted to
the paisa. Contracts and lot sizes still come from the seeded reference data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from execution.markettime import IST


@dataclass
class StillQuote:
    bid: Decimal
    ask: Decimal
    ltp: Decimal


class StillMarket:
    def __init__(self) -> None:
        self.spots = {"NIFTY": Decimal("25000"), "SENSEX": Decimal("82000")}
        self.quotes: dict[tuple[str, date, Decimal, str], StillQuote] = {}
        self.default = StillQuote(Decimal("99.50"), Decimal("100.50"), Decimal("100.00"))

    def spot(self, symbol: str) -> Decimal:
        return self.spots[symbol]

    def option_quote(self, symbol, expiry, strike, option_type) -> StillQuote:
        return self.quotes.get((symbol, expiry, Decimal(strike), option_type), self.default)

    def set_touch(self, bid: str, ask: str, ltp: str | None = None) -> None:
        self.default = StillQuote(Decimal(bid), Decimal(ask), Decimal(ltp or bid))


@pytest.fixture
def still_market(monkeypatch) -> StillMarket:
    market = StillMarket()
    monkeypatch.setattr("brokers.paper.market._market", lambda: market)
    return market


def today_ist() -> date:
    return timezone.now().astimezone(IST).date()


def nifty_contract(strike: int = 25000, option_type: str = "CE") -> tuple[str, int]:
    """A listed NIFTY option's Kite symbol and its lot size, from the reference data."""
    from execution.reference.contracts import expiries, kite_symbol, lot_size

    expiry = expiries("NIFTY", today_ist())[0]
    return kite_symbol("NIFTY", expiry, strike, option_type), lot_size("NIFTY", expiry)
