"""Turn a version's legs into concrete contracts (expiry, strike, quantity) for one trade date.

Pure apart from the market-data calls it is given: the execution engine calls resolve_legs at
T - ε with the live market, the wizard's review calls it with the simulated market "as of now".
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from execution.reference import contracts
from trader.models import AllocationSizing, BrokerAllocation, Leg, StrategyVersion, StrikeMode

# 20 steps each side (±1,000 points on NIFTY) covers the usual premium and delta targets;
# chains are fetched once per expiry.
CHAIN_STRIKES_EACH_SIDE = 20


class StrikeResolutionError(ValueError):
    """A leg cannot be turned into a tradable contract (off-grid strike, empty chain...)."""


class Market(Protocol):
    def spot(self, symbol: str, at: datetime.datetime | None = None) -> Decimal: ...

    def chain(
        self,
        symbol: str,
        expiry: datetime.date,
        *,
        strike_step: Decimal,
        strikes_each_side: int = 10,
        at: datetime.datetime | None = None,
    ) -> list[Any]: ...


@dataclass(frozen=True)
class ResolvedLeg:
    leg_id: int | None
    position: int
    side: str
    option_type: str
    expiry: datetime.date
    strike: Decimal
    lots: int
    lot_size: int
    # Units per lot on the trade date (the contract's lot size); quantity = lots x this.
    quantity_per_lot: int
    # Premium per unit at resolution time, from the chain (None when no chain was needed and
    # the market could not quote the contract).
    premium: Decimal | None = None
    iv: Decimal | None = None

    @property
    def quantity(self) -> int:
        return self.lots * self.quantity_per_lot


def atm_strike(spot: Decimal, step: Decimal) -> Decimal:
    """The grid strike nearest to spot (halves round up, as brokers' option chains do)."""
    if step <= 0:
        raise StrikeResolutionError("The strike step must be positive.")
    return (Decimal(spot) / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def is_on_grid(strike: Decimal, step: Decimal) -> bool:
    return strike > 0 and step > 0 and strike % step == 0


def _quote(row: Any, option_type: str) -> Any:
    # A chain row carries one quote per side: row.ce and row.pe (execution.market.ChainRow).
    return getattr(row, option_type.lower())


def row_price(row: Any, option_type: str) -> Decimal:
    return Decimal(_quote(row, option_type).ltp)


def row_delta(row: Any, option_type: str) -> Decimal:
    return Decimal(str(_quote(row, option_type).delta))


def row_iv(row: Any, option_type: str) -> Decimal | None:
    value = getattr(_quote(row, option_type), "iv", None)
    return None if value is None else Decimal(str(round(value, 6)))


def closest_row(rows: Iterable[Any], *, key: Any) -> Any:
    """The row minimising key(row); ties go to the lower strike so results are reproducible."""
    best = min(rows, key=lambda row: (key(row), Decimal(row.strike)), default=None)
    if best is None:
        raise StrikeResolutionError("The option chain is empty.")
    return best


def pick_by_premium(rows: Sequence[Any], option_type: str, target: Decimal) -> Any:
    return closest_row(rows, key=lambda row: abs(row_price(row, option_type) - target))


def pick_by_delta(rows: Sequence[Any], option_type: str, target: Decimal) -> Any:
    # Put deltas are negative; the trader types the size of the delta (0.25 = 25-delta put).
    return closest_row(rows, key=lambda row: abs(abs(row_delta(row, option_type)) - target))


def resolve_legs(
    version: StrategyVersion,
    *,
    on: datetime.date,
    market: Market,
    at: datetime.datetime | None = None,
    legs: Sequence[Leg] | None = None,
) -> list[ResolvedLeg]:
    """Resolve every leg of `version` for trade date `on` from the market's spot at `at`.

    Raises StrikeResolutionError when an exact strike is off the day's grid or a chain is
    empty; the contracts module's own errors (no expiry, no lot size) propagate unchanged.
    Pass `legs` when they are already loaded (the engine loads them in bulk).
    """
    underlying = version.strategy.underlying
    return resolve_leg_specs(
        underlying=underlying,
        legs=list(version.legs.all()) if legs is None else legs,
        on=on,
        market=market,
        at=at,
    )


def resolve_leg_specs(
    *,
    underlying: Any,
    legs: Sequence[Any],
    on: datetime.date,
    market: Market,
    at: datetime.datetime | None = None,
) -> list[ResolvedLeg]:
    """resolve_legs for unsaved legs too (the wizard's review): anything with Leg's fields."""
    symbol = getattr(underlying, "symbol", underlying)
    step = Decimal(contracts.strike_step(underlying, on))
    spot = Decimal(market.spot(symbol, at=at))
    atm = atm_strike(spot, step)
    chains: dict[datetime.date, list[Any]] = {}
    lot_sizes: dict[datetime.date, int] = {}

    def chain_for(expiry: datetime.date) -> list[Any]:
        if expiry not in chains:
            chains[expiry] = list(
                market.chain(
                    symbol,
                    expiry,
                    strike_step=step,
                    strikes_each_side=CHAIN_STRIKES_EACH_SIDE,
                    at=at,
                )
            )
        return chains[expiry]

    resolved = []
    for index, leg in enumerate(legs, start=1):
        expiry = contracts.pick_expiry(underlying, on, leg.expiry_choice)
        if expiry not in lot_sizes:
            lot_sizes[expiry] = int(contracts.lot_size(underlying, expiry, on=on))
        option_type = leg.option_type
        row = None
        if leg.strike_mode == StrikeMode.ATM_OFFSET:
            strike = atm + (leg.strike_offset or 0) * step
        elif leg.strike_mode == StrikeMode.EXACT:
            strike = Decimal(leg.strike_price)
            if not is_on_grid(strike, step):
                raise StrikeResolutionError(
                    f"Leg {index}: strike {strike} is not on the {symbol} strike grid "
                    f"(multiples of {step:f})."
                )
        elif leg.strike_mode == StrikeMode.PREMIUM:
            row = pick_by_premium(chain_for(expiry), option_type, Decimal(leg.target_premium))
            strike = Decimal(row.strike)
        elif leg.strike_mode == StrikeMode.DELTA:
            row = pick_by_delta(chain_for(expiry), option_type, Decimal(leg.target_delta))
            strike = Decimal(row.strike)
        else:
            raise StrikeResolutionError(f"Leg {index}: unknown strike mode {leg.strike_mode!r}.")
        if strike <= 0:
            raise StrikeResolutionError(f"Leg {index}: ATM{leg.strike_offset:+d} is below zero.")
        if row is None:
            row = next((r for r in chain_for(expiry) if Decimal(r.strike) == strike), None)
        resolved.append(
            ResolvedLeg(
                leg_id=getattr(leg, "pk", None),
                position=getattr(leg, "position", None) or index,
                side=leg.side,
                option_type=option_type,
                expiry=expiry,
                strike=strike,
                lots=int(leg.lots),
                lot_size=lot_sizes[expiry],
                quantity_per_lot=lot_sizes[expiry],
                premium=None if row is None else row_price(row, option_type),
                iv=None if row is None else row_iv(row, option_type),
            )
        )
    return resolved


def lots_for(allocation: BrokerAllocation, leg_lots: int) -> int:
    """Lots one account trades for a leg of `leg_lots` lots.

    A multiplier rounds down (never trade more than asked); a result below one lot is refused
    rather than silently dropping a leg, which could leave a short leg without its hedge.
    """
    if allocation.sizing == AllocationSizing.FIXED:
        lots = int(allocation.fixed_lots or 0)
    else:
        multiplier = Decimal(allocation.multiplier or 0)
        lots = int((Decimal(leg_lots) * multiplier).to_integral_value(rounding=ROUND_DOWN))
    if lots < 1:
        raise ValueError(
            f"{allocation.sizing_description} turns a {leg_lots}-lot leg into less than one lot."
        )
    return lots


def quantity_for(allocation: BrokerAllocation, leg_lots: int, lot_size: int) -> int:
    """Units to order on one account for one leg: its lots x the contract's lot size."""
    if lot_size < 1:
        raise ValueError("The lot size must be at least 1.")
    return lots_for(allocation, leg_lots) * lot_size
