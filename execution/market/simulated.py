"""A simulated index-options market for paper trading, demos, tests and emulators.

Pure Python: no database, no Django settings (broker emulators run it in a process of their own).

Spot: a seeded, reproducible random walk per underlying. Each weekday moves in one-minute steps
through the normal session in force on that date (09:15-15:30 IST until 31-Jul-2026, 375 steps;
09:15-15:40 from 3-Aug-2026, 385 steps; `execution.market.sessions`) plus an overnight gap at
the open; prices are flat outside those hours and on Saturdays and Sundays. The market does
not know exchange holidays (the calendar guard decides whether one may trade). The walk is a
pure function of (seed, symbol, time), so answers do not depend on the order of questions; time
comes from an injectable clock.

Options: Black-76 on the forward with a volatility smile, Greeks and quoted IV from vollib, a
bid/ask around the model price on the ₹0.05 tick (execution.market.pricing explains the
conventions).

The default parameters are SIMULATION PARAMETERS, not market facts: levels near late-2026
index levels and annual volatilities typical of each index.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import numpy as np

from execution.market import pricing
from execution.market.sessions import SessionHours, reference_hours
from execution.markettime import IST

# Share of a day's variance that arrives overnight (as the opening gap).
OVERNIGHT_VARIANCE_SHARE = 0.2
TRADING_DAYS_PER_YEAR = 252
# The after-hours simulated session (paper at any hour): market minutes per real second.
AFTER_HOURS_SPEED = 60
# Days of path generated per random block; blocks are cached.
BLOCK_DAYS = 366


@dataclass(frozen=True)
class UnderlyingParams:
    """Simulation parameters of one underlying (not market data)."""

    spot: Decimal  # level at the anchor date's open
    annual_vol: float  # realised volatility of the spot walk
    atm_iv: float  # implied volatility at the money
    skew: float = -0.08  # IV change per standard deviation of moneyness (puts richer)
    smile: float = 0.04  # IV curvature per squared standard deviation
    tick: Decimal = Decimal("0.05")
    half_spread_pct: float = 0.005  # half the bid/ask spread, as a share of the price


# Simulation parameters, chosen near late-2026 levels; NOT market facts.
DEFAULT_PARAMS: dict[str, UnderlyingParams] = {
    "NIFTY": UnderlyingParams(spot=Decimal("26000"), annual_vol=0.12, atm_iv=0.115),
    "BANKNIFTY": UnderlyingParams(spot=Decimal("59000"), annual_vol=0.14, atm_iv=0.13),
    "FINNIFTY": UnderlyingParams(spot=Decimal("27500"), annual_vol=0.13, atm_iv=0.125),
    "MIDCPNIFTY": UnderlyingParams(spot=Decimal("13500"), annual_vol=0.17, atm_iv=0.16),
    "SENSEX": UnderlyingParams(spot=Decimal("85000"), annual_vol=0.12, atm_iv=0.115),
}
# The date at whose open each underlying stands at `UnderlyingParams.spot`.
ANCHOR_DATE = date(2026, 11, 2)
# Short rate for the forward (RBI repo 5.25% from 5-Dec-2025, india-market.md §7).
DEFAULT_RATE = 0.0525


@dataclass(frozen=True)
class OptionQuote:
    symbol: str
    expiry: date
    strike: Decimal
    option_type: str
    at: datetime
    spot: Decimal
    forward: Decimal
    bid: Decimal  # 0 when there is no bid (worthless far out of the money)
    ask: Decimal
    ltp: Decimal
    iv: float  # implied volatility of `ltp` (vollib); the model's at and after expiry
    delta: float
    gamma: float
    theta: float  # rupees per calendar day
    vega: float  # rupees per volatility point

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class ChainRow:
    strike: Decimal
    ce: OptionQuote
    pe: OptionQuote


def _stable_seed(*parts: object) -> int:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def in_session(moment: datetime, hours: SessionHours | None = None) -> bool:
    """Whether `moment` falls in the simulated market's hours (weekdays, open to close IST)."""
    local = moment.astimezone(IST)
    opens, closes = (hours or reference_hours()).on(local.date())
    return local.weekday() < 5 and opens <= local.time() < closes


def after_hours_time(moment: datetime, speed: int, hours: SessionHours | None = None) -> datetime:
    """The market instant that a moment outside market hours stands for in the after-hours
    simulated session: the last weekday's session replayed `speed` times faster, round and
    round. A pure function of `moment`, so every process (paper fills, marks, the run page)
    sees the same price at the same instant."""
    hours = hours or reference_hours()
    local = moment.astimezone(IST)
    day = local.date()
    if local.time() < hours.on(day)[0]:
        day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    seconds = hours.minutes(day) * 60
    into = (moment.timestamp() * speed) % seconds
    return datetime.combine(day, hours.on(day)[0], tzinfo=IST) + timedelta(seconds=into)


class SimulatedMarket:
    """Seeded spot paths and option quotes. Thread-safe (the random blocks are immutable).

    With `after_hours_speed`, a moment outside market hours is priced in the after-hours
    simulated session (`after_hours_time`) instead of flat: paper that moves at any hour."""

    def __init__(
        self,
        seed: int = 7,
        clock: Callable[[], datetime] | None = None,
        params: dict[str, UnderlyingParams] | None = None,
        *,
        rate: float = DEFAULT_RATE,
        anchor: date = ANCHOR_DATE,
        hours: SessionHours | None = None,
        after_hours_speed: int = 0,
    ) -> None:
        self.seed = seed
        self.after_hours_speed = after_hours_speed
        self.clock = clock or (lambda: datetime.now(UTC))
        self.params = dict(DEFAULT_PARAMS if params is None else params)
        self.rate = rate
        self.anchor = anchor
        self.hours = hours or reference_hours()
        # Per-instance cache so two markets with different seeds never share paths.
        self._block = lru_cache(maxsize=64)(self._make_block)

    # --- spot ------------------------------------------------------------------------------
    def _param(self, symbol: str) -> UnderlyingParams:
        try:
            return self.params[symbol]
        except KeyError:
            raise KeyError(f"The simulated market has no underlying {symbol!r}") from None

    def _make_block(self, symbol: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Days [anchor + index·BLOCK_DAYS, +BLOCK_DAYS): (gap, intraday path, day total).

        Row i of the path has one point per minute of that day's session (its length is the
        session in force on that date), then stays at the close."""
        p = self._param(symbol)
        rng = np.random.default_rng(_stable_seed(self.seed, symbol, index))
        first = self.anchor + timedelta(days=index * BLOCK_DAYS)
        days = [first + timedelta(days=i) for i in range(BLOCK_DAYS)]
        minutes = np.array([self.hours.minutes(day) for day in days])
        widest = int(minutes.max())
        daily_sigma = p.annual_vol / math.sqrt(TRADING_DAYS_PER_YEAR)
        gap_sigma = daily_sigma * math.sqrt(OVERNIGHT_VARIANCE_SHARE)
        # Each day carries the same intraday variance however long its session is.
        minute_sigma = daily_sigma * np.sqrt((1 - OVERNIGHT_VARIANCE_SHARE) / minutes)
        gaps = rng.standard_normal(BLOCK_DAYS) * gap_sigma
        steps = rng.standard_normal((BLOCK_DAYS, widest)) * minute_sigma[:, None]
        steps[np.arange(widest)[None, :] >= minutes[:, None]] = 0.0  # after that day's close
        weekend = np.array([day.weekday() >= 5 for day in days], dtype=bool)
        gaps[weekend] = 0.0
        steps[weekend] = 0.0
        path = np.concatenate([np.zeros((BLOCK_DAYS, 1)), np.cumsum(steps, axis=1)], axis=1)
        totals = gaps + path[:, -1]
        for array in (gaps, path, totals):
            array.setflags(write=False)
        return gaps, path, totals

    def _log_move_before(self, symbol: str, day_offset: int) -> float:
        """Sum of whole-day log moves from the anchor to the start of day `day_offset`."""
        block, within = divmod(day_offset, BLOCK_DAYS)
        total = 0.0
        if block >= 0:
            for b in range(block):
                total += float(self._block(symbol, b)[2].sum())
            total += float(self._block(symbol, block)[2][:within].sum())
        else:
            for b in range(block + 1, 0):
                total -= float(self._block(symbol, b)[2].sum())
            total -= float(self._block(symbol, block)[2][within:].sum())
        return total

    def spot(self, symbol: str, at: datetime | None = None) -> Decimal:
        """The index level at `at` (aware; default the clock's now), to 0.01."""
        at = self._moment(at)
        local = at.astimezone(IST)
        offset = (local.date() - self.anchor).days
        gaps, path, _ = self._block(symbol, offset // BLOCK_DAYS)
        row = offset % BLOCK_DAYS
        opens, _ = self.hours.on(local.date())
        session_minutes = self.hours.minutes(local.date())
        minutes = (local - datetime.combine(local.date(), opens, tzinfo=IST)).total_seconds() / 60
        if minutes < 0:
            intraday = 0.0  # before the open: yesterday's close
        else:
            position = min(float(session_minutes), minutes)
            lower = int(position)
            upper = min(lower + 1, session_minutes)
            weight = position - lower
            intraday = float(gaps[row]) + float(
                path[row, lower] * (1 - weight) + path[row, upper] * weight
            )
        log_level = self._log_move_before(symbol, offset) + intraday
        level = float(self._param(symbol).spot) * math.exp(log_level)
        return Decimal(str(level)).quantize(Decimal("0.01"))

    # --- options ---------------------------------------------------------------------------
    def implied_vol(self, symbol: str, *, forward: float, strike: float, t: float) -> float:
        """The model's smile: ATM IV bent by skew and smile in standardised moneyness."""
        p = self._param(symbol)
        if t <= 0:
            return p.atm_iv
        x = math.log(strike / forward) / (p.atm_iv * math.sqrt(t))
        x = max(-4.0, min(4.0, x))
        return p.atm_iv * max(0.5, 1.0 + p.skew * x + p.smile * x * x)

    def option_quote(
        self,
        symbol: str,
        expiry: date,
        strike: Decimal,
        option_type: str,
        at: datetime | None = None,
    ) -> OptionQuote:
        at = self._moment(at)
        return self._quote(symbol, expiry, Decimal(strike), option_type, at, self.spot(symbol, at))

    def _quote(
        self,
        symbol: str,
        expiry: date,
        strike: Decimal,
        option_type: str,
        at: datetime,
        spot: Decimal,
    ) -> OptionQuote:
        p = self._param(symbol)
        t = pricing.year_fraction(at, expiry, expiry_close=self.hours.on(expiry)[1])
        forward = pricing.forward_price(spot=float(spot), t=t, r=self.rate)
        k = float(strike)
        sigma = self.implied_vol(symbol, forward=forward, strike=k, t=t)
        value = pricing.black76_price(
            forward=forward, strike=k, t=t, r=self.rate, sigma=sigma, option_type=option_type
        )
        g = pricing.greeks(
            forward=forward, strike=k, t=t, r=self.rate, sigma=sigma, option_type=option_type
        )
        if t > 0:
            ltp = max(p.tick, pricing.round_to_tick(value, p.tick))
            half = max(float(p.tick), value * p.half_spread_pct)
            bid = max(Decimal(0), pricing.round_to_tick(value - half, p.tick, direction="down"))
            ask = max(
                pricing.round_to_tick(value + half, p.tick, direction="up"), bid + p.tick, ltp
            )
            iv = pricing.implied_volatility(
                price=float(ltp),
                forward=forward,
                strike=k,
                t=t,
                r=self.rate,
                option_type=option_type,
            )
        else:
            # Expired: worth its intrinsic value against the spot at the close.
            ltp = pricing.round_to_tick(value, p.tick)
            bid = ask = ltp
            iv = None
        return OptionQuote(
            symbol=symbol,
            expiry=expiry,
            strike=strike,
            option_type=option_type,
            at=at,
            spot=spot,
            forward=Decimal(str(forward)).quantize(Decimal("0.01")),
            bid=bid,
            ask=ask,
            ltp=ltp,
            iv=sigma if iv is None else iv,
            delta=g.delta,
            gamma=g.gamma,
            theta=g.theta,
            vega=g.vega,
        )

    def chain(
        self,
        symbol: str,
        expiry: date,
        *,
        strike_step: Decimal,
        strikes_each_side: int = 10,
        at: datetime | None = None,
    ) -> list[ChainRow]:
        """Strikes around the ATM strike (nearest multiple of `strike_step`), CE and PE each."""
        if strike_step <= 0 or strikes_each_side < 0:
            raise ValueError("strike_step must be positive and strikes_each_side not negative")
        at = self._moment(at)
        spot = self.spot(symbol, at)
        step = Decimal(strike_step)
        atm = (spot / step).quantize(Decimal(1)) * step
        rows = []
        for n in range(-strikes_each_side, strikes_each_side + 1):
            strike = atm + n * step
            if strike <= 0:
                continue
            rows.append(
                ChainRow(
                    strike=strike,
                    ce=self._quote(symbol, expiry, strike, "CE", at, spot),
                    pe=self._quote(symbol, expiry, strike, "PE", at, spot),
                )
            )
        return rows

    def _moment(self, at: datetime | None) -> datetime:
        moment = self.clock() if at is None else at
        if moment.tzinfo is None:
            raise ValueError("The simulated market needs aware datetimes")
        if self.after_hours_speed and not in_session(moment, self.hours):
            return after_hours_time(moment, self.after_hours_speed, self.hours)
        return moment


_default: SimulatedMarket | None = None
_default_lock = threading.Lock()


def default_market() -> SimulatedMarket:
    """The process-wide simulated market on the real clock (seed 7, default parameters),
    with the after-hours session at PAPER_AFTER_HOURS_SPEED times (0: flat after hours)."""
    global _default
    with _default_lock:
        if _default is None:
            speed = int(os.environ.get("PAPER_AFTER_HOURS_SPEED", AFTER_HOURS_SPEED))
            _default = SimulatedMarket(after_hours_speed=speed)
        return _default
