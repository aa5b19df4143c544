"""Fixtures for the emulator tests: a fixed quote source and a Kite emulator with one
logged-in account (Kite is the reference broker for the core's shared behaviour)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from brokers.emulator import start_in_thread
from brokers.emulator.pricing import MarketQuote

SYMBOL = "NIFTY25JUN24000CE"


class FixedQuotes:
    """A market that never moves: fills become exact, checkable numbers."""

    def __init__(self, last: str = "100", bid: str = "99.9", ask: str = "100.1") -> None:
        self.last, self.bid, self.ask = Decimal(last), Decimal(bid), Decimal(ask)

    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        if exchange == "NSE" and tradingsymbol == "NIFTY 50":
            return MarketQuote(Decimal("24012.35"), Decimal("24012.35"), Decimal("24012.35"))
        if not tradingsymbol.startswith(("NIFTY", "BANKNIFTY", "SENSEX")):
            return None
        return MarketQuote(self.last, self.bid, self.ask)


class KiteSession:
    def __init__(self, emulator, api_key: str = "kitekey1", secret: str = "kitesecret1"):  # noqa: S107
        import requests

        self.emulator = emulator
        self.api_key = api_key
        emulator.add_account(
            api_key=api_key,
            api_secret=secret,
            user_id="ZX1234",
            redirect_uri="http://127.0.0.1:9/brokers/callback/kite/",
        )
        self.token = emulator.issue_token(api_key)
        self.http = requests.Session()

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Kite-Version": "3", "Authorization": f"token {self.api_key}:{self.token}"}

    def order(self, timeout: float = 5, headers: dict | None = None, **fields):
        data = {
            "tradingsymbol": SYMBOL,
            "exchange": "NFO",
            "transaction_type": "BUY",
            "order_type": "LIMIT",
            "price": "101",
            "quantity": "75",
            "product": "NRML",
            "tag": "t1",
            **fields,
        }
        return self.http.post(
            f"{self.emulator.base_url}/orders/regular",
            data={k: v for k, v in data.items() if v is not None},
            headers={**self.headers, **(headers or {})},
            timeout=timeout,
        )

    def get(self, path: str, **kwargs):
        return self.http.get(
            f"{self.emulator.base_url}{path}", headers=self.headers, timeout=5, **kwargs
        )


@pytest.fixture
def quotes() -> FixedQuotes:
    return FixedQuotes()


@pytest.fixture
def kite_emulator(quotes):
    emulator = start_in_thread("kite", quotes=quotes)
    yield emulator
    emulator.stop()


@pytest.fixture
def kite(kite_emulator) -> KiteSession:
    return KiteSession(kite_emulator)
