"""Black-76 option pricing on the forward, with Greeks and implied volatility from vollib.

Pure Python (no database, no settings). Conventions (india-market.md §7, [DERIVED]): European
options priced on the forward F = S·e^(rT) with no dividend term; T = calendar minutes to the close
of the expiry day (15:30 IST until 31-Jul-2026, 15:40 from 3-Aug-2026: the caller passes the close
in force on that date) / (365 * 1440), the India VIX convention; theta per calendar day and vega
per one volatility point, as vollib returns them. IVs will differ from NSE's and Sensibull's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from py_lets_be_rational.exceptions import AboveMaximumException, BelowIntrinsicException
from vollib.black import black as vollib_black
from vollib.black.greeks import analytical as vollib_greeks
from vollib.black.implied_volatility import implied_volatility as vollib_iv
from vollib.helpers.exceptions import PriceIsAboveMaximum, PriceIsBelowIntrinsic

from execution.markettime import IST

MINUTES_PER_YEAR = 365 * 1440


@dataclass(frozen=True)
class Greeks:
    delta: float
    gamma: float
    theta: float  # per calendar day
    vega: float  # per 1 volatility point (0.01)


def _flag(option_type: str) -> str:
    if option_type not in ("CE", "PE"):
        raise ValueError(f"option_type must be CE or PE, not {option_type!r}")
    return "c" if option_type == "CE" else "p"


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def year_fraction(now: datetime, expiry: date, *, expiry_close: time) -> float:
    """Years from `now` (aware) to `expiry_close` IST on the expiry day (index options settle
    on that day's close); 0 once expired."""
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    close = datetime.combine(expiry, expiry_close, tzinfo=IST)
    minutes = (close - now).total_seconds() / 60.0
    return max(0.0, minutes / MINUTES_PER_YEAR)


def forward_price(*, spot: float, t: float, r: float) -> float:
    return spot * math.exp(r * t)


def intrinsic(*, underlying: float, strike: float, option_type: str) -> float:
    if _flag(option_type) == "c":
        return max(0.0, underlying - strike)
    return max(0.0, strike - underlying)


def black76_price(
    *, forward: float, strike: float, t: float, r: float, sigma: float, option_type: str
) -> float:
    """Discounted Black-76 price: DF*(F*N(d1) - K*N(d2)) for a call, DF*(K*N(-d2) - F*N(-d1))."""
    flag = _flag(option_type)
    discount = math.exp(-r * t)
    if t <= 0 or sigma <= 0:
        return discount * intrinsic(underlying=forward, strike=strike, option_type=option_type)
    spread = sigma * math.sqrt(t)
    d1 = (math.log(forward / strike) + 0.5 * sigma * sigma * t) / spread
    d2 = d1 - spread
    if flag == "c":
        return discount * (forward * _norm_cdf(d1) - strike * _norm_cdf(d2))
    return discount * (strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1))


def vollib_price(
    *, forward: float, strike: float, t: float, r: float, sigma: float, option_type: str
) -> float:
    """vollib's Black price, the reference our own formula is tested against."""
    return float(vollib_black(_flag(option_type), forward, strike, t, r, sigma))


def greeks(
    *, forward: float, strike: float, t: float, r: float, sigma: float, option_type: str
) -> Greeks:
    """Analytical Black Greeks from vollib; at or after expiry, those of the payoff."""
    flag = _flag(option_type)
    if t <= 0 or sigma <= 0:
        in_the_money = (forward > strike) if flag == "c" else (forward < strike)
        sign = 1.0 if flag == "c" else -1.0
        return Greeks(delta=sign if in_the_money else 0.0, gamma=0.0, theta=0.0, vega=0.0)
    args = (flag, forward, strike, t, r, sigma)
    return Greeks(
        delta=float(vollib_greeks.delta(*args)),
        gamma=float(vollib_greeks.gamma(*args)),
        theta=float(vollib_greeks.theta(*args)),
        vega=float(vollib_greeks.vega(*args)),
    )


def implied_volatility(
    *, price: float, forward: float, strike: float, t: float, r: float, option_type: str
) -> float | None:
    """The Black volatility that reproduces `price` (vollib), or None when none does
    (at or below intrinsic value, above the maximum, or expired)."""
    if t <= 0 or price <= 0:
        return None
    try:
        sigma = float(vollib_iv(price, forward, strike, r, t, _flag(option_type)))
    except (
        PriceIsBelowIntrinsic,
        PriceIsAboveMaximum,
        BelowIntrinsicException,  # raised by the solver vollib delegates to
        AboveMaximumException,
    ):
        return None
    if not math.isfinite(sigma) or sigma <= 0:
        return None
    return sigma


def round_to_tick(value: float | Decimal, tick: Decimal, *, direction: str = "nearest") -> Decimal:
    """A price on the tick grid: `nearest` (half up), `down` (bids) or `up` (asks)."""
    rounding = {"nearest": ROUND_HALF_UP, "down": ROUND_FLOOR, "up": ROUND_CEILING}[direction]
    ticks = (Decimal(str(value)) / tick).quantize(Decimal(1), rounding=rounding)
    return (ticks * tick).quantize(tick)
