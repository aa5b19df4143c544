"""Plain data a strategy is created or edited from, and the rules it must satisfy.

The wizard's forms and the services both use these rules, so a bad value is refused with the
same words whether it comes through a page or from code (marketplace copies, the API later).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any

from trader.models import (
    AllocationSizing,
    ExitUnit,
    ExpiryChoice,
    HedgeConfirmation,
    LegFailurePolicy,
    StrategyKind,
    StrikeMode,
)
from trader.models.strategies import MAX_LEGS, MON_TO_FRI_MASK

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class LegSpec:
    side: str
    option_type: str
    lots: int
    expiry_choice: str = ExpiryChoice.CURRENT_WEEK
    strike_mode: str = StrikeMode.ATM_OFFSET
    strike_offset: int | None = 0
    strike_price: Decimal | None = None
    target_premium: Decimal | None = None
    target_delta: Decimal | None = None
    stop_loss: Decimal | None = None
    stop_loss_unit: str = ExitUnit.POINTS
    target: Decimal | None = None
    target_unit: str = ExitUnit.POINTS

    def normalized(self) -> LegSpec:
        """Keep only the strike parameter the mode uses (the database insists on it)."""
        param_of_mode: dict[str, str] = {
            StrikeMode.ATM_OFFSET: "strike_offset",
            StrikeMode.EXACT: "strike_price",
            StrikeMode.PREMIUM: "target_premium",
            StrikeMode.DELTA: "target_delta",
        }
        keep = param_of_mode.get(self.strike_mode)
        params = ("strike_offset", "strike_price", "target_premium", "target_delta")
        # All four are optional fields, so None is a valid value for each.
        cleared: dict[str, Any] = {name: None for name in params if name != keep}
        return replace(self, **cleared)


@dataclass(frozen=True)
class AllocationSpec:
    broker_account_id: int
    sizing: str = AllocationSizing.MULTIPLIER
    multiplier: Decimal | None = Decimal(1)
    fixed_lots: int | None = None
    priority: int = 1
    enabled: bool = True

    def lots_for(self, leg_lots: int) -> int:
        if self.sizing == AllocationSizing.FIXED:
            return int(self.fixed_lots or 0)
        product = Decimal(leg_lots) * Decimal(self.multiplier or 0)
        return int(product.to_integral_value(rounding=ROUND_DOWN))


@dataclass(frozen=True)
class StrategySpec:
    name: str
    underlying_id: int
    legs: Sequence[LegSpec]
    entry_time: datetime.time
    exit_time: datetime.time
    trading_days: int = MON_TO_FRI_MASK
    description: str = ""
    kind: str = StrategyKind.INTRADAY
    template: str = ""
    leg_failure_policy: str = LegFailurePolicy.UNWIND
    hedge_confirmation: str = HedgeConfirmation.ACK
    stop_loss_mtm: Decimal | None = None
    target_mtm: Decimal | None = None
    trailing_stop_mtm: Decimal | None = None
    allocations: Sequence[AllocationSpec] = field(default_factory=tuple)


@dataclass(frozen=True)
class Limits:
    max_lots_per_order: int
    max_lots_per_strategy: int
    max_open_strategies: int
    max_daily_loss: Decimal


Errors = dict[str, list[str]]


def _add(errors: Errors, key: str, message: str) -> None:
    errors.setdefault(key, []).append(message)


def weekdays_to_mask(days: Iterable[int | str]) -> int:
    return sum(1 << int(day) for day in set(days))


def mask_to_weekdays(mask: int) -> list[int]:
    return [day for day in range(7) if mask & (1 << day)]


def describe_weekdays(mask: int) -> str:
    return ", ".join(WEEKDAY_NAMES[day] for day in mask_to_weekdays(mask))


def times_errors(
    entry: datetime.time | None,
    exit_: datetime.time | None,
    *,
    session: tuple[datetime.time, datetime.time],
    on: datetime.date,
) -> Errors:
    """`session` is the normal (opens, closes) in force on `on` (execution.reference.calendar)."""
    errors: Errors = {}
    opens, closes = session
    window = f"{opens:%H:%M}-{closes:%H:%M} IST"
    dated = f"the market session on {on:%d %b %Y}, {window}"
    if entry is not None and not opens <= entry < closes:
        _add(errors, "entry_time", f"Entry must be inside {dated}.")
    if exit_ is not None and not opens <= exit_ <= closes:
        _add(errors, "exit_time", f"Exit must be inside {dated}.")
    if entry is not None and exit_ is not None and exit_ <= entry:
        _add(errors, "exit_time", "Exit must be after entry.")
    return errors


def trading_days_errors(mask: int) -> Errors:
    if not 1 <= mask <= 127:
        return {"trading_days": ["Choose at least one day to trade on."]}
    return {}


def expiry_choice_error(choice: str, *, symbol: str, available: Iterable[str]) -> str | None:
    """Words for an expiry the underlying does not list (BANKNIFTY has monthlies only)."""
    offered = [c for c in ExpiryChoice.values if c in set(available)]
    if choice in offered:
        return None
    label = ExpiryChoice(choice).label.lower() if choice in ExpiryChoice.values else choice
    if not offered:
        return f"{symbol} has no listed expiry to trade right now."
    names = " or ".join(ExpiryChoice(c).label.lower() for c in offered)
    kind = "weekly" if "week" in choice else "monthly"
    return f"{symbol} has no {kind} expiry, so no {label} contract. Choose {names}."


def fit_expiry_choice(choice: str | None, available: Iterable[str] | None) -> str:
    """`choice` if the underlying lists it, else its monthly counterpart, else the first
    listed one: a template's default that exists for the chosen underlying."""
    choice = choice or ExpiryChoice.CURRENT_WEEK
    if available is None:
        return choice
    offered = [c for c in ExpiryChoice.values if c in set(available)]
    if choice in offered or not offered:
        return choice
    counterpart = {"current_week": "current_month", "next_week": "next_month"}.get(choice)
    return counterpart if counterpart in offered else offered[0]


def leg_errors(
    leg: LegSpec,
    *,
    strike_step: Decimal | None,
    limits: Limits | None,
    symbol: str = "",
    expiry_kinds: Iterable[str] | None = None,
) -> Errors:
    """Errors of one leg, keyed by field name. `expiry_kinds`: the expiry choices the
    underlying has today (execution.reference.contracts.expiry_kinds); None skips that check."""
    errors: Errors = {}
    if expiry_kinds is not None and leg.expiry_choice:
        message = expiry_choice_error(leg.expiry_choice, symbol=symbol, available=expiry_kinds)
        if message:
            _add(errors, "expiry_choice", message)
    if leg.lots is None or leg.lots <= 0:
        _add(errors, "lots", "Lots must be at least 1.")
    elif limits is not None and leg.lots > limits.max_lots_per_order:
        _add(
            errors,
            "lots",
            f"{leg.lots} lots is above your limit of {limits.max_lots_per_order} lots per order.",
        )
    mode = leg.strike_mode
    if mode == StrikeMode.ATM_OFFSET and leg.strike_offset is None:
        _add(errors, "strike_offset", "Give the number of strike steps from ATM (0 for ATM).")
    elif mode == StrikeMode.EXACT:
        if leg.strike_price is None or leg.strike_price <= 0:
            _add(errors, "strike_price", "Give the strike price.")
        elif strike_step and leg.strike_price % strike_step != 0:
            _add(
                errors,
                "strike_price",
                f"{leg.strike_price:f} is not on the {symbol} strike grid: strikes are "
                f"multiples of {strike_step.normalize():f}.",
            )
    elif mode == StrikeMode.PREMIUM and (leg.target_premium is None or leg.target_premium <= 0):
        _add(errors, "target_premium", "Give the premium in rupees to aim for (above 0).")
    elif mode == StrikeMode.DELTA and (
        leg.target_delta is None or not Decimal(0) < leg.target_delta < Decimal(1)
    ):
        _add(errors, "target_delta", "Give a delta between 0 and 1, for example 0.25.")
    for name in ("stop_loss", "target"):
        value = getattr(leg, name)
        if value is not None and value <= 0:
            _add(errors, name, "Leave it empty or give a value above 0.")
    return errors


def legs_errors(
    legs: Sequence[LegSpec], *, limits: Limits | None, needs_distinct_expiries: bool
) -> list[str]:
    """Errors about the set of legs as a whole."""
    messages = []
    if not legs:
        messages.append("Add at least one leg.")
    elif len(legs) > MAX_LEGS:
        messages.append(f"A strategy has at most {MAX_LEGS} legs; this one has {len(legs)}.")
    if limits is not None and legs:
        total = sum(max(leg.lots or 0, 0) for leg in legs)
        if total > limits.max_lots_per_strategy:
            messages.append(
                f"The legs add up to {total} lots, above your limit of "
                f"{limits.max_lots_per_strategy} lots per strategy."
            )
    if needs_distinct_expiries and len({leg.expiry_choice for leg in legs}) < 2:
        messages.append(
            "A calendar spread needs legs on different expiries: choose another expiry for one "
            "of the legs."
        )
    return messages


def allocation_errors(
    allocation: AllocationSpec, *, legs: Sequence[LegSpec], limits: Limits | None
) -> Errors:
    errors: Errors = {}
    if allocation.sizing == AllocationSizing.FIXED:
        if allocation.fixed_lots is None or allocation.fixed_lots <= 0:
            _add(errors, "fixed_lots", "Fixed lots must be at least 1.")
    elif allocation.multiplier is None or allocation.multiplier <= 0:
        _add(errors, "multiplier", "The multiplier must be above 0.")
    if allocation.priority is None or allocation.priority < 1:
        _add(errors, "priority", "Priority starts at 1 (tried first).")
    if errors:
        return errors
    for index, leg in enumerate(legs, start=1):
        lots = allocation.lots_for(leg.lots)
        key = "fixed_lots" if allocation.sizing == AllocationSizing.FIXED else "multiplier"
        if lots < 1:
            _add(errors, key, f"Leg {index} ({leg.lots} lots) would trade less than one lot.")
            break
        if limits is not None and lots > limits.max_lots_per_order:
            _add(
                errors,
                key,
                f"Leg {index} would trade {lots} lots, above your limit of "
                f"{limits.max_lots_per_order} lots per order.",
            )
            break
    return errors


def allocations_total_errors(
    allocations: Sequence[AllocationSpec], *, legs: Sequence[LegSpec], limits: Limits | None
) -> list[str]:
    messages = []
    ids = [a.broker_account_id for a in allocations]
    if len(ids) != len(set(ids)):
        messages.append("Each broker account can be allocated only once.")
    if limits is not None:
        total = sum(a.lots_for(leg.lots) for a in allocations if a.enabled for leg in legs)
        if total > limits.max_lots_per_strategy:
            messages.append(
                f"Across its accounts this strategy trades {total} lots, above your limit of "
                f"{limits.max_lots_per_strategy} lots per strategy."
            )
    return messages


def money_errors(values: dict[str, Any]) -> Errors:
    errors: Errors = {}
    for name, value in values.items():
        if value is not None and value <= 0:
            _add(errors, name, "Leave it empty or give an amount above ₹0.")
    return errors
