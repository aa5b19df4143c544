"""Indian identity facts: states and union territories, mobile numbers, PIN codes, PAN.

States follow ISO 3166-2:IN as revised on 2023-11-23 (CG, OD, TS, UK) and 2020-11-24 (DH).
django-localflavor still carries the pre-2023 codes and misses spellings such as "Odisha" and
"Ladakh", so the table lives here and legacy codes are mapped on input
(shared/reference/india-market.md §5).
"""

from __future__ import annotations

import functools
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError

# (ISO code without the "IN-" prefix, name, is_union_territory)
STATES_AND_UTS: tuple[tuple[str, str, bool], ...] = (
    ("AP", "Andhra Pradesh", False),
    ("AR", "Arunachal Pradesh", False),
    ("AS", "Assam", False),
    ("BR", "Bihar", False),
    ("CG", "Chhattisgarh", False),
    ("GA", "Goa", False),
    ("GJ", "Gujarat", False),
    ("HR", "Haryana", False),
    ("HP", "Himachal Pradesh", False),
    ("JH", "Jharkhand", False),
    ("KA", "Karnataka", False),
    ("KL", "Kerala", False),
    ("MP", "Madhya Pradesh", False),
    ("MH", "Maharashtra", False),
    ("MN", "Manipur", False),
    ("ML", "Meghalaya", False),
    ("MZ", "Mizoram", False),
    ("NL", "Nagaland", False),
    ("OD", "Odisha", False),
    ("PB", "Punjab", False),
    ("RJ", "Rajasthan", False),
    ("SK", "Sikkim", False),
    ("TN", "Tamil Nadu", False),
    ("TS", "Telangana", False),
    ("TR", "Tripura", False),
    ("UP", "Uttar Pradesh", False),
    ("UK", "Uttarakhand", False),
    ("WB", "West Bengal", False),
    ("AN", "Andaman and Nicobar Islands", True),
    ("CH", "Chandigarh", True),
    ("DH", "Dadra and Nagar Haveli and Daman and Diu", True),
    ("DL", "Delhi", True),
    ("JK", "Jammu and Kashmir", True),
    ("LA", "Ladakh", True),
    ("LD", "Lakshadweep", True),
    ("PY", "Puducherry", True),
)

STATE_CHOICES: list[tuple[str, str]] = [(code, name) for code, name, _ in STATES_AND_UTS]
STATE_NAMES: dict[str, str] = dict(STATE_CHOICES)

# Legacy ISO codes, vehicle-registration codes and common spellings people type.
_STATE_ALIASES: dict[str, str] = {
    "CT": "CG",
    "OR": "OD",
    "TG": "TS",
    "UT": "UK",
    "UA": "UK",
    "DD": "DH",
    "DN": "DH",
    "orissa": "OD",
    "orisa": "OD",
    "odisa": "OD",
    "uttaranchal": "UK",
    "pondicherry": "PY",
    "andaman and nicobar": "AN",
    "andaman & nicobar islands": "AN",
    "andaman & nicobar": "AN",
    "daman and diu": "DH",
    "dadra and nagar haveli": "DH",
    "dadra & nagar haveli and daman & diu": "DH",
    "dnhdd": "DH",
    "nct of delhi": "DL",
    "new delhi": "DL",
    "delhi nct": "DL",
    "j&k": "JK",
    "jammu & kashmir": "JK",
    "j and k": "JK",
    "tamilnadu": "TN",
    "chattisgarh": "CG",
    "chhatisgarh": "CG",
    "telengana": "TS",
}


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().replace(".", "")).lower()


_LOOKUP: dict[str, str] = {}
for _code, _name, _ in STATES_AND_UTS:
    _LOOKUP[_key(_code)] = _code
    _LOOKUP[_key(f"IN-{_code}")] = _code
    _LOOKUP[_key(_name)] = _code
    _LOOKUP[_key(_name.replace(" and ", " & "))] = _code
for _alias, _code in _STATE_ALIASES.items():
    _LOOKUP[_key(_alias)] = _code
    _LOOKUP[_key(f"IN-{_alias}")] = _code


def normalize_state(value: str) -> str:
    """Return the current ISO 3166-2:IN code (without "IN-") for a code, legacy code or name."""
    code = _LOOKUP.get(_key(value or ""))
    if code is None:
        raise ValidationError(
            "Choose one of India's 28 states or 8 union territories (for example "
            '"Maharashtra" or "MH").',
            code="invalid_state",
        )
    return code


_MOBILE_DIGITS = re.compile(r"^[6-9]\d{9}$")
MOBILE_ERROR = (
    "Enter a 10-digit Indian mobile number starting with 6, 7, 8 or 9, with or without +91 "
    "or 0 (for example 98765 43210). Landlines and toll-free numbers are not accepted."
)


def normalize_mobile(value: str) -> str:
    """Return an Indian mobile number in E.164 (+91XXXXXXXXXX) or raise ValidationError.

    Landlines, toll-free and service numbers are refused: only the 10-digit mobile series
    starting 6-9 is accepted (shared/reference/india-market.md §6).
    """
    raw = (value or "").strip()
    if not raw or not re.fullmatch(r"[+\d\s().-]+", raw):
        raise ValidationError(MOBILE_ERROR, code="invalid")
    try:
        parsed = phonenumbers.parse(raw, "IN")
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(MOBILE_ERROR) from exc
    national = str(parsed.national_number)
    if parsed.country_code != 91 or not _MOBILE_DIGITS.match(national):
        raise ValidationError(
            MOBILE_ERROR,
            code="not_mobile",
        )
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(MOBILE_ERROR, code="invalid")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_PIN = re.compile(r"^[1-9]\d{5}$")
_PAN = re.compile(r"^[A-Z]{5}\d{4}[A-Z]$")


def normalize_pin(value: str) -> str:
    pin = re.sub(r"\s+", "", value or "")
    if not _PIN.match(pin):
        raise ValidationError(
            "A PIN code has 6 digits and does not start with 0 (for example 400001).",
            code="invalid_pin",
        )
    return pin


def normalize_pan(value: str) -> str:
    pan = re.sub(r"\s+", "", value or "").upper()
    if pan and not _PAN.match(pan):
        raise ValidationError(
            "A PAN has 10 characters: 5 letters, 4 digits, then 1 letter (for example ABCDE1234F).",
            code="invalid_pan",
        )
    return pan


# --- numbers and money as Indians read them ---------------------------------------------------
# Babel's en_IN locale groups in lakhs and crores (10,00,000). A negative amount carries a real
# minus sign (U+2212) before the rupee sign, never ₹-5,583.50.
MINUS = "\u2212"


def _signed(text: str) -> str:
    return MINUS + text[1:] if text.startswith("-") else text


@functools.cache
def _babel_pattern(pattern: str) -> tuple[Any, Any]:
    from babel import Locale
    from babel.numbers import parse_pattern

    return parse_pattern(pattern), Locale.parse("en_IN")


def _format(amount: Decimal, decimals: int, *, currency: str | None) -> str:
    # -0 equals 0 (and hashes alike) but Babel writes it with its sign: keyed apart.
    return _format_cached(amount, amount.is_signed(), decimals, currency)


# Polled pages format the same prices and quantities every few seconds, and Babel's pattern
# application is the costliest step of rendering them: the text of a figure is kept.
@functools.lru_cache(maxsize=8192)
def _format_cached(amount: Decimal, signed: bool, decimals: int, currency: str | None) -> str:
    # Parsed once per pattern; the value is rounded here (half-up, like a contract note), so
    # Babel's own per-call quantisation (a measurable cost on pages of figures) is skipped.
    pattern, locale = _babel_pattern(
        ("¤" if currency else "") + "#,##,##0" + ("." + "0" * decimals if decimals else "")
    )
    value = amount.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return _signed(
        pattern.apply(
            value, locale, currency=currency, currency_digits=False, decimal_quantization=False
        )
    )


def rupees(value: Any, *, decimals: int = 2, plus: bool = False) -> str:
    """₹10,00,000.00 for 1000000; minus sign, ₹5,583.50 for -5583.5; '' for None. With
    `plus`, a gain shows its sign too (+₹120.00), as P&L columns do."""
    if value is None or value == "":
        return ""
    amount = Decimal(str(value))
    text = _format(amount, decimals, currency="INR")
    if plus and amount > 0:
        text = "+" + text
    return text


def number_in(value: Any, *, decimals: int | None = None) -> str:
    """12,34,567 (or with `decimals` places) in Indian grouping; '' for None."""
    if value is None or value == "":
        return ""
    return _format(Decimal(str(value)), decimals or 0, currency=None)
