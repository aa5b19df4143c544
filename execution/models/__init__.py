"""Execution app models, one module per sub-domain.

`market` holds the market reference data (calendar, underlyings and their dated facts,
instruments). Execution-engine models belong in their own module (e.g. `engine.py`), imported
here.
"""

from execution.models.charges import BrokerageRate, ChargeRate
from execution.models.engine import (
    AccountReadiness,
    Boundary,
    ExecutionEvent,
    Fill,
    IntentState,
    KillSwitch,
    KillSwitchScope,
    OrderIntent,
    Position,
    Purpose,
    RunState,
    ScheduledRun,
)
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
    "AccountReadiness",
    "Boundary",
    "BrokerSymbol",
    "BrokerageRate",
    "ChargeRate",
    "Exchange",
    "ExecutionEvent",
    "ExpiryKind",
    "ExpiryRule",
    "Fill",
    "FreezeQuantity",
    "Instrument",
    "InstrumentSource",
    "IntentState",
    "KillSwitch",
    "KillSwitchScope",
    "LotSize",
    "OptionType",
    "OrderIntent",
    "Position",
    "Purpose",
    "RunState",
    "ScheduledRun",
    "Segment",
    "SessionTiming",
    "SpecialSession",
    "StrikeStep",
    "TradingHoliday",
    "Underlying",
    "Weekday",
]
