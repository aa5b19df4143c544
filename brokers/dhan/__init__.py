"""Dhan (DhanHQ v2) adapter: client.py (HTTP), parsing.py (fields and errors), adapter.py."""
