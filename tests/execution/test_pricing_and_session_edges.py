"""Edges of the option arithmetic and of the database-free session hours: bad inputs refused
in words, expiry behaving as the payoff, an implied volatility that does not exist, and session
rows that could not be a session."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from execution.market import pricing
from execution.market.sessions import SessionHours, reference_hours
from execution.markettime import IST


def test_an_option_type_other_than_ce_or_pe_is_refused():
    with pytest.raises(ValueError, match="CE or PE"):
        pricing.intrinsic(underlying=100, strike=90, option_type="FUT")


def test_time_to_expiry_needs_an_aware_moment_and_is_zero_once_expired():
    close = dt.time(15, 30)
    with pytest.raises(ValueError, match="aware"):
        pricing.year_fraction(
            dt.datetime(2026, 12, 3, 10, 0), dt.date(2026, 12, 8), expiry_close=close
        )
    after = dt.datetime(2026, 12, 8, 15, 31, tzinfo=IST)
    assert pricing.year_fraction(after, dt.date(2026, 12, 8), expiry_close=close) == 0.0
    day_before = dt.datetime(2026, 12, 7, 15, 30, tzinfo=IST)
    assert pricing.year_fraction(
        day_before, dt.date(2026, 12, 8), expiry_close=close
    ) == pytest.approx(1 / 365)


@pytest.mark.parametrize(
    ("forward", "option_type", "delta"),
    [(110.0, "CE", 1.0), (90.0, "CE", 0.0), (90.0, "PE", -1.0), (110.0, "PE", 0.0)],
)
def test_at_expiry_price_and_greeks_are_those_of_the_payoff(forward, option_type, delta):
    price = pricing.black76_price(
        forward=forward, strike=100.0, t=0.0, r=0.07, sigma=0.2, option_type=option_type
    )
    assert price == pricing.intrinsic(underlying=forward, strike=100.0, option_type=option_type)
    greeks = pricing.greeks(
        forward=forward, strike=100.0, t=0.0, r=0.07, sigma=0.2, option_type=option_type
    )
    assert (greeks.delta, greeks.gamma, greeks.theta, greeks.vega) == (delta, 0.0, 0.0, 0.0)


def test_a_put_price_matches_the_reference_implementation():
    ours = pricing.black76_price(
        forward=24000.0, strike=24200.0, t=7 / 365, r=0.065, sigma=0.14, option_type="PE"
    )
    reference = pricing.vollib_price(
        forward=24000.0, strike=24200.0, t=7 / 365, r=0.065, sigma=0.14, option_type="PE"
    )
    assert ours == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize(
    ("price", "t"),
    [(0.0, 0.1), (5.0, 0.0), (0.5, 0.1), (500.0, 0.1)],
    ids=["no-price", "expired", "below-intrinsic", "above-maximum"],
)
def test_an_implied_volatility_that_does_not_exist_is_none(price, t):
    # Forward 110 against strike 100: the call is worth at least 10 and at most ~110.
    assert (
        pricing.implied_volatility(
            price=price, forward=110.0, strike=100.0, t=t, r=0.0, option_type="CE"
        )
        is None
    )


def test_an_implied_volatility_reproduces_its_price():
    price = pricing.black76_price(
        forward=24000.0, strike=24000.0, t=0.05, r=0.06, sigma=0.18, option_type="CE"
    )
    sigma = pricing.implied_volatility(
        price=price, forward=24000.0, strike=24000.0, t=0.05, r=0.06, option_type="CE"
    )
    assert sigma == pytest.approx(0.18, rel=1e-6)


@pytest.mark.parametrize(
    ("direction", "expected"), [("nearest", "101.25"), ("down", "101.20"), ("up", "101.25")]
)
def test_prices_round_onto_the_tick_grid_in_the_direction_asked(direction, expected):
    assert pricing.round_to_tick(101.23, Decimal("0.05"), direction=direction) == Decimal(expected)


# --- session hours ------------------------------------------------------------------------------
def test_session_rows_that_could_not_be_a_session_are_refused():
    with pytest.raises(ValueError, match="at least one row"):
        SessionHours(())
    with pytest.raises(ValueError, match="effective_from order"):
        SessionHours(
            (
                (dt.date(2026, 8, 3), dt.time(9, 15), dt.time(15, 40)),
                (dt.date(2020, 1, 1), dt.time(9, 15), dt.time(15, 30)),
            )
        )
    with pytest.raises(ValueError, match="close after it opens"):
        SessionHours(((dt.date(2020, 1, 1), dt.time(15, 30), dt.time(9, 15)),))


def test_the_hours_in_force_follow_the_dated_rows():
    hours = SessionHours.from_rows(
        [
            (dt.date(2026, 8, 3), dt.time(9, 15), dt.time(15, 40)),
            (dt.date(2020, 1, 1), dt.time(9, 15), dt.time(15, 30)),
        ]
    )
    assert hours.minutes(dt.date(2026, 7, 31)) == 375
    assert hours.minutes(dt.date(2026, 8, 3)) == 385
    with pytest.raises(LookupError, match="No session hours"):
        hours.on(dt.date(2019, 12, 31))
    # The copy the emulators read agrees on the dated change.
    assert reference_hours().on(dt.date(2026, 8, 3))[1] == dt.time(15, 40)
