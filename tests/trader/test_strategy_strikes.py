"""Strike resolution: ATM ± N on the grid, premium/delta pick the closest strike, quantities."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.market import SimulatedMarket
from execution.markettime import IST
from execution.reference import contracts
from tests.trader.factories import LegFactory, StrategyVersionFactory
from trader.models import AllocationSizing, BrokerAllocation
from trader.strategies.specs import LegSpec
from trader.strategies.strikes import (
    StrikeResolutionError,
    atm_strike,
    is_on_grid,
    pick_by_delta,
    pick_by_premium,
    quantity_for,
    resolve_leg_specs,
    resolve_legs,
)

steps = st.sampled_from([D(50), D(100), D("2.5"), D(25)])
spots = st.decimals(min_value=D(1000), max_value=D(90000), places=2)


@given(spot=spots, step=steps, offset=st.integers(min_value=-30, max_value=30))
def test_atm_plus_offset_is_always_on_the_grid_and_nearest(spot, step, offset):
    atm = atm_strike(spot, step)
    assert is_on_grid(atm, step)
    assert abs(atm - spot) <= step / 2
    strike = atm + offset * step
    if strike > 0:
        assert is_on_grid(strike, step)


@dataclass
class Quote:
    ltp: D
    delta: float
    iv: float = 0.12


@dataclass
class Row:
    strike: D
    ce: Quote
    pe: Quote


rows_strategy = st.lists(
    st.tuples(
        st.decimals(min_value=D("0.05"), max_value=D(2000), places=2),
        st.floats(min_value=0.001, max_value=0.999),
    ),
    min_size=1,
    max_size=40,
)


@given(values=rows_strategy, target=st.decimals(min_value=D("0.05"), max_value=D(2000), places=2))
def test_premium_choice_picks_the_closest_premium_in_the_chain(values, target):
    rows = [
        Row(D(20000 + 50 * i), Quote(price, delta), Quote(price, -delta))
        for i, (price, delta) in enumerate(values)
    ]
    chosen = pick_by_premium(rows, "CE", target)
    best = min(abs(r.ce.ltp - target) for r in rows)
    assert abs(chosen.ce.ltp - target) == best
    # Ties go to the lower strike: reproducible on every run.
    assert chosen.strike == min(r.strike for r in rows if abs(r.ce.ltp - target) == best)


@given(values=rows_strategy, target=st.decimals(min_value=D("0.01"), max_value=D("0.99"), places=2))
def test_delta_choice_picks_the_closest_absolute_delta(values, target):
    rows = [
        Row(D(20000 + 50 * i), Quote(price, delta), Quote(price, -delta))
        for i, (price, delta) in enumerate(values)
    ]
    chosen = pick_by_delta(rows, "PE", target)
    best = min(abs(abs(D(str(r.pe.delta))) - target) for r in rows)
    assert abs(abs(D(str(chosen.pe.delta))) - target) == best


def _market():
    # A market frozen at a fixed moment so every run of the test sees the same chain.
    return SimulatedMarket()


AT = datetime.datetime(2026, 11, 20, 9, 20, tzinfo=IST)  # a Friday session


@pytest.mark.django_db
@settings(max_examples=15, deadline=None)
@given(offset=st.integers(min_value=-10, max_value=10))
def test_resolved_atm_legs_sit_on_the_day_grid(offset):
    on = AT.date()
    market = _market()
    step = contracts.strike_step("NIFTY", on)
    [leg] = resolve_leg_specs(
        underlying="NIFTY",
        legs=[LegSpec(side="SELL", option_type="CE", lots=2, strike_offset=offset)],
        on=on,
        market=market,
        at=AT,
    )
    assert leg.strike % step == 0
    assert leg.strike == atm_strike(market.spot("NIFTY", at=AT), step) + offset * step
    assert leg.expiry == contracts.pick_expiry("NIFTY", on, "current_week")
    assert leg.lot_size == contracts.lot_size("NIFTY", leg.expiry, on=on)
    assert leg.quantity == 2 * leg.lot_size


@pytest.mark.django_db
def test_premium_and_delta_legs_pick_the_closest_strike_of_the_real_chain():
    on, market = AT.date(), _market()
    step = contracts.strike_step("NIFTY", on)
    legs = [
        LegSpec(
            side="SELL",
            option_type="PE",
            lots=1,
            strike_mode="premium",
            strike_offset=None,
            target_premium=D(40),
        ),
        LegSpec(
            side="BUY",
            option_type="CE",
            lots=1,
            strike_mode="delta",
            strike_offset=None,
            target_delta=D("0.2"),
        ),
    ]
    by_premium, by_delta = resolve_leg_specs(
        underlying="NIFTY", legs=legs, on=on, market=market, at=AT
    )
    expiry = contracts.pick_expiry("NIFTY", on, "current_week")
    chain = market.chain("NIFTY", expiry, strike_step=step, strikes_each_side=20, at=AT)
    best_premium = min(abs(r.pe.ltp - 40) for r in chain)
    assert abs(by_premium.premium - 40) == best_premium
    best_delta = min(abs(abs(r.ce.delta) - 0.2) for r in chain)
    row = next(r for r in chain if r.strike == by_delta.strike)
    assert abs(abs(row.ce.delta) - 0.2) == pytest.approx(best_delta)


@pytest.mark.django_db
def test_exact_strike_off_the_grid_is_refused_at_resolution():
    version = StrategyVersionFactory()
    LegFactory(
        version=version,
        position=1,
        strike_mode="exact",
        strike_offset=None,
        strike_price=D("24025"),
    )
    with pytest.raises(StrikeResolutionError, match="not on the NIFTY strike grid"):
        resolve_legs(version, on=AT.date(), market=_market(), at=AT)


@pytest.mark.django_db
def test_resolve_legs_keeps_leg_ids_and_order():
    version = StrategyVersionFactory()
    first = LegFactory(version=version, position=1, side="BUY", strike_offset=-8)
    second = LegFactory(version=version, position=2, side="SELL", strike_offset=-4)
    resolved = resolve_legs(version, on=AT.date(), market=_market(), at=AT)
    assert [r.leg_id for r in resolved] == [first.pk, second.pk]
    assert resolved[0].strike < resolved[1].strike


@pytest.mark.parametrize(
    ("sizing", "multiplier", "fixed", "leg_lots", "lot_size", "expected"),
    [
        (AllocationSizing.MULTIPLIER, D(1), None, 2, 65, 130),
        (AllocationSizing.MULTIPLIER, D("1.5"), None, 3, 65, 4 * 65),  # 4.5 rounds down
        (AllocationSizing.MULTIPLIER, D(2), None, 1, 30, 60),
        (AllocationSizing.FIXED, None, 5, 1, 65, 325),
        (AllocationSizing.FIXED, None, 5, 3, 65, 325),
    ],
)
def test_quantity_is_lots_times_lot_size(sizing, multiplier, fixed, leg_lots, lot_size, expected):
    allocation = BrokerAllocation(sizing=sizing, multiplier=multiplier, fixed_lots=fixed)
    assert quantity_for(allocation, leg_lots, lot_size) == expected


def test_a_multiplier_that_drops_a_leg_below_one_lot_is_refused():
    allocation = BrokerAllocation(sizing=AllocationSizing.MULTIPLIER, multiplier=D("0.5"))
    with pytest.raises(ValueError, match="less than one lot"):
        quantity_for(allocation, 1, 65)
