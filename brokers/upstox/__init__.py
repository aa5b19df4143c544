"""Upstox adapter: v2 auth, v3 order placement (our own thin `requests` client, no SDK)."""

from brokers.upstox.adapter import UpstoxAdapter

__all__ = ["UpstoxAdapter"]
