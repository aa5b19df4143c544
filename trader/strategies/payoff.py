"""Payoff at expiry of a set of option legs: the curve, max profit, max loss, breakevens.

When all legs share one expiry the payoff is piecewise linear in the underlying's price, so the
extremes sit at a strike (or at 0, or run off to infinity) and breakevens are found exactly.
When legs expire on different dates (calendar spreads) the curve is taken at the nearest expiry,
valuing the later legs with Black-76 at their implied volatility, and searched numerically.
"""

from __future__ import annotations

import datetime
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

PAISE = Decimal("0.01")
DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class PayoffLeg:
    side: str  # "BUY" | "SELL"
    option_type: str  # "CE" | "PE"
    strike: Decimal
    premium: Decimal  # per unit, paid (BUY) or received (SELL)
    quantity: int  # units: lots x lot size
    expiry: datetime.date | None = None
    iv: Decimal | None = None  # annualised, as a fraction (0.14 = 14 %)

    @property
    def sign(self) -> int:
        return 1 if self.side == "BUY" else -1


@dataclass(frozen=True)
class PayoffSummary:
    net_premium: Decimal  # positive = credit received, negative = debit paid
    max_profit: Decimal | None  # None = unlimited
    max_loss: Decimal | None  # a positive amount; None = unlimited
    breakevens: list[Decimal]
    valuation_date: datetime.date | None


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black76(*, forward: float, strike: float, years: float, vol: float, call: bool) -> float:
    """Undiscounted Black-76 price; the intrinsic value when no time or volatility is left."""
    if years <= 0 or vol <= 0 or forward <= 0:
        return max(forward - strike, 0.0) if call else max(strike - forward, 0.0)
    spread = vol * math.sqrt(years)
    d1 = (math.log(forward / strike) + spread * spread / 2) / spread
    d2 = d1 - spread
    if call:
        return forward * _norm_cdf(d1) - strike * _norm_cdf(d2)
    return strike * _norm_cdf(-d2) - forward * _norm_cdf(-d1)


def net_premium(legs: Sequence[PayoffLeg]) -> Decimal:
    return sum((-leg.sign * leg.premium * leg.quantity for leg in legs), Decimal(0)).quantize(PAISE)


def _valuation_date(legs: Sequence[PayoffLeg]) -> datetime.date | None:
    expiries = [leg.expiry for leg in legs if leg.expiry is not None]
    return min(expiries) if expiries else None


def _is_linear(legs: Sequence[PayoffLeg]) -> bool:
    return len({leg.expiry for leg in legs}) <= 1


def pnl_at(legs: Sequence[PayoffLeg], price: Decimal | float) -> Decimal:
    """P&L in rupees if the underlying is at `price` on the nearest expiry."""
    valuation = _valuation_date(legs)
    total = Decimal(0)
    for leg in legs:
        if valuation is None or leg.expiry is None or leg.expiry <= valuation:
            if leg.option_type == "CE":
                value = max(Decimal(price) - leg.strike, Decimal(0))
            else:
                value = max(leg.strike - Decimal(price), Decimal(0))
        else:
            years = (leg.expiry - valuation).days / DAYS_PER_YEAR
            value = Decimal(
                black76(
                    forward=float(price),
                    strike=float(leg.strike),
                    years=years,
                    vol=float(leg.iv or 0),
                    call=leg.option_type == "CE",
                )
            )
        total += leg.sign * (value - leg.premium) * leg.quantity
    return total


def upside_slope(legs: Sequence[PayoffLeg]) -> int:
    """Rupees gained per point as the price runs to infinity: only calls keep moving."""
    return sum(leg.sign * leg.quantity for leg in legs if leg.option_type == "CE")


def _linear_breakevens(
    legs: Sequence[PayoffLeg], points: list[tuple[Decimal, Decimal]], slope: int
) -> list[Decimal]:
    found: list[Decimal] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if y0 == 0 and x0 > 0:
            found.append(x0)
        elif (y0 < 0 < y1) or (y1 < 0 < y0):
            found.append(x0 + (x1 - x0) * (-y0) / (y1 - y0))
    last_x, last_y = points[-1]
    if last_y == 0 and slope != 0:
        found.append(last_x)
    elif slope != 0 and (last_y < 0 < slope or slope < 0 < last_y):
        found.append(last_x - last_y / slope)
    return sorted({value.quantize(PAISE) for value in found})


def _numeric_breakevens(legs: Sequence[PayoffLeg], samples: list[float]) -> list[Decimal]:
    found = []
    values = [float(pnl_at(legs, x)) for x in samples]
    for x0, x1, y0, y1 in zip(samples, samples[1:], values, values[1:], strict=False):
        if y0 == 0:
            found.append(x0)
        elif y0 * y1 < 0:
            lo, hi, ylo = x0, x1, y0
            for _ in range(50):
                mid = (lo + hi) / 2
                ymid = float(pnl_at(legs, mid))
                if (ymid < 0) == (ylo < 0):
                    lo, ylo = mid, ymid
                else:
                    hi = mid
            found.append((lo + hi) / 2)
    return sorted({Decimal(str(round(x, 2))).quantize(PAISE) for x in found})


def analyse(legs: Sequence[PayoffLeg], *, spot: Decimal) -> PayoffSummary:
    """Net premium, max profit, max loss (None = unlimited) and breakevens of `legs`."""
    if not legs:
        raise ValueError("A payoff needs at least one leg.")
    slope = upside_slope(legs)
    strikes = sorted({leg.strike for leg in legs})
    if _is_linear(legs):
        xs = [Decimal(0), *strikes]
        points = [(x, pnl_at(legs, x)) for x in xs]
        values = [y for _, y in points]
        breakevens = _linear_breakevens(legs, points, slope)
    else:
        # Sample densely around the strikes and spot, and far out to see the tails settle.
        hi = float(max(max(strikes), spot)) * 3
        samples = sorted(
            {0.0, hi, *(float(k) for k in strikes)} | {hi * i / 3000 for i in range(1, 3000)}
        )
        values = [pnl_at(legs, x) for x in samples]
        breakevens = _numeric_breakevens(legs, samples)
    best, worst = max(values), min(values)
    max_profit = None if slope > 0 else best.quantize(PAISE)
    max_loss = None if slope < 0 else max(-worst, Decimal(0)).quantize(PAISE)
    return PayoffSummary(
        net_premium=net_premium(legs),
        max_profit=max_profit,
        max_loss=max_loss,
        breakevens=breakevens,
        valuation_date=_valuation_date(legs),
    )


@dataclass(frozen=True)
class PayoffChart:
    """Coordinates for an inline SVG drawn by the template (no JavaScript needed)."""

    width: int
    height: int
    path: str
    zero_y: float
    spot_x: float
    low: Decimal
    high: Decimal
    top_value: Decimal
    bottom_value: Decimal
    breakeven_xs: list[float]


def chart(
    legs: Sequence[PayoffLeg],
    *,
    spot: Decimal,
    breakevens: Sequence[Decimal] = (),
    width: int = 640,
    height: int = 240,
    samples: int = 160,
) -> PayoffChart:
    marks = [leg.strike for leg in legs] + list(breakevens) + [spot]
    low = (min(marks) * Decimal("0.97")).quantize(Decimal(1))
    high = (max(marks) * Decimal("1.03")).quantize(Decimal(1))
    xs = sorted({low + (high - low) * i / samples for i in range(samples + 1)} | set(marks))
    xs = [x for x in xs if low <= x <= high]
    ys = [pnl_at(legs, x) for x in xs]
    top, bottom = max(max(ys), Decimal(0)), min(min(ys), Decimal(0))
    span_y = (top - bottom) or Decimal(1)
    pad = 8

    def px(x: Decimal) -> float:
        return round(float((x - low) / (high - low)) * (width - 2 * pad) + pad, 1)

    def py(y: Decimal) -> float:
        return round(float((top - y) / span_y) * (height - 2 * pad) + pad, 1)

    path = " ".join(
        f"{'M' if i == 0 else 'L'}{px(x)},{py(y)}"
        for i, (x, y) in enumerate(zip(xs, ys, strict=True))
    )
    return PayoffChart(
        width=width,
        height=height,
        path=path,
        zero_y=py(Decimal(0)),
        spot_x=px(spot),
        low=low,
        high=high,
        top_value=top.quantize(PAISE),
        bottom_value=bottom.quantize(PAISE),
        breakeven_xs=[px(b) for b in breakevens if low <= b <= high],
    )
