"""What the wizard's review shows: strikes resolved now, payoff, quantities per account."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from brokers.models import BrokerAccount
from execution.models import Underlying
from trader.models import User
from trader.strategies import payoff
from trader.strategies.selectors import IST
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


def review_build(
    *, user: User, spec: StrategySpec, market: Any, now: datetime.datetime | None = None
) -> Review:
    """Resolve the legs against `market` as of now; never raises for market-data gaps, which
    are reported in `problem` so the trader sees why strikes could not be shown."""
    now = now or timezone.now()
    review = Review(as_of=now)
    underlying = Underlying.objects.filter(pk=spec.underlying_id).first()
    if underlying is None or not spec.legs:
        review.problem = "Choose an underlying and at least one leg first."
        return review
    try:
        review.spot = Decimal(market.spot(underlying.symbol, at=now))
        review.resolved = resolve_leg_specs(
            underlying=underlying,
            legs=spec.legs,
            on=now.astimezone(IST).date(),
            market=market,
            at=now,
        )
    except (LookupError, ValueError) as exc:
        review.problem = f"Strikes cannot be resolved right now: {exc}"
        review.accounts = _account_quantities(user=user, spec=spec, resolved=[])
        return review
    legs = [
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
    review.summary = payoff.analyse(legs, spot=review.spot)
    review.chart = payoff.chart(legs, spot=review.spot, breakevens=review.summary.breakevens)
    review.accounts = _account_quantities(user=user, spec=spec, resolved=review.resolved)
    return review


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
