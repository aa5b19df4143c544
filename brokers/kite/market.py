"""Kite quotes with their timestamp (`GET /quote`, reference §1.6: 1 call/s, up to 500
instruments a call): the freshness bound of live runs needs the broker's own time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from brokers.base import Quote
from brokers.httpclient import parse_ist_timestamp
from brokers.kite import parsing

QUOTE_BATCH = 500


def quotes_with_time(adapter: Any, keys: list[str]) -> dict[str, tuple[Quote, datetime | None]]:
    """`keys` as Kite writes them ("NSE:NIFTY 50", "NFO:NIFTY26D0821000CE")."""
    found: dict[str, tuple[Quote, datetime | None]] = {}
    for start in range(0, len(keys), QUOTE_BATCH):
        batch = keys[start : start + QUOTE_BATCH]
        data = adapter.client.send("GET", "/quote", params=[("i", k) for k in batch]) or {}
        for key, row in data.items():
            found[key] = (parsing.to_quote(key, row), parse_ist_timestamp(row.get("timestamp")))
    return found
