"""Demo strategy for `make run`: the demo trader's NIFTY short strangle with bought wings,
active on their paper account. Idempotent: an existing strategy of that name is left alone."""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any

from brokers.models import BrokerAccount
from execution.models import Underlying
from trader.models import ExpiryChoice, LegFailurePolicy, Strategy, StrategyStatus
from trader.strategies import services
from trader.strategies.specs import AllocationSpec, LegSpec, StrategySpec

logger = logging.getLogger(__name__)

DEMO_NAME = "NIFTY hedged short strangle"


def seed(users: Any) -> None:
    trader = users.trader
    if Strategy.objects.filter(owner=trader, name=DEMO_NAME).exists():
        return
    nifty = Underlying.objects.filter(symbol="NIFTY").first()
    if nifty is None:
        logger.warning("No NIFTY underlying yet; the demo strategy is not created.")
        return
    paper = BrokerAccount.objects.filter(owner=trader, broker="paper").first()
    week = ExpiryChoice.CURRENT_WEEK
    spec = StrategySpec(
        name=DEMO_NAME,
        description="Sells OTM calls and puts four strikes out, hedged by wings eight out.",
        underlying_id=nifty.pk,
        template="",
        legs=[
            LegSpec(side="BUY", option_type="PE", lots=1, expiry_choice=week, strike_offset=-8),
            LegSpec(side="BUY", option_type="CE", lots=1, expiry_choice=week, strike_offset=8),
            LegSpec(side="SELL", option_type="PE", lots=1, expiry_choice=week, strike_offset=-4),
            LegSpec(side="SELL", option_type="CE", lots=1, expiry_choice=week, strike_offset=4),
        ],
        entry_time=datetime.time(9, 20),
        exit_time=datetime.time(15, 15),
        leg_failure_policy=LegFailurePolicy.UNWIND,
        stop_loss_mtm=Decimal("3000"),
        target_mtm=Decimal("2000"),
        allocations=[AllocationSpec(broker_account_id=paper.pk)] if paper else [],
    )
    strategy = services.strategy_create(user=trader, spec=spec)
    if paper is not None and strategy.status == StrategyStatus.DRAFT:
        services.strategy_activate(user=trader, strategy=strategy)
