"""What the wizard's review shows: strikes resolved now, payoff, quantities per account."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from brokers.models import BrokerAccount
from execution.markettime import IST
from execution.models import Underlying
from trader.models import User
from trader.strategies import payoff
from trader.strategies.specs import StrategySpec
from trader.strategies.strikes import ResolvedLeg, resolve_leg_specs


@dataclass
class AccountQuantity:
    account: BrokerAccount
    legs: list[tuple[ResolvedLeg, int, int]]  # (leg, lots, quantity)
    total_lots: int
    total_quantity: int


@dataclass
class Review:
    as_of: datetime.datetime
    spot: Decimal | None = None
    resolved: list[ResolvedLeg] = field(default_factory=list)
    summary: payoff.PayoffSummary | None = None
    chart: payoff.PayoffChart | None = None
    accounts: list[AccountQuantity] = field(default_factory=list)
    problem: str = ""
    greeks: payoff.PositionGreeks | None = None
    warnings: list[str] = field(default_factory=list)
    margin: Decimal | None = None


def review_build(
    *, user: User, spec: StrategySpec, market: Any, now: datetime.datetime | None = None
) -> Review:
    """Resolve the legs against `market` as of now; never raises for market-data gaps, which
    are reported in `problem` so the trader sees why strikes could not be shown."""
    review = legs_preview(underlying_id=spec.underlying_id, legs=spec.legs, market=market, now=now)
    review.accounts = _account_quantities(user=user, spec=spec, resolved=review.resolved)
    return review


# Thresholds of the legs step's warnings (judgement, not market facts).
FAR_OTM_DELTA = 0.05  # below this |delta| a leg is far out of the money
DEEP_ITM_DELTA = 0.90
LARGE_LOSS = Decimal("100000")  # a max loss above ₹1 lakh is pointed out
# Margin estimate for the warning: shorts at this share of the underlying's value (SPAN plus
# exposure for index options is of this order); longs pay their premium. An estimate only: the
# broker's margin calculator decides.
SHORT_MARGIN_SHARE = Decimal("0.12")


def legs_preview(
    *, underlying_id: int | None, legs: Any, market: Any, now: datetime.datetime | None = None
) -> Review:
    """Strikes, premiums, payoff at expiry and today (T+0), the position's Greeks, an estimate
    of the margin, and warnings for far-out or deep-in-the-money legs and large or unlimited
    losses, for the legs as they stand. Never raises for market-data gaps (see `problem`)."""
    now = now or timezone.now()
    review = Review(as_of=now)
    underlying = Underlying.objects.filter(pk=underlying_id).first() if underlying_id else None
    if underlying is None or not legs:
        review.problem = "Choose an underlying and at least one leg first."
        return review
    try:
        review.spot = Decimal(market.spot(underlying.symbol, at=now))
        review.resolved = resolve_leg_specs(
            underlying=underlying,
            legs=legs,
            on=now.astimezone(IST).date(),
            market=market,
            at=now,
        )
    except (LookupError, ValueError) as exc:
        review.problem = f"Strikes cannot be resolved right now: {exc}"
        return review
    payoff_legs = [
        payoff.PayoffLeg(
            side=leg.side,
            option_type=leg.option_type,
            strike=leg.strike,
            premium=leg.premium or Decimal(0),
            quantity=leg.quantity,
            expiry=leg.expiry,
            iv=leg.iv,
        )
        for leg in review.resolved
    ]
    if any(leg.premium is None for leg in review.resolved):
        review.problem = "Some premiums are not quoted; the payoff counts them as ₹0."
    review.summary = payoff.analyse(payoff_legs, spot=review.spot)
    review.chart = payoff.chart(
        payoff_legs, spot=review.spot, breakevens=review.summary.breakevens, now=now
    )
    review.greeks = payoff.position_greeks(payoff_legs, spot=review.spot, now=now)
    review.margin = sum(
        (
            review.spot * SHORT_MARGIN_SHARE * leg.quantity
            if leg.side == "SELL"
            else (leg.premium or Decimal(0)) * leg.quantity
            for leg in review.resolved
        ),
        Decimal(0),
    ).quantize(Decimal(1))
    review.warnings = _warnings(review, payoff_legs)
    return review


def _warnings(review: Review, legs: list[payoff.PayoffLeg]) -> list[str]:
    from execution.market.pricing import greeks
    from trader.india import rupees

    assert review.spot is not None and review.summary is not None
    warnings = []
    for resolved, leg in zip(review.resolved, legs, strict=True):
        delta = abs(
            greeks(
                forward=float(review.spot),
                strike=float(leg.strike),
                t=payoff.years_left(leg, review.as_of),
                r=0.0,
                sigma=float(leg.iv or 0),
                option_type=leg.option_type,
            ).delta
        )
        name = f"Leg {resolved.position} ({resolved.side} {leg.strike:f} {leg.option_type})"
        if delta < FAR_OTM_DELTA:
            warnings.append(
                f"{name} is far out of the money (delta {delta:.2f}): it is worth little, "
                "fills poorly and rarely protects or pays."
            )
        elif delta > DEEP_ITM_DELTA:
            warnings.append(
                f"{name} is deep in the money (delta {delta:.2f}): it costs or risks almost "
                "as much as the underlying itself."
            )
    if review.summary.max_loss is None:
        warnings.append("The loss is unlimited: a naked short can lose more than any margin.")
    elif review.summary.max_loss > LARGE_LOSS:
        warnings.append(
            f"The most this can lose is {rupees(review.summary.max_loss)}: check that it "
            "suits your capital."
        )
    if review.margin and review.margin > LARGE_LOSS:
        warnings.append(
            f"It needs about {rupees(review.margin)} of margin (estimate): your broker "
            "refuses orders the funds do not cover."
        )
    return warnings


def _account_quantities(
    *, user: User, spec: StrategySpec, resolved: list[ResolvedLeg]
) -> list[AccountQuantity]:
    """Lots and units per allocated account; the accounts are listed even when the strikes
    could not be resolved (their legs are then empty)."""
    accounts = {
        a.pk: a
        for a in BrokerAccount.objects.filter(
            owner=user, pk__in=[x.broker_account_id for x in spec.allocations]
        )
    }
    quantities = []
    for allocation in sorted(spec.allocations, key=lambda a: a.priority):
        account = accounts.get(allocation.broker_account_id)
        if account is None:
            continue
        rows = []
        for leg in resolved:
            lots = allocation.lots_for(leg.lots)
            rows.append((leg, lots, lots * leg.lot_size))
        quantities.append(
            AccountQuantity(
                account=account,
                legs=rows,
                total_lots=sum(r[1] for r in rows),
                total_quantity=sum(r[2] for r in rows),
            )
        )
    return quantities
