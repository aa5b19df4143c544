"""Execution app models, one module per sub-domain.

`market` holds the market reference data (calendar, underlyings and their dated facts,
instruments). Execution-engine models belong in their own module (e.g. `engine.py`), imported
here.
"""

from execution.models.market import (
    BrokerSymbol,
    Exchange,
    ExpiryKind,
    ExpiryRule,
    FreezeQuantity,
    Instrument,
    InstrumentSource,
    LotSize,
    OptionType,
    Segment,
    SessionTiming,
    SpecialSession,
    StrikeStep,
    TradingHoliday,
    Underlying,
    Weekday,
)

__all__ = [
    "BrokerSymbol",
    "Exchange",
    "ExpiryKind",
    "ExpiryRule",
    "FreezeQuantity",
    "Instrument",
    "InstrumentSource",
    "LotSize",
    "OptionType",
    "Segment",
    "SessionTiming",
    "SpecialSession",
    "StrikeStep",
    "TradingHoliday",
    "Underlying",
    "Weekday",
]
