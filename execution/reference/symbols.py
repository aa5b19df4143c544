"""Trading-symbol formats of the brokers, in pure Python (no Django, no database).

Formats (shared/reference/broker-apis.md, india-market.md §1.6):
- Kite weekly ``<UND><YY><M><DD><STRIKE><CE|PE>`` with M = 1-9, O, N, D (``NIFTY25D1625750CE``);
  monthly ``<UND><YY><MON><STRIKE><CE|PE>`` (``NIFTY25DEC25000CE``). The weekly that is also the
  month's last expiry uses the monthly form, so the caller says which form applies.
- Fyers: the Kite form behind the exchange prefix (``NSE:NIFTY25D1625750CE``, ``BSE:SENSEX…``).
- Angel One: ``<UND><DD><MON><YY><STRIKE><CE|PE>`` for every expiry (``NIFTY26JUN2524000CE``).
- Upstox: ``NIFTY 25000 CE 27 OCT 26``; orders use the instrument key ``NSE_FO|<token>``.
- Dhan: ``NIFTY-Jun2025-24000-CE`` for monthlies; Dhan's weekly form is not documented, so
  weeklies carry the day (``NIFTY-02Sep2025-24800-CE``, our format). Orders use the security id.
"""

from __future__ import annotations

import calendar as _calendar
import re
from datetime import date
from decimal import Decimal
from typing import NamedTuple

KITE_MONTH_CODES = "123456789OND"
MONTH_ABBR = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
OPTION_TYPES = ("CE", "PE")


def strike_text(strike: Decimal | int | str) -> str:
    """A strike as brokers print it: no exponent, no trailing zeros (25000, 24012.5)."""
    value = Decimal(str(strike))
    if value <= 0:
        raise ValueError(f"strike must be positive, not {strike}")
    text = format(value.normalize(), "f")
    return text


def _check_option_type(option_type: str) -> str:
    if option_type not in OPTION_TYPES:
        raise ValueError(f"option_type must be CE or PE, not {option_type!r}")
    return option_type


def last_weekday_of_month(year: int, month: int, weekday: int) -> date:
    """The last given weekday (0 = Monday) of a month, before any holiday shift."""
    last_day = _calendar.monthrange(year, month)[1]
    day = date(year, month, last_day)
    return day.replace(day=last_day - (day.weekday() - weekday) % 7)


def kite_tradingsymbol(
    symbol: str, expiry: date, strike: Decimal | int | str, option_type: str, *, monthly: bool
) -> str:
    _check_option_type(option_type)
    yy = f"{expiry.year % 100:02d}"
    if monthly:
        return f"{symbol}{yy}{MONTH_ABBR[expiry.month - 1]}{strike_text(strike)}{option_type}"
    code = KITE_MONTH_CODES[expiry.month - 1]
    return f"{symbol}{yy}{code}{expiry.day:02d}{strike_text(strike)}{option_type}"


def fyers_tradingsymbol(
    symbol: str,
    exchange: str,
    expiry: date,
    strike: Decimal | int | str,
    option_type: str,
    *,
    monthly: bool,
) -> str:
    kite = kite_tradingsymbol(symbol, expiry, strike, option_type, monthly=monthly)
    return f"{exchange}:{kite}"


def angelone_tradingsymbol(
    symbol: str, expiry: date, strike: Decimal | int | str, option_type: str
) -> str:
    _check_option_type(option_type)
    month = MONTH_ABBR[expiry.month - 1]
    return (
        f"{symbol}{expiry.day:02d}{month}{expiry.year % 100:02d}{strike_text(strike)}{option_type}"
    )


def upstox_tradingsymbol(
    symbol: str, expiry: date, strike: Decimal | int | str, option_type: str
) -> str:
    _check_option_type(option_type)
    month = MONTH_ABBR[expiry.month - 1]
    when = f"{expiry.day:02d} {month} {expiry.year % 100:02d}"
    return f"{symbol} {strike_text(strike)} {option_type} {when}"


def dhan_tradingsymbol(
    symbol: str, expiry: date, strike: Decimal | int | str, option_type: str, *, monthly: bool
) -> str:
    _check_option_type(option_type)
    month = MONTH_ABBR[expiry.month - 1].title()
    when = f"{month}{expiry.year}" if monthly else f"{expiry.day:02d}{month}{expiry.year}"
    return f"{symbol}-{when}-{strike_text(strike)}-{option_type}"


class ParsedKiteSymbol(NamedTuple):
    """A Kite option symbol taken apart.

    `expiry` is the exact date for a weekly symbol and None for a monthly one, whose symbol has
    no day: use `year` and `month` (and `approx_expiry`) then.
    """

    underlying: str
    expiry: date | None
    year: int
    month: int
    strike: Decimal
    option_type: str

    def approx_expiry(self, monthly_weekday: int) -> date:
        """The exact weekly date, or the month's last `monthly_weekday` for a monthly symbol.

        Without the holiday calendar a monthly date due on a holiday is not moved to the
        previous session; callers with database access should use execution.reference.contracts.
        """
        if self.expiry is not None:
            return self.expiry
        return last_weekday_of_month(self.year, self.month, monthly_weekday)


# Non-greedy underlying so that names ending in digits (NIFTYNXT50) still split correctly.
_WEEKLY = re.compile(r"^([A-Z][A-Z0-9&-]*?)(\d{2})([1-9OND])(\d{2})(\d+(?:\.\d+)?)(CE|PE)$")
_MONTHLY = re.compile(r"^([A-Z][A-Z0-9&-]*?)(\d{2})([A-Z]{3})(\d+(?:\.\d+)?)(CE|PE)$")


def parse_kite_symbol(tradingsymbol: str) -> ParsedKiteSymbol:
    """Split a Kite option trading symbol; raises ValueError for anything else (futures too)."""
    text = tradingsymbol.strip().upper()
    monthly = _MONTHLY.match(text)
    if monthly and monthly.group(3) in MONTH_ABBR:
        und, yy, mon, strike, option_type = monthly.groups()
        return ParsedKiteSymbol(
            underlying=und,
            expiry=None,
            year=2000 + int(yy),
            month=MONTH_ABBR.index(mon) + 1,
            strike=Decimal(strike),
            option_type=option_type,
        )
    weekly = _WEEKLY.match(text)
    if weekly:
        und, yy, code, dd, strike, option_type = weekly.groups()
        year, month = 2000 + int(yy), KITE_MONTH_CODES.index(code) + 1
        try:
            expiry = date(year, month, int(dd))
        except ValueError as exc:
            raise ValueError(f"{tradingsymbol!r} has an impossible expiry date") from exc
        return ParsedKiteSymbol(und, expiry, year, month, Decimal(strike), option_type)
    raise ValueError(f"{tradingsymbol!r} is not a Kite option trading symbol")
