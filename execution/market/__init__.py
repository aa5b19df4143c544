"""The simulated market and symbol helpers, in pure Python (usable without Django's database).

from execution.market import default_market, parse_kite_symbol
market = default_market()
market.spot("NIFTY")
market.option_quote("NIFTY", expiry, Decimal("26000"), "CE")
"""

from execution.market.simulated import (
    ANCHOR_DATE,
    DEFAULT_PARAMS,
    ChainRow,
    OptionQuote,
    SimulatedMarket,
    UnderlyingParams,
    default_market,
)
from execution.reference.symbols import ParsedKiteSymbol, last_weekday_of_month, parse_kite_symbol

__all__ = [
    "ANCHOR_DATE",
    "DEFAULT_PARAMS",
    "ChainRow",
    "OptionQuote",
    "ParsedKiteSymbol",
    "SimulatedMarket",
    "UnderlyingParams",
    "default_market",
    "last_weekday_of_month",
    "parse_kite_symbol",
]
