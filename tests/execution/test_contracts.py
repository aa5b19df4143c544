"""Contracts, table-driven from shared/reference/india-market.md."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from execution.models import Underlying
from execution.reference import contracts
from execution.reference.calendar import ReferenceDataMissingError
from execution.reference.contracts import NoSuchExpiryError

pytestmark = pytest.mark.django_db
D = date.fromisoformat


@pytest.mark.parametrize(
    ("underlying", "expiry", "on", "lot"),
    [
        # Nov-2024 revision: NIFTY by expiry (§1.1), the Jan-2025 monthly kept 25.
        ("NIFTY", "2024-12-26", None, 25),
        ("NIFTY", "2025-01-02", None, 75),
        ("NIFTY", "2025-01-23", None, 75),
        ("NIFTY", "2025-01-30", None, 25),
        ("NIFTY", "2025-02-06", None, 75),
        # Quarterly listed before 20-Nov-2024: 25 until EOD 26-Dec-2024, then 75.
        ("NIFTY", "2025-03-27", "2024-12-26", 25),
        ("NIFTY", "2025-03-27", "2024-12-27", 75),
        # Oct-2025 revision: last old monthly 30-Dec-2025, first new weekly 6-Jan-2026.
        ("NIFTY", "2025-12-23", None, 75),
        ("NIFTY", "2025-12-30", None, 75),
        ("NIFTY", "2026-01-06", "2025-12-10", 65),
        ("NIFTY", "2026-01-27", None, 65),
        # March-2026 quarterly: 75 until EOD 30-Dec-2025, 65 after.
        ("NIFTY", "2026-03-30", "2025-12-30", 75),
        ("NIFTY", "2026-03-30", "2025-12-31", 65),
        ("BANKNIFTY", "2024-12-24", None, 15),
        ("BANKNIFTY", "2025-01-30", None, 15),
        ("BANKNIFTY", "2025-02-27", None, 30),
        # Apr-2025 revision: Apr-Jun monthlies kept 30, first new monthly 31-Jul-2025.
        ("BANKNIFTY", "2025-06-26", "2025-05-01", 30),
        ("BANKNIFTY", "2025-07-31", None, 35),
        ("BANKNIFTY", "2025-12-30", None, 35),
        ("BANKNIFTY", "2026-01-27", None, 30),
        ("FINNIFTY", "2025-02-27", None, 65),
        ("FINNIFTY", "2025-12-30", None, 65),
        ("FINNIFTY", "2026-01-27", None, 60),
        ("MIDCPNIFTY", "2025-06-26", None, 120),
        ("MIDCPNIFTY", "2025-07-31", None, 140),
        ("MIDCPNIFTY", "2026-01-27", None, 120),
        ("SENSEX", "2024-12-27", None, 10),
        ("SENSEX", "2025-01-07", None, 20),
        ("SENSEX", "2026-01-08", None, 20),
    ],
)
def test_lot_size_belongs_to_the_contract(underlying, expiry, on, lot):
    assert contracts.lot_size(underlying, D(expiry), on=D(on) if on else None) == lot


@pytest.mark.parametrize(
    ("underlying", "on", "quantity"),
    [
        ("NIFTY", "2025-03-03", 1800),
        ("NIFTY", "2026-11-20", 1800),
        ("BANKNIFTY", "2025-03-03", 900),
        ("BANKNIFTY", "2025-06-30", 900),
        ("BANKNIFTY", "2025-07-01", 600),
        ("BANKNIFTY", "2025-09-01", 900),
        ("BANKNIFTY", "2025-11-03", 600),
        ("BANKNIFTY", "2026-02-01", 600),
        ("MIDCPNIFTY", "2025-06-30", 4200),
        ("MIDCPNIFTY", "2025-07-01", 2800),
        ("FINNIFTY", "2026-02-01", 1800),
    ],
)
def test_freeze_quantity_by_date(underlying, on, quantity):
    assert contracts.freeze_quantity(underlying, D(on)) == quantity


def test_freeze_quantity_before_any_row_is_an_error():
    with pytest.raises(ReferenceDataMissingError):
        contracts.freeze_quantity("NIFTY", D("2025-03-02"))


def test_strike_steps_and_underlying_instances():
    nifty = Underlying.objects.get(symbol="NIFTY")
    assert contracts.strike_step(nifty, D("2026-11-20")) == Decimal("50")
    assert contracts.strike_step("BANKNIFTY", D("2026-11-20")) == Decimal("100")
    assert contracts.strike_step("SENSEX", D("2026-11-20")) == Decimal("100")
    with pytest.raises(ReferenceDataMissingError):
        contracts.strike_step("NOSUCH", D("2026-11-20"))


@pytest.mark.parametrize(
    ("underlying", "on", "expected"),
    [
        # NIFTY: Thursday weeklies up to the last Thursday monthly 28-Aug, Tuesday from 2-Sep.
        (
            "NIFTY",
            "2025-08-25",
            ["2025-08-28", "2025-09-02", "2025-09-09", "2025-09-16", "2025-09-30", "2025-10-28"],
        ),
        # SENSEX: Tuesday weeklies and monthly in August, Thursday from 4-Sep.
        (
            "SENSEX",
            "2025-08-25",
            ["2025-08-26", "2025-09-04", "2025-09-11", "2025-09-18", "2025-09-25", "2025-10-30"],
        ),
        # BANKNIFTY: monthlies only.
        ("BANKNIFTY", "2025-08-25", ["2025-08-28", "2025-09-30", "2025-10-28"]),
        # The NIFTY weekly due on 2-Oct-2025 (a holiday) does not exist: Tuesdays by then.
        (
            "NIFTY",
            "2025-09-29",
            ["2025-09-30", "2025-10-07", "2025-10-14", "2025-10-20", "2025-10-28", "2025-11-25"],
        ),
    ],
)
def test_expiries_across_the_september_2025_weekday_change(underlying, on, expected):
    assert contracts.expiries(underlying, D(on)) == [D(day) for day in expected]


@pytest.mark.parametrize(
    ("underlying", "on", "expiry"),
    [
        ("NIFTY", "2026-02-26", "2026-03-02"),  # Holi on Tue 3-Mar
        ("NIFTY", "2026-03-25", "2026-03-30"),  # March monthly, Mahavir Jayanti Tue 31-Mar
        ("NIFTY", "2026-04-08", "2026-04-13"),  # Ambedkar Jayanti Tue 14-Apr
        ("NIFTY", "2026-10-14", "2026-10-19"),  # Dussehra Tue 20-Oct
        ("NIFTY", "2026-11-04", "2026-11-09"),  # Diwali Balipratipada Tue 10-Nov
        ("NIFTY", "2026-11-18", "2026-11-23"),  # Guru Nanak Jayanti Tue 24-Nov
        ("NIFTY", "2025-10-15", "2025-10-20"),  # Muhurat Tue 21-Oct-2025: no expiry there
        ("SENSEX", "2026-01-12", "2026-01-14"),  # ad-hoc holiday Thu 15-Jan
        ("SENSEX", "2026-03-23", "2026-03-25"),  # Ram Navami Thu 26-Mar
        ("SENSEX", "2026-05-25", "2026-05-27"),  # Bakri Id Thu 28-May
    ],
)
def test_expiries_moved_by_holidays(underlying, on, expiry):
    assert contracts.pick_expiry(underlying, D(on), "current_week") == D(expiry)
    assert D(expiry) in contracts.expiries(underlying, D(on))


def test_pick_expiry_choices():
    on = D("2026-11-20")
    assert contracts.pick_expiry("NIFTY", on, "current_week") == D("2026-11-23")
    assert contracts.pick_expiry("NIFTY", on, "next_week") == D("2026-12-01")
    assert contracts.pick_expiry("NIFTY", on, "current_month") == D("2026-11-23")
    assert contracts.pick_expiry("NIFTY", on, "next_month") == D("2026-12-29")
    # On the expiry day itself that contract is still the current one.
    assert contracts.pick_expiry("NIFTY", D("2026-11-23"), "current_week") == D("2026-11-23")
    assert contracts.pick_expiry("BANKNIFTY", on, "current_month") == D("2026-11-23")
    with pytest.raises(NoSuchExpiryError):
        contracts.pick_expiry("BANKNIFTY", on, "current_week")
    with pytest.raises(ValueError):
        contracts.pick_expiry("NIFTY", on, "this_week")


@pytest.mark.parametrize(
    ("underlying", "expiry", "strike", "option_type", "symbol"),
    [
        ("NIFTY", "2025-12-16", 25750, "CE", "NIFTY25D1625750CE"),  # the reference's example
        ("NIFTY", "2025-12-30", 25000, "CE", "NIFTY25DEC25000CE"),
        ("BANKNIFTY", "2025-12-30", 59400, "CE", "BANKNIFTY25DEC59400CE"),
        ("NIFTY", "2025-10-07", 24800, "PE", "NIFTY25O0724800PE"),
        ("NIFTY", "2025-10-20", 25000, "CE", "NIFTY25O2025000CE"),
        ("NIFTY", "2025-10-28", 25000, "PE", "NIFTY25OCT25000PE"),
        ("NIFTY", "2025-11-11", 25500, "CE", "NIFTY25N1125500CE"),
        ("NIFTY", "2025-11-25", 26000, "PE", "NIFTY25NOV26000PE"),
        ("SENSEX", "2025-11-13", 84000, "CE", "SENSEX25N1384000CE"),
        ("SENSEX", "2025-11-27", 85000, "PE", "SENSEX25NOV85000PE"),
        ("NIFTY", "2026-11-09", 26000, "CE", "NIFTY26N0926000CE"),
        ("NIFTY", "2026-11-23", 26000, "CE", "NIFTY26NOV26000CE"),  # monthly moved to Monday
        ("NIFTY", "2026-12-08", 26150, "PE", "NIFTY26D0826150PE"),
        ("NIFTY", "2026-12-29", 26150, "PE", "NIFTY26DEC26150PE"),
        ("NIFTY", "2026-03-02", 24000, "CE", "NIFTY2630224000CE"),
    ],
)
def test_kite_symbols(underlying, expiry, strike, option_type, symbol):
    assert contracts.kite_symbol(underlying, D(expiry), strike, option_type) == symbol


def test_kite_symbol_refuses_a_day_that_is_not_an_expiry():
    with pytest.raises(NoSuchExpiryError):
        contracts.kite_symbol("NIFTY", D("2026-11-24"), 26000, "CE")  # the holiday itself
    with pytest.raises(ValueError):
        contracts.kite_symbol("NIFTY", D("2026-11-23"), 26000, "XX")


@pytest.mark.parametrize(
    ("start", "end", "overlaps"),
    [
        (D("2026-06-01"), None, True),  # open-ended, over the rule in force
        (D("2026-06-01"), D("2026-06-30"), True),
        (D("1990-01-01"), D("1990-12-31"), False),  # long before any listed expiry
    ],
)
def test_two_expiry_rules_of_one_kind_may_not_cover_the_same_day(start, end, overlaps):
    """Which day a contract expires on comes from one rule per underlying and kind: an admin
    adding a rule that overlaps the one in force is refused, before anything is saved."""
    from django.core.exceptions import ValidationError

    from execution.models import ExpiryRule, Underlying

    nifty = Underlying.objects.get(symbol="NIFTY")
    kind = ExpiryRule.objects.filter(underlying=nifty).values_list("kind", flat=True).first()
    rule = ExpiryRule(
        underlying=nifty, kind=kind, weekday=1, effective_from=start, effective_to=end,
        listed_count=1,
    )  # fmt: skip
    if overlaps:
        with pytest.raises(ValidationError, match="covers part of these dates"):
            rule.clean()
    else:
        rule.clean()
    assert not ExpiryRule.objects.filter(effective_from=start).exists()


def test_the_expiry_choices_offered_are_the_ones_the_underlying_lists():
    # NIFTY lists weeklies and monthlies; BANKNIFTY only monthlies (weeklies ended Nov 2024).
    on = D("2026-12-03")
    assert contracts.expiry_kinds("NIFTY", on) == {
        "current_week",
        "next_week",
        "current_month",
        "next_month",
    }
    assert contracts.expiry_kinds("BANKNIFTY", on) == {"current_month", "next_month"}


def test_missing_reference_rows_are_refused_in_words_never_guessed():
    long_before = D("1999-01-04")
    with pytest.raises(ReferenceDataMissingError, match="No strike step for NIFTY"):
        contracts.strike_step("NIFTY", long_before)
    with pytest.raises(ReferenceDataMissingError, match="No freeze quantity for NIFTY"):
        contracts.freeze_quantity("NIFTY", long_before)
