"""Revenue arithmetic: profit share only above the high-water mark, commission, payout."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from marketplace.revenue import MonthInput, month_charges

# Three months of a fee + 20 % share plan at a 10 % platform commission:
# gain, loss, partial recovery, then a recovery beyond the old mark.
# (pnl, fee, expected share base, share, commission, payout, cumulative, mark)
THREE_MONTHS = [
    (
        D("10000"),
        D("500"),
        D("10000"),
        D("2000.00"),
        D("250.00"),
        D("2250.00"),
        D("10000"),
        D("10000"),
    ),
    (D("-6000"), D("500"), D("0"), D("0.00"), D("50.00"), D("450.00"), D("4000"), D("10000")),
    (D("3000"), D("500"), D("0"), D("0.00"), D("50.00"), D("450.00"), D("7000"), D("10000")),
    (D("5000"), D("500"), D("2000"), D("400.00"), D("90.00"), D("810.00"), D("12000"), D("12000")),
]


def test_profit_share_is_charged_only_above_the_high_water_mark():
    cumulative, mark = D(0), D(0)
    for pnl, fee, base, share, commission, payout, cum_after, mark_after in THREE_MONTHS:
        charges = month_charges(
            MonthInput(
                fee=fee,
                profit_share_percent=D(20),
                commission_percent=D(10),
                pnl=pnl,
                cumulative_pnl_before=cumulative,
                high_water_mark_before=mark,
            )
        )
        assert charges.share_base == base
        assert charges.profit_share == share
        assert charges.commission == commission
        assert charges.creator_payout == payout
        assert charges.cumulative_pnl == cum_after
        assert charges.high_water_mark == mark_after
        assert charges.creator_payout + charges.commission == charges.total_charged
        cumulative, mark = charges.cumulative_pnl, charges.high_water_mark


@pytest.mark.parametrize(
    ("pnl", "share_percent", "expected_share"),
    [
        (D("-100"), D(20), D("0.00")),  # a losing first month owes nothing
        (D("0.05"), D(25), D("0.01")),  # rounded half up to the paisa
        (D("1000"), D(0), D("0.00")),  # fee-only plan
        (D("1000"), D(50), D("500.00")),  # the maximum share
    ],
)
def test_first_month_share(pnl, share_percent, expected_share):
    charges = month_charges(
        MonthInput(
            fee=D(0),
            profit_share_percent=share_percent,
            commission_percent=D(0),
            pnl=pnl,
            cumulative_pnl_before=D(0),
            high_water_mark_before=D(0),
        )
    )
    assert charges.profit_share == expected_share
    assert charges.creator_payout == expected_share


def test_mark_follows_profit_even_without_a_share():
    charges = month_charges(
        MonthInput(
            fee=D(100),
            profit_share_percent=D(0),
            commission_percent=D(0),
            pnl=D(800),
            cumulative_pnl_before=D(0),
            high_water_mark_before=D(0),
        )
    )
    assert charges.high_water_mark == D(800)


@pytest.mark.parametrize(
    ("fee", "share", "commission", "message"),
    [
        (D(-1), D(10), D(10), "fee cannot be negative"),
        (D(0), D("50.01"), D(10), "between 0 and 50"),
        (D(0), D(-1), D(10), "between 0 and 50"),
        (D(0), D(10), D(101), "commission"),
    ],
)
def test_refuses_terms_outside_the_rules(fee, share, commission, message):
    with pytest.raises(ValueError, match=message):
        month_charges(
            MonthInput(
                fee=fee,
                profit_share_percent=share,
                commission_percent=commission,
                pnl=D(1),
                cumulative_pnl_before=D(0),
                high_water_mark_before=D(0),
            )
        )
