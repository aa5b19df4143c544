"""Angel One SmartAPI adapter: client.py (HTTP), parsing.py (fields and errors), adapter.py."""
