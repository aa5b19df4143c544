"""A fixed market for the Angel One, Fyers and Dhan emulator tests: prices never move, so
fills are exact, and a LIMIT below the ask rests open."""

from __future__ import annotations

import json
from decimal import Decimal

import requests

from brokers.emulator.pricing import MarketQuote

CONTRACT = "NIFTY25JUN24000CE"  # the emulators' canonical (Kite-style) name
INDEX_LAST = Decimal("24012.35")


class FixedQuotes:
    def __init__(self, last: str = "100", bid: str = "99.9", ask: str = "100.1") -> None:
        self.last, self.bid, self.ask = Decimal(last), Decimal(bid), Decimal(ask)

    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        if (exchange, tradingsymbol) in {("NSE", "NIFTY 50"), ("BSE", "SENSEX")}:
            return MarketQuote(INDEX_LAST, INDEX_LAST, INDEX_LAST)
        if exchange in {"NFO", "BFO"} and tradingsymbol.startswith(("NIFTY", "SENSEX")):
            return MarketQuote(self.last, self.bid, self.ask)
        return None


def response(status: int, body: object, headers: dict[str, str] | None = None):
    """A recorded answer as `requests` would hand it to the adapter."""
    answer = requests.Response()
    answer.status_code = status
    answer._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    answer.headers.update(headers or {"Content-Type": "application/json"})
    return answer


def unused_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def order_request(tag: str, *, market: bool = False, price: str = "99", **fields):
    """Our order for CONTRACT: a resting BUY LIMIT at 99 (ask 100.1) unless `market`."""
    from brokers.base import OrderRequest, OrderType, Product, Side

    return OrderRequest(
        exchange=fields.pop("exchange", "NFO"),
        tradingsymbol=fields.pop("tradingsymbol", CONTRACT),
        side=fields.pop("side", Side.BUY),
        quantity=fields.pop("quantity", 75),
        order_type=OrderType.MARKET if market else OrderType.LIMIT,
        product=fields.pop("product", Product.NRML),
        tag=tag,
        price=None if market else Decimal(price),
        **fields,
    )
