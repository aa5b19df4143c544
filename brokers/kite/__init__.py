"""Zerodha Kite Connect v3 adapter (our own thin `requests` client, no SDK)."""

from brokers.kite.adapter import KiteAdapter

__all__ = ["KiteAdapter"]
