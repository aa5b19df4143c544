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
from dataclasses import field as dataclass_field
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


def years_left(leg: PayoffLeg, now: datetime.datetime) -> float:
    """Years from `now` to the close of the leg's expiry day (dated session hours)."""
    if leg.expiry is None:
        return 0.0
    from execution.market.sessions import reference_hours
    from execution.markettime import IST

    close = datetime.datetime.combine(leg.expiry, reference_hours().on(leg.expiry)[1], tzinfo=IST)
    return max(0.0, (close - now).total_seconds() / (DAYS_PER_YEAR * 86400))


def pnl_today(
    legs: Sequence[PayoffLeg], price: Decimal | float, *, now: datetime.datetime
) -> Decimal:
    """T+0: P&L in rupees if the underlying moved to `price` right `now`, each leg valued by
    Black-76 with its implied volatility and the time it still has (the pricing model's view;
    a leg without an IV is valued at expiry)."""
    total = Decimal(0)
    for leg in legs:
        years = years_left(leg, now)
        if years > 0 and leg.iv:
            value = Decimal(
                black76(
                    forward=float(price),
                    strike=float(leg.strike),
                    years=years,
                    vol=float(leg.iv),
                    call=leg.option_type == "CE",
                )
            )
        elif leg.option_type == "CE":
            value = max(Decimal(price) - leg.strike, Decimal(0))
        else:
            value = max(leg.strike - Decimal(price), Decimal(0))
        total += leg.sign * (value - leg.premium) * leg.quantity
    return total


@dataclass(frozen=True)
class PositionGreeks:
    """The whole position's Greeks in rupees-per-unit terms times quantity: delta in units of
    the underlying, gamma per point, theta in rupees a day, vega in rupees per IV point."""

    delta: Decimal
    gamma: Decimal
    theta: Decimal
    vega: Decimal


def position_greeks(
    legs: Sequence[PayoffLeg], *, spot: Decimal, now: datetime.datetime
) -> PositionGreeks:
    from execution.market.pricing import greeks

    totals = [0.0, 0.0, 0.0, 0.0]
    for leg in legs:
        years = years_left(leg, now)
        g = greeks(
            forward=float(spot),
            strike=float(leg.strike),
            t=years,
            r=0.0,
            sigma=float(leg.iv or 0),
            option_type=leg.option_type,
        )
        weight = leg.sign * leg.quantity
        for i, value in enumerate((g.delta, g.gamma, g.theta, g.vega)):
            totals[i] += weight * value
    d, gm, th, v = (Decimal(str(round(x, 4))) for x in totals)
    return PositionGreeks(
        delta=d.quantize(Decimal("0.01")),
        gamma=gm,
        theta=th.quantize(PAISE),
        vega=v.quantize(PAISE),
    )


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
    # T+0 (today, from the pricing model), the strikes and the price axis's ticks, labelled.
    today_path: str = ""
    strikes: list[tuple[float, str]] = dataclass_field(default_factory=list)
    ticks: list[tuple[float, str]] = dataclass_field(default_factory=list)


def chart(
    legs: Sequence[PayoffLeg],
    *,
    spot: Decimal,
    breakevens: Sequence[Decimal] = (),
    width: int = 640,
    height: int = 240,
    samples: int = 160,
    now: datetime.datetime | None = None,
) -> PayoffChart:
    marks = [leg.strike for leg in legs] + list(breakevens) + [spot]
    low = (min(marks) * Decimal("0.97")).quantize(Decimal(1))
    high = (max(marks) * Decimal("1.03")).quantize(Decimal(1))
    xs = sorted({low + (high - low) * i / samples for i in range(samples + 1)} | set(marks))
    xs = [x for x in xs if low <= x <= high]
    ys = [pnl_at(legs, x) for x in xs]
    today = [pnl_today(legs, x, now=now) for x in xs] if now is not None else []
    top = max(max(ys), *today, Decimal(0))
    bottom = min(min(ys), *today, Decimal(0))
    span_y = (top - bottom) or Decimal(1)
    pad = 8

    def px(x: Decimal) -> float:
        return round(float((x - low) / (high - low)) * (width - 2 * pad) + pad, 1)

    def py(y: Decimal) -> float:
        return round(float((top - y) / span_y) * (height - 2 * pad) + pad, 1)

    def line(values: list[Decimal]) -> str:
        return " ".join(
            f"{'M' if i == 0 else 'L'}{px(x)},{py(y)}"
            for i, (x, y) in enumerate(zip(xs, values, strict=True))
        )

    path = line(ys)
    ticks = [low + (high - low) * i / 4 for i in range(5)]
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
        today_path=line(today) if today else "",
        strikes=[
            (px(k), f"{k:f}".rstrip("0").rstrip(".")) for k in sorted({g.strike for g in legs})
        ],
        ticks=[(px(t), f"{t.quantize(Decimal(1)):f}") for t in ticks],
    )
