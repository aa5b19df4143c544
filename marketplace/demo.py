"""Demo data for `make run`: the demo creator lists their own NIFTY iron fly, paper-traded on
their own paper account, reviewed and approved by the demo admin and published. Idempotent.

The listing starts with no track record: it gains one only as the engine actually runs it.
"""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any

from brokers.models import AccountStatus, Broker, BrokerAccount
from brokers.services import broker_account_create, paper_account_log_in
from execution.models import Underlying
from marketplace import services
from marketplace.models import Listing, PlanKind, Visibility
from trader.models import ExpiryChoice, LegFailurePolicy, Strategy, StrategyStatus
from trader.strategies import services as strategy_services
from trader.strategies.specs import AllocationSpec, LegSpec, StrategySpec

logger = logging.getLogger(__name__)

DEMO_STRATEGY = "NIFTY iron fly"
DEMO_TITLE = "NIFTY weekly iron fly (demo)"


def _creator_strategy(creator: Any, nifty: Underlying) -> Strategy:
    strategy = Strategy.objects.filter(owner=creator, name=DEMO_STRATEGY).first()
    if strategy is not None:
        return strategy
    paper = BrokerAccount.objects.filter(owner=creator, broker=Broker.PAPER).first()
    if paper is None:
        paper = broker_account_create(owner=creator, broker=Broker.PAPER, label="Paper")
    if paper.status != AccountStatus.CONNECTED:
        paper_account_log_in(account=paper, actor=creator)
    week = ExpiryChoice.CURRENT_WEEK
    spec = StrategySpec(
        name=DEMO_STRATEGY,
        description="Sells the at-the-money straddle with wings six strikes out.",
        underlying_id=nifty.pk,
        template="",
        legs=[
            LegSpec(side="BUY", option_type="PE", lots=1, expiry_choice=week, strike_offset=-6),
            LegSpec(side="BUY", option_type="CE", lots=1, expiry_choice=week, strike_offset=6),
            LegSpec(side="SELL", option_type="PE", lots=1, expiry_choice=week, strike_offset=0),
            LegSpec(side="SELL", option_type="CE", lots=1, expiry_choice=week, strike_offset=0),
        ],
        entry_time=datetime.time(9, 25),
        exit_time=datetime.time(15, 10),
        leg_failure_policy=LegFailurePolicy.UNWIND,
        stop_loss_mtm=Decimal("4000"),
        target_mtm=Decimal("3000"),
        allocations=[AllocationSpec(broker_account_id=paper.pk)],
    )
    strategy = strategy_services.strategy_create(user=creator, spec=spec)
    if strategy.status == StrategyStatus.DRAFT:
        strategy_services.strategy_activate(user=creator, strategy=strategy)
    return strategy


def seed(users: Any) -> None:
    creator, admin = users.creator, users.admin
    if Listing.objects.filter(creator=creator, title=DEMO_TITLE).exists():
        return
    nifty = Underlying.objects.filter(symbol="NIFTY").first()
    if nifty is None:
        logger.warning("No NIFTY underlying yet; the demo listing is not created.")
        return
    strategy = _creator_strategy(creator, nifty)
    listing = services.listing_create(
        creator=creator,
        strategy=strategy,
        title=DEMO_TITLE,
        description=(
            "A defined-risk weekly iron fly on NIFTY, entered after the opening auction settles "
            "and closed before the last twenty minutes. Copy it or subscribe to it."
        ),
        tags="iron fly, weekly, defined risk",
        risk_level="medium",
        capital_required=Decimal("120000"),
        min_multiplier=1,
        visibility=Visibility.COPY_ALLOWED,
        sebi_ra_number="",
        plan_kind=PlanKind.FEE_AND_SHARE,
        monthly_fee=Decimal("499"),
        profit_share_percent=Decimal("10"),
    )
    services.listing_transition(listing=listing, user=creator, action="submit")
    services.listing_transition(listing=listing, user=admin, action="approve")
    services.listing_transition(listing=listing, user=creator, action="publish")
