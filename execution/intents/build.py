"""Building the orders of a boundary: client tags, the algo ID, closing orders sliced by the
freeze quantity, and the account tasks' payloads.

Shared by every path that writes orders: dispatch (entries and exits), the engine's exits and
the trader's own (execution.protection.watch, execution.orders.runs), failover and the kill
switch. Nothing here talks to a broker or starts a task.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from brokers.models import BrokerAccount
from execution.intents import marketable
from execution.market import default_market
from execution.models.engine import OrderIntent, Position, Purpose, ScheduledRun
from execution.reference import contracts
from execution.send.sender import OutgoingOrder

logger = logging.getLogger(__name__)

_TAG_ALPHABET = string.ascii_uppercase + string.digits
_PURPOSE_LETTER = {
    Purpose.ENTRY: "E",
    Purpose.EXIT: "X",
    Purpose.STOP: "S",
    Purpose.UNWIND: "U",
    Purpose.FLATTEN: "K",
    Purpose.SQUARE_OFF: "Q",
}


def slice_lots(*, lots: int, lot_size: int, freeze_quantity: int) -> list[int]:
    """Split an order of `lots` into orders of at most the freeze quantity (in whole lots)."""
    if lots <= 0:
        return []
    per_slice = max(freeze_quantity // lot_size, 1)
    full, rest = divmod(lots, per_slice)
    return [per_slice] * full + ([rest] if rest else [])


def algo_id_for(*, run: ScheduledRun, account: BrokerAccount) -> str:
    """The exchange algo ID an order of `run` on `account` carries (SEBI retail-algo
    framework): the strategy's own ID registered at the account's broker, as the planner put
    it in the run's allocations, else the account's generic one. The one place that decides,
    for entries, exits, stops, failover, unwind and the kill switch's closing orders (a
    closing order carries the ID of the strategy whose position it closes)."""
    for allocation in run.allocations or []:
        if allocation.get("account_id") == account.pk and allocation.get("algo_id"):
            return str(allocation["algo_id"])
    return account.algo_id


def new_tag(purpose: str) -> str:
    """A client tag: a purpose letter and 15 random alphanumerics (≤ 20, unique by the
    database; 77 random bits make a collision practically impossible)."""
    return _PURPOSE_LETTER.get(Purpose(purpose), "O") + "".join(
        secrets.choice(_TAG_ALPHABET) for _ in range(15)
    )


@dataclass
class AccountBatch:
    """The JSON payload of one account task."""

    account_id: int
    fire_at: float  # epoch seconds
    boundary_key: str
    account_ids: list[int]  # every account of the boundary, so one load serves the process
    orders: list[dict[str, Any]] = field(default_factory=list)
    # Where the orders' contract placeholders are resolved at T - ε (execution.intents.slots);
    # "" when every order names its contract already.
    contracts_key: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def close_intents(
    *,
    run: ScheduledRun,
    positions: list[Position],
    accounts: dict[int, BrokerAccount],
    purpose: str,
    intended_at: datetime,
    freeze: Callable[[Position], int],
    lot_size: Callable[[Position], int],
    quotes: marketable.ContractQuotes | None = None,
) -> list[OrderIntent]:
    """Orders that bring `positions` to zero: shorts bought back first (phase 0), then longs
    sold (phase 1), each sliced by the freeze quantity. Each records the contract's last price
    from `quotes` (default: the simulated market at `intended_at`) as its reference, and is a
    marketable LIMIT at brokers that refuse MARKET orders from algos."""
    intents: list[OrderIntent] = []
    for position in positions:
        if position.net_quantity == 0:
            continue
        account = accounts[position.account_id]
        side = "BUY" if position.net_quantity < 0 else "SELL"
        size = lot_size(position)
        lots = abs(position.net_quantity) // size
        remainder = abs(position.net_quantity) % size
        quantities = [
            q * size for q in slice_lots(lots=lots, lot_size=size, freeze_quantity=freeze(position))
        ]
        if remainder:
            quantities.append(remainder)
        for slice_no, quantity in enumerate(quantities):
            intents.append(
                OrderIntent(
                    run=run,
                    leg_id=position.leg_id,
                    account=account,
                    purpose=purpose,
                    slice_no=slice_no,
                    phase=0 if side == "BUY" else 1,
                    side=side,
                    exchange=position.exchange,
                    tradingsymbol=position.tradingsymbol,
                    instrument_token=position.instrument_token,
                    product=position.product,
                    order_type="MARKET",
                    quantity=quantity,
                    lot_size=size,
                    algo_id=algo_id_for(run=run, account=account),
                    tag=new_tag(purpose),
                    intended_at=intended_at,
                )
            )
    if intents:
        if quotes is None:
            quotes = marketable.ContractQuotes(default_market(), intended_at)
        for problem in marketable.closing_terms_apply(intents, accounts=accounts, quotes=quotes):
            logger.warning("closing order left as MARKET: %s", problem)
    return intents


def batches_for(
    intents: list[OrderIntent],
    *,
    fire_at: datetime,
    contracts_key: str = "",
) -> list[AccountBatch]:
    """Group intents per account into the account tasks' payloads."""
    by_account: dict[int, list[OrderIntent]] = defaultdict(list)
    for intent in intents:
        by_account[intent.account_id].append(intent)
    key = fire_at.isoformat()
    all_ids = sorted(by_account)
    batches = []
    for account_id in all_ids:
        batch = AccountBatch(
            account_id=account_id,
            fire_at=fire_at.timestamp(),
            boundary_key=key,
            # Small batches name their accounts; a big boundary lets the worker find them by T
            # (keeps each message small: hundreds of them are published just before T).
            account_ids=all_ids if len(all_ids) <= 20 else [],
            contracts_key=contracts_key,
        )
        for intent in sorted(by_account[account_id], key=lambda i: (i.phase, i.pk or 0)):
            batch.orders.append(outgoing(intent))
        batches.append(batch)
    return batches


def outgoing(intent: OrderIntent) -> dict[str, Any]:
    return asdict(
        OutgoingOrder(
            intent_id=intent.pk,
            run_id=intent.run_id,
            tag=intent.tag,
            phase=intent.phase,
            waits_for_hedges=intent.waits_for_hedges,
            exchange=intent.exchange,
            tradingsymbol=intent.tradingsymbol,
            instrument_token=intent.instrument_token,
            side=intent.side,
            quantity=intent.quantity,
            product=intent.product,
            order_type=intent.order_type,
            price=None if intent.price is None else str(intent.price),
            algo_id=intent.algo_id,
            purpose=intent.purpose,
            intended_at=intent.intended_at.timestamp(),
            session_exempt="paper" if intent.account.is_paper else "",
        )
    )


def position_freeze(position: Position) -> int:
    """The freeze quantity in force for `position`'s contract on its run's session day."""
    underlying = position.run.strategy_version.strategy.underlying
    return int(contracts.freeze_quantity(underlying, position.run.session_date))
