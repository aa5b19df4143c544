"""The simulated market and symbol helpers, in pure Python (usable without Django's database)."""

from execution.market.symbols import ParsedKiteSymbol, last_weekday_of_month, parse_kite_symbol

__all__ = ["ParsedKiteSymbol", "last_weekday_of_month", "parse_kite_symbol"]
