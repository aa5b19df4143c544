"""Trader domain models, one module per sub-domain."""

from trader.models.accounts import Profile, User, UserManager
from trader.models.strategies import (
    AllocationSizing,
    BrokerAllocation,
    ExitUnit,
    ExpiryChoice,
    Leg,
    LegFailurePolicy,
    OptionType,
    RiskCeiling,
    RiskLimit,
    Side,
    Strategy,
    StrategyAlgoId,
    StrategyKind,
    StrategyStatus,
    StrategyVersion,
    StrikeMode,
)

__all__ = [
    "AllocationSizing",
    "BrokerAllocation",
    "ExitUnit",
    "ExpiryChoice",
    "Leg",
    "LegFailurePolicy",
    "OptionType",
    "Profile",
    "RiskCeiling",
    "RiskLimit",
    "Side",
    "Strategy",
    "StrategyAlgoId",
    "StrategyKind",
    "StrategyStatus",
    "StrategyVersion",
    "StrikeMode",
    "User",
    "UserManager",
]
