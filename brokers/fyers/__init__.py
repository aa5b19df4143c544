"""Fyers API v3 adapter: client.py (HTTP), parsing.py (fields and errors), adapter.py."""
