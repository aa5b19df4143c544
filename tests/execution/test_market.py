"""Pricing and the simulated market: pure Python, no database."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.market import SimulatedMarket, default_market, parse_kite_symbol, pricing
from execution.markettime import IST

option_types = st.sampled_from(["CE", "PE"])
inputs = st.fixed_dictionaries(
    {
        "forward": st.floats(5_000, 90_000),
        "moneyness": st.floats(0.8, 1.2),
        "t": st.floats(1 / 365, 1.0),
        "r": st.floats(0.0, 0.08),
        "sigma": st.floats(0.05, 0.6),
    }
)


def _args(values):
    return {
        "forward": values["forward"],
        "strike": values["forward"] * values["moneyness"],
        "t": values["t"],
        "r": values["r"],
        "sigma": values["sigma"],
    }


@settings(max_examples=200, deadline=None)
@given(values=inputs, option_type=option_types)
def test_black76_agrees_with_vollib(values, option_type):
    args = _args(values)
    ours = pricing.black76_price(**args, option_type=option_type)
    assert ours == pytest.approx(pricing.vollib_price(**args, option_type=option_type), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(values=inputs)
def test_put_call_parity(values):
    args = _args(values)
    call = pricing.black76_price(**args, option_type="CE")
    put = pricing.black76_price(**args, option_type="PE")
    discount = math.exp(-args["r"] * args["t"])
    assert call - put == pytest.approx(discount * (args["forward"] - args["strike"]), abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(values=inputs, option_type=option_types)
def test_implied_volatility_round_trips(values, option_type):
    args = _args(values)
    price = pricing.black76_price(**args, option_type=option_type)
    intrinsic = math.exp(-args["r"] * args["t"]) * pricing.intrinsic(
        underlying=args["forward"], strike=args["strike"], option_type=option_type
    )
    if price - intrinsic < 1e-4:  # no time value left to carry a volatility
        return
    sigma = pricing.implied_volatility(
        price=price,
        forward=args["forward"],
        strike=args["strike"],
        t=args["t"],
        r=args["r"],
        option_type=option_type,
    )
    assert sigma == pytest.approx(args["sigma"], rel=1e-6)


@pytest.mark.parametrize("option_type", ["CE", "PE"])
@pytest.mark.parametrize("moneyness", [0.95, 1.0, 1.05])
def test_vollib_greeks_match_finite_differences_of_our_price(option_type, moneyness):
    base = {"forward": 26000.0, "strike": 26000.0 * moneyness, "t": 7 / 365, "r": 0.0525}
    sigma = 0.12

    def price(**changes):
        return pricing.black76_price(**{**base, "sigma": sigma, **changes}, option_type=option_type)

    g = pricing.greeks(**base, sigma=sigma, option_type=option_type)
    h = 1.0
    delta = (price(forward=base["forward"] + h) - price(forward=base["forward"] - h)) / (2 * h)
    gamma = (
        price(forward=base["forward"] + h) - 2 * price() + price(forward=base["forward"] - h)
    ) / h**2
    vega = (price(sigma=sigma + 1e-4) - price(sigma=sigma - 1e-4)) / 2e-4 * 0.01
    assert g.delta == pytest.approx(delta, rel=1e-4)
    assert g.gamma == pytest.approx(gamma, rel=1e-3)
    assert g.vega == pytest.approx(vega, rel=1e-4)
    # Theta per calendar day: the price one day nearer expiry, with the same rate and vol.
    day = 1 / 365
    theta = (price(t=base["t"] - day / 100) - price(t=base["t"] + day / 100)) / (2 * day / 100)
    assert g.theta == pytest.approx(theta * day, rel=1e-3)


def test_implied_volatility_below_intrinsic_is_none():
    assert (
        pricing.implied_volatility(
            price=10, forward=26000, strike=25000, t=0.02, r=0.05, option_type="CE"
        )
        is None
    )


def test_round_to_tick():
    tick = Decimal("0.05")
    assert pricing.round_to_tick(93.57, tick) == Decimal("93.55")
    assert pricing.round_to_tick(93.58, tick) == Decimal("93.60")
    assert pricing.round_to_tick(93.51, tick, direction="up") == Decimal("93.55")
    assert pricing.round_to_tick(93.59, tick, direction="down") == Decimal("93.55")


def ist(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=IST)


def test_spot_path_is_reproducible_and_independent_of_query_order():
    moments = [ist(2026, 11, 2, 9, 15) + timedelta(minutes=37 * n) for n in range(60)]
    first = [SimulatedMarket(seed=11).spot("NIFTY", m) for m in moments]
    backwards = SimulatedMarket(seed=11)
    second = [backwards.spot("NIFTY", m) for m in reversed(moments)][::-1]
    assert first == second
    assert first != [SimulatedMarket(seed=12).spot("NIFTY", m) for m in moments]


def test_spot_is_flat_outside_the_session_and_on_weekends():
    market = SimulatedMarket()
    # F&O closes at 15:40 since 3-Aug-2026: the walk still moves between 15:30 and 15:40.
    close = market.spot("NIFTY", ist(2026, 11, 6, 15, 40))
    assert market.spot("NIFTY", ist(2026, 11, 6, 15, 30)) != close
    assert market.spot("NIFTY", ist(2026, 11, 6, 20, 0)) == close
    assert market.spot("NIFTY", ist(2026, 11, 7, 12, 0)) == close  # Saturday
    assert market.spot("NIFTY", ist(2026, 11, 9, 9, 0)) == close  # Monday before the open
    assert market.spot("NIFTY", ist(2026, 11, 9, 10, 0)) != close


def test_spot_starts_at_the_parameter_level_and_has_realistic_volatility():
    market = SimulatedMarket(seed=3)
    assert abs(market.spot("NIFTY", ist(2026, 11, 2, 9, 0)) / Decimal(26000) - 1) < Decimal(
        "0.0001"
    )
    # Minute returns over 60 weekdays annualise near the 12% parameter (80% of the variance
    # is intraday, the rest comes at the open).
    levels = []
    day = date(2026, 11, 2)
    minutes = market.hours.minutes(day)  # 385 (09:15-15:40) in these months
    while len(levels) < 60 * minutes:
        if day.weekday() < 5:
            start = datetime.combine(day, time(9, 15), tzinfo=IST)
            levels += [
                float(market.spot("NIFTY", start + timedelta(minutes=m)))
                for m in range(1, minutes + 1)
            ]
        day += timedelta(days=1)
    returns = np.diff(np.log(np.array(levels).reshape(60, minutes)), axis=1)
    annualised = returns.std() * math.sqrt(minutes * 252 / 0.8)
    assert 0.09 < annualised < 0.15


def test_spot_stops_at_1530_before_3_aug_2026():
    market = SimulatedMarket()
    close = market.spot("NIFTY", ist(2026, 7, 31, 15, 30))
    assert market.spot("NIFTY", ist(2026, 7, 31, 15, 35)) == close
    assert market.spot("NIFTY", ist(2026, 7, 31, 15, 29)) != close
    assert market.hours.minutes(date(2026, 7, 31)) == 375
    assert market.hours.minutes(date(2026, 8, 3)) == 385


def test_spot_before_the_anchor_is_continuous():
    market = SimulatedMarket()
    friday_close = market.spot("BANKNIFTY", ist(2026, 10, 30, 15, 40))
    assert market.spot("BANKNIFTY", ist(2026, 11, 2, 9, 0)) == friday_close
    assert market.spot("BANKNIFTY", ist(2025, 6, 2, 12, 0)) > 0


def test_option_quote_is_on_ticks_with_a_spread_and_vollib_iv():
    market = SimulatedMarket(clock=lambda: ist(2026, 11, 2, 10, 0))
    q = market.option_quote("NIFTY", date(2026, 11, 3), Decimal("26000"), "CE")
    assert q.at == ist(2026, 11, 2, 10, 0)
    assert q.bid < q.ltp < q.ask
    for price in (q.bid, q.ask, q.ltp):
        assert price % Decimal("0.05") == 0
    t = pricing.year_fraction(q.at, q.expiry, expiry_close=market.hours.on(q.expiry)[1])
    assert q.iv == pytest.approx(
        pricing.implied_volatility(
            price=float(q.ltp),
            forward=float(q.forward),
            strike=26000,
            t=t,
            r=market.rate,
            option_type="CE",
        ),
        rel=1e-3,
    )
    assert 0 < q.delta < 1 and q.gamma > 0 and q.theta < 0 and q.vega > 0


def test_expired_option_is_worth_intrinsic_value():
    market = SimulatedMarket()
    after = ist(2026, 11, 3, 16, 0)
    spot = market.spot("NIFTY", after)
    strike = (spot - 200).quantize(Decimal(1))
    q = market.option_quote("NIFTY", date(2026, 11, 3), strike, "CE", at=after)
    assert q.ltp == pricing.round_to_tick(spot - strike, Decimal("0.05"))
    assert q.delta == 1.0 and q.gamma == 0.0


def test_chain_is_centred_on_atm_with_a_smile():
    market = SimulatedMarket()
    at = ist(2026, 11, 4, 11, 0)
    rows = market.chain(
        "NIFTY", date(2026, 11, 17), strike_step=Decimal(50), strikes_each_side=10, at=at
    )
    assert len(rows) == 21
    spot = market.spot("NIFTY", at)
    atm = rows[10].strike
    assert abs(atm - spot) <= 25 and atm % 50 == 0
    assert [r.strike for r in rows] == [atm + 50 * n for n in range(-10, 11)]
    call_deltas = [r.ce.delta for r in rows]
    assert call_deltas == sorted(call_deltas, reverse=True)
    # Puts richer on the downside: the lowest strike's IV is above the ATM IV.
    assert rows[0].pe.iv > rows[10].pe.iv
    for row in rows:
        assert row.ce.delta - row.pe.delta == pytest.approx(
            math.exp(
                -market.rate
                * pricing.year_fraction(at, date(2026, 11, 17), expiry_close=time(15, 40))
            ),
            rel=1e-9,
        )


def test_naive_times_and_unknown_symbols_are_refused():
    market = SimulatedMarket()
    with pytest.raises(ValueError):
        market.spot("NIFTY", datetime(2026, 11, 2, 10, 0))
    with pytest.raises(KeyError):
        market.spot("NOSUCH", datetime(2026, 11, 2, 10, 0, tzinfo=UTC))


def test_default_market_is_one_per_process():
    assert default_market() is default_market()


def test_market_imports_without_django():
    code = (
        "import sys, execution.market, execution.market.pricing; "
        "sys.exit(1 if any(m.startswith('django') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize(
    ("symbol", "parts"),
    [
        ("NIFTY25D1625750CE", ("NIFTY", date(2025, 12, 16), 2025, 12, Decimal(25750), "CE")),
        ("BANKNIFTY2020630900CE", ("BANKNIFTY", date(2020, 2, 6), 2020, 2, Decimal(30900), "CE")),
        ("NIFTY25DEC25000PE", ("NIFTY", None, 2025, 12, Decimal(25000), "PE")),
        ("SENSEX25N1384000CE", ("SENSEX", date(2025, 11, 13), 2025, 11, Decimal(84000), "CE")),
        ("NIFTYNXT5026JAN70000CE", ("NIFTYNXT50", None, 2026, 1, Decimal(70000), "CE")),
        ("NIFTY25O0724800PE", ("NIFTY", date(2025, 10, 7), 2025, 10, Decimal(24800), "PE")),
    ],
)
def test_parse_kite_symbol(symbol, parts):
    assert tuple(parse_kite_symbol(symbol)) == parts


def test_parse_kite_symbol_monthly_needs_a_weekday_and_rejects_others():
    parsed = parse_kite_symbol("NIFTY26DEC26000CE")
    assert parsed.expiry is None  # a monthly symbol has no day
    assert parsed.approx_expiry(monthly_weekday=1) == date(2026, 12, 29)
    for bad in ("NIFTY25DECFUT", "NIFTY25D3225000CE", "RELIANCE", "NIFTY25XYZ25000CE"):
        with pytest.raises(ValueError):
            parse_kite_symbol(bad)


def test_before_mondays_open_the_after_hours_session_replays_fridays():
    from execution.market.simulated import after_hours_time

    monday_early = datetime(2026, 11, 23, 7, 0, tzinfo=IST)  # before the 09:15 open
    replayed = after_hours_time(monday_early, 60).astimezone(IST)
    assert replayed.date() == date(2026, 11, 20)  # the Friday, weekend stepped over
    assert time(9, 15) <= replayed.time() <= time(15, 40)


def test_a_chain_never_lists_a_strike_at_or_below_zero_and_refuses_bad_steps():
    market = SimulatedMarket(seed=3)
    at = datetime(2026, 11, 19, 10, 0, tzinfo=IST)
    # Steps of 5,000 around a spot near 24,000: the strikes below zero are left out.
    expiry = date(2026, 11, 24)
    chain = market.chain("NIFTY", expiry, strike_step=Decimal(5000), strikes_each_side=6, at=at)
    assert chain and all(row.strike > 0 for row in chain)
    assert len(chain) < 13
    quote = chain[0].ce
    assert quote.mid == (quote.bid + quote.ask) / 2 and quote.bid <= quote.mid <= quote.ask
    with pytest.raises(ValueError, match="strike_step must be positive"):
        market.chain("NIFTY", date(2026, 11, 24), strike_step=Decimal(0), at=at)
    with pytest.raises(ValueError, match="not negative"):
        market.chain(
            "NIFTY", date(2026, 11, 24), strike_step=Decimal(50), strikes_each_side=-1, at=at
        )
