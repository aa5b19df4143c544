"""Table-driven tests for Indian mobile numbers and the 36 states and union territories."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from trader.india import (
    STATES_AND_UTS,
    normalize_mobile,
    normalize_pan,
    normalize_pin,
    normalize_state,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9876543210", "+919876543210"),
        ("+91 98765-43210", "+919876543210"),
        ("+919876543210", "+919876543210"),
        ("09876543210", "+919876543210"),
        ("98765 43210", "+919876543210"),
        ("91-98765-43210", "+919876543210"),
        ("6000123456", "+916000123456"),
        ("7012345678", "+917012345678"),
        ("8123456789", "+918123456789"),
        # 612 is a Patna landline prefix, but 10 digits starting 6 is a mobile series.
        ("6123456789", "+916123456789"),
    ],
)
def test_mobile_numbers_accepted_and_stored_in_e164(raw, expected):
    assert normalize_mobile(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "5876543210",  # series 5 is not a mobile series
        "022 2345 6789",  # Mumbai landline
        "+91 22 23456789",  # Mumbai landline, international form
        "011-23456789",  # Delhi landline
        "1800 180 1234",  # toll-free
        "+91 1800 180 1234",
        "98765",  # too short
        "987654321012",  # too long
        "+1 415 555 2671",  # not Indian
        "98765abc10",
        "",
    ],
)
def test_landlines_tollfree_and_junk_rejected_with_explanation(raw):
    with pytest.raises(ValidationError) as excinfo:
        normalize_mobile(raw)
    assert "10-digit Indian mobile number starting with 6, 7, 8 or 9" in excinfo.value.messages[0]


EXPECTED_CODES = {
    "Andhra Pradesh": "AP",
    "Arunachal Pradesh": "AR",
    "Assam": "AS",
    "Bihar": "BR",
    "Chhattisgarh": "CG",
    "Goa": "GA",
    "Gujarat": "GJ",
    "Haryana": "HR",
    "Himachal Pradesh": "HP",
    "Jharkhand": "JH",
    "Karnataka": "KA",
    "Kerala": "KL",
    "Madhya Pradesh": "MP",
    "Maharashtra": "MH",
    "Manipur": "MN",
    "Meghalaya": "ML",
    "Mizoram": "MZ",
    "Nagaland": "NL",
    "Odisha": "OD",
    "Punjab": "PB",
    "Rajasthan": "RJ",
    "Sikkim": "SK",
    "Tamil Nadu": "TN",
    "Telangana": "TS",
    "Tripura": "TR",
    "Uttar Pradesh": "UP",
    "Uttarakhand": "UK",
    "West Bengal": "WB",
    "Andaman and Nicobar Islands": "AN",
    "Chandigarh": "CH",
    "Dadra and Nagar Haveli and Daman and Diu": "DH",
    "Delhi": "DL",
    "Jammu and Kashmir": "JK",
    "Ladakh": "LA",
    "Lakshadweep": "LD",
    "Puducherry": "PY",
}


def test_thirty_six_states_and_union_territories():
    assert len(STATES_AND_UTS) == 36
    assert sum(1 for *_, is_ut in STATES_AND_UTS if is_ut) == 8
    assert {name: code for code, name, _ in STATES_AND_UTS} == EXPECTED_CODES


@pytest.mark.parametrize(("name", "code"), sorted(EXPECTED_CODES.items()))
def test_each_state_by_name_code_and_iso_code(name, code):
    assert normalize_state(name) == code
    assert normalize_state(name.upper()) == code
    assert normalize_state(code) == code
    assert normalize_state(f"IN-{code}") == code
    assert normalize_state(code.lower()) == code


@pytest.mark.parametrize(
    ("spelling", "code"),
    [
        ("Odisha", "OD"),
        ("Orissa", "OD"),
        ("OR", "OD"),
        ("IN-OR", "OD"),
        ("Ladakh", "LA"),
        ("Chattisgarh", "CG"),
        ("CT", "CG"),
        ("Telangana", "TS"),
        ("TG", "TS"),
        ("UT", "UK"),
        ("UA", "UK"),
        ("Uttaranchal", "UK"),
        ("Pondicherry", "PY"),
        ("Andaman & Nicobar", "AN"),
        ("Daman and Diu", "DH"),
        ("DN", "DH"),
        ("DD", "DH"),
        ("NCT of Delhi", "DL"),
        ("New Delhi", "DL"),
        ("J&K", "JK"),
        ("Jammu & Kashmir", "JK"),
        ("  tamil   nadu ", "TN"),
    ],
)
def test_alternative_and_legacy_spellings(spelling, code):
    assert normalize_state(spelling) == code


@pytest.mark.parametrize("bad", ["", "Bombay Presidency", "XX", "IN-ZZ", "California"])
def test_unknown_state_rejected(bad):
    with pytest.raises(ValidationError, match="28 states or 8 union territories"):
        normalize_state(bad)


@pytest.mark.parametrize(
    ("raw", "ok"),
    [
        ("400001", True),
        ("110 001", True),
        ("012345", False),
        ("40001", False),
        ("4000011", False),
        ("40000A", False),
    ],
)
def test_pin_codes(raw, ok):
    if ok:
        assert normalize_pin(raw) == raw.replace(" ", "")
    else:
        with pytest.raises(ValidationError, match="6 digits"):
            normalize_pin(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("ABCDE1234F", "ABCDE1234F"), ("abcde1234f", "ABCDE1234F"), ("", "")],
)
def test_pan_accepted(raw, expected):
    assert normalize_pan(raw) == expected


@pytest.mark.parametrize("raw", ["ABCD1234F", "ABCDE12345", "1BCDE1234F", "ABCDE1234"])
def test_pan_rejected(raw):
    with pytest.raises(ValidationError, match="5 letters, 4 digits, then 1 letter"):
        normalize_pan(raw)


def test_money_is_grouped_in_lakhs_and_crores_with_a_real_minus():
    from trader.india import number_in, rupees

    assert rupees(1000000) == "₹10,00,000.00"
    assert rupees(Decimal("-5583.5")) == "\u2212₹5,583.50"
    assert rupees(Decimal("120000"), decimals=0) == "₹1,20,000"
    assert rupees(Decimal("12.5"), plus=True) == "+₹12.50"
    assert rupees(None) == ""
    assert number_in(123456789) == "12,34,56,789"


def test_templates_format_money_the_indian_way_without_loading_a_library():
    from django.template import engines

    template = engines["django"].from_string("{{ a|inr }} {{ b|inr_pnl }} {{ c|num_in }}")
    assert template.render({"a": 1000000, "b": -56.55, "c": 150000}) == (
        "₹10,00,000.00 \u2212₹56.55 1,50,000"
    )


def test_broken_database_rules_are_told_in_words():
    from django.db.models import CheckConstraint, Q

    named = CheckConstraint(condition=Q(lot_size__gt=0), name="lotsize_positive")
    assert named.get_violation_error_message() == (
        "The lot size must be a whole number above zero."
    )
    unnamed = CheckConstraint(condition=Q(x__gt=0), name="deployment_mult_gte_2")
    assert unnamed.get_violation_error_message() == (
        "Not allowed (Deployment: multiplier at least 2.)"
    )
    own = CheckConstraint(condition=Q(x__gt=0), name="x", violation_error_message="Mine.")
    assert own.get_violation_error_message() == "Mine."


@pytest.mark.django_db
def test_admin_validation_of_a_rule_shows_the_sentence_not_the_constraint_name():
    from tests.brokers.factories import PaperBookFactory

    book = PaperBookFactory()
    book.slippage_pct = Decimal("-1")
    with pytest.raises(ValidationError) as caught:
        book.full_clean()
    text = str(caught.value)
    assert "Slippage cannot be negative." in text and "paperaccount_" not in text


def test_a_figure_formats_the_same_every_time_it_is_asked_for_and_minus_zero_keeps_its_sign():
    # Formatted texts are kept per value: equal values must not share a text they would not
    # have had alone (-0 equals 0 in Python but Babel writes its sign).
    from trader.india import number_in, rupees

    assert rupees(Decimal("0")) == "₹0.00"
    assert rupees(Decimal("-0")) == "\u2212₹0.00"
    assert rupees(Decimal("0")) == "₹0.00"
    assert number_in(Decimal("1234567.0")) == "12,34,567" == number_in(1234567)
    assert rupees(Decimal("1234567.5"), decimals=0) == "₹12,34,568"
    assert rupees(Decimal("1234567.5")) == "₹12,34,567.50"
    assert rupees(Decimal("-5583.5")) == "\u2212₹5,583.50" == rupees(Decimal("-5583.50"))
