"""Payoff at expiry, max profit, max loss and breakevens for each template (table-driven)."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest

from trader.strategies.payoff import PayoffLeg, analyse, chart, pnl_at
from trader.strategies.templates_catalog import TEMPLATES_BY_KEY

Q = 75  # units per leg (1 lot of 75)
W1 = datetime.date(2026, 12, 1)
W2 = datetime.date(2026, 12, 8)


def leg(side, kind, strike, premium, expiry=W1, iv=None):
    return PayoffLeg(side, kind, D(strike), D(premium), Q, expiry, None if iv is None else D(iv))


# key: (legs, net premium, max profit (None = unlimited), max loss (None = unlimited), breakevens)
CASES = {
    "short_straddle": (
        [leg("SELL", "CE", 24000, 150), leg("SELL", "PE", 24000, 140)],
        D(290 * Q),
        D(290 * Q),
        None,
        [D("23710"), D("24290")],
    ),
    "short_strangle": (
        [leg("SELL", "CE", 24200, 60), leg("SELL", "PE", 23800, 50)],
        D(110 * Q),
        D(110 * Q),
        None,
        [D("23690"), D("24310")],
    ),
    "iron_condor": (
        [
            leg("BUY", "PE", 23600, 20),
            leg("SELL", "PE", 23800, 50),
            leg("SELL", "CE", 24200, 60),
            leg("BUY", "CE", 24400, 25),
        ],
        D(65 * Q),
        D(65 * Q),
        D((200 - 65) * Q),
        [D("23735"), D("24265")],
    ),
    "iron_butterfly": (
        [
            leg("BUY", "PE", 23700, 30),
            leg("SELL", "PE", 24000, 140),
            leg("SELL", "CE", 24000, 150),
            leg("BUY", "CE", 24300, 35),
        ],
        D(225 * Q),
        D(225 * Q),
        D((300 - 225) * Q),
        [D("23775"), D("24225")],
    ),
    "bull_call_spread": (
        [leg("BUY", "CE", 24000, 150), leg("SELL", "CE", 24200, 70)],
        D(-80 * Q),
        D(120 * Q),
        D(80 * Q),
        [D("24080")],
    ),
    "bear_put_spread": (
        [leg("BUY", "PE", 24000, 140), leg("SELL", "PE", 23800, 60)],
        D(-80 * Q),
        D(120 * Q),
        D(80 * Q),
        [D("23920")],
    ),
    "long_straddle": (
        [leg("BUY", "CE", 24000, 150), leg("BUY", "PE", 24000, 140)],
        D(-290 * Q),
        None,
        D(290 * Q),
        [D("23710"), D("24290")],
    ),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_template_payoff(key):
    legs, net, max_profit, max_loss, breakevens = CASES[key]
    # The legs of the table follow the template's shape (sides and types).
    template = TEMPLATES_BY_KEY[key]
    assert sorted((x.side, x.option_type) for x in legs) == sorted(
        (t.side, t.option_type) for t in template.legs
    )
    summary = analyse(legs, spot=D(24000))
    assert summary.net_premium == net
    assert summary.max_profit == max_profit
    assert summary.max_loss == max_loss
    assert summary.breakevens == breakevens
    for b in breakevens:
        assert pnl_at(legs, b) == 0


def test_calendar_spread_values_the_far_leg_at_the_near_expiry():
    legs = [
        leg("SELL", "CE", 24000, 120, W1, "0.12"),
        leg("BUY", "CE", 24000, 180, W2, "0.12"),
    ]
    summary = analyse(legs, spot=D(24000))
    assert summary.net_premium == D(-60 * Q)
    # Bounded both ways: equal calls bought and sold.
    assert summary.max_loss is not None and summary.max_profit is not None
    # Far from the strike both calls are worth their intrinsic value: the debit is lost.
    assert summary.max_loss == pytest.approx(D(60 * Q), abs=D(5))
    # At the strike the near call expires worthless and the far one keeps a week of time value
    # (Black-76: 0.4 x F x vol x sqrt(t) ~ 0.4 x 24000 x 0.12 x sqrt(7/365) ~ 159.5).
    assert summary.max_profit == pytest.approx(D((159.5 - 60) * Q), rel=D("0.02"))
    assert len(summary.breakevens) == 2
    low, high = summary.breakevens
    assert low < 24000 < high
    assert abs(pnl_at(legs, low)) < 1 and abs(pnl_at(legs, high)) < 1


def test_naked_short_call_has_unlimited_loss_and_short_put_does_not():
    short_call = analyse([leg("SELL", "CE", 24000, 100)], spot=D(24000))
    assert short_call.max_loss is None
    assert short_call.max_profit == D(100 * Q)
    short_put = analyse([leg("SELL", "PE", 24000, 100)], spot=D(24000))
    # Bounded: the index cannot fall below zero.
    assert short_put.max_loss == D((24000 - 100) * Q)


def test_chart_path_spans_the_strikes_and_marks_breakevens():
    legs, *_ = CASES["short_straddle"]
    summary = analyse(legs, spot=D(24000))
    drawn = chart(legs, spot=D(24000), breakevens=summary.breakevens)
    assert drawn.path.startswith("M")
    assert drawn.low < D(23710) and drawn.high > D(24290)
    assert len(drawn.breakeven_xs) == 2
    assert drawn.top_value == D(290 * Q)
