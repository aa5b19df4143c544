"""An account's lots per leg (`AccountAllocation.lots`): the one sizing rule dispatch and the
margin estimates share."""

from __future__ import annotations

from decimal import Decimal

import pytest

from execution.planning.sources import AccountAllocation


def _allocation(*, multiplier: str | None = None, fixed_lots: int | None = None):
    return AccountAllocation(
        account_id=1,
        broker="kite",
        priority=1,
        multiplier=None if multiplier is None else Decimal(multiplier),
        fixed_lots=fixed_lots,
    )


@pytest.mark.parametrize(
    ("multiplier", "fixed_lots", "leg_lots", "run_multiplier", "expected"),
    [
        (None, None, 3, "1", 3),  # no sizing: the leg's own lots
        ("2", None, 3, "1", 6),
        ("1.5", None, 3, "1", 4),  # 4.5 rounds down
        ("0.5", None, 1, "1", 0),  # less than one lot: dispatch refuses the leg
        (None, 5, 3, "1", 5),  # fixed lots ignore the leg's lots
        (None, 5, 3, "0.5", 2),  # ...but not a deployment's multiplier (2.5 rounds down)
        ("2", None, 3, "1.5", 9),
    ],
)
def test_lots_per_leg(multiplier, fixed_lots, leg_lots, run_multiplier, expected):
    allocation = _allocation(multiplier=multiplier, fixed_lots=fixed_lots)
    assert allocation.lots(leg_lots, Decimal(run_multiplier)) == expected


def test_the_run_multiplier_defaults_to_one():
    assert _allocation(multiplier="3").lots(2) == 6


def test_sizing_survives_the_runs_snapshot():
    allocation = _allocation(multiplier="1.5")
    assert AccountAllocation.from_json(allocation.to_json()).lots(3) == allocation.lots(3) == 4
