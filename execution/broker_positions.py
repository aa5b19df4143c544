"""The broker's positions against ours (issue 13, item 5): each account's net position per
contract at its broker (the adapter's positions call) compared with the engine's open
positions, and the kill switch's "flatten everything" closing what was opened outside the
platform.

- A difference is flagged, never corrected silently: "opened outside the platform" (we hold
  nothing there), "not at the broker" (we think we hold it; the broker shows none), or the
  two quantities. The positions page shows them (read at most every 15 s per account) and
  the morning ready check mails them to the owner.
- Flattening closes only what the broker holds beyond ours in the same direction (the rest is
  closed by the engine's own closing orders); where we think we hold more than the broker,
  nothing is sent for it (an over-close would open a new position), and it stays flagged.
  Shorts are bought back before longs are sold, each order from the account's one budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from brokers.base import BrokerError, OrderRequest, OrderType, Product, RateLimitedError, Side

logger = logging.getLogger(__name__)
CACHE_SECONDS = 15


@dataclass(frozen=True)
class PositionDifference:
    exchange: str
    tradingsymbol: str
    product: str
    broker_quantity: int  # net, signed
    our_quantity: int
    last_price: Any = None

    @property
    def kind(self) -> str:
        if self.our_quantity == 0:
            return "outside"
        if self.broker_quantity == 0:
            return "missing"
        return "differs"

    @property
    def outside_quantity(self) -> int:
        """What the broker holds beyond ours in the same direction (signed), 0 otherwise."""
        b, o = self.broker_quantity, self.our_quantity
        if (b > 0 and b > o >= 0) or (b < 0 and b < o <= 0):
            return b - o
        return 0

    @property
    def words(self) -> str:
        if self.kind == "outside":
            return (
                f"{self.tradingsymbol}: {self.broker_quantity:+d} at the broker, opened "
                f"outside the platform"
            )
        if self.kind == "missing":
            return f"{self.tradingsymbol}: we hold {self.our_quantity:+d}, the broker shows none"
        return (
            f"{self.tradingsymbol}: {self.broker_quantity:+d} at the broker, "
            f"{self.our_quantity:+d} by our records"
        )


@dataclass(frozen=True)
class AccountPositions:
    account: Any
    differences: list[PositionDifference]
    problem: str = ""  # the broker could not be read


def broker_positions_compare(*, account: Any, adapter: Any = None) -> AccountPositions:
    """Read the account's positions at its broker and compare them with our open positions
    (all runs) per contract. A broker error gives `problem` in words, no differences."""
    from django.db.models import Sum

    from brokers.registry import get_adapter
    from execution.models.engine import Position

    try:
        theirs = (adapter or get_adapter(account)).positions()
    except BrokerError as exc:
        return AccountPositions(account, [], f"positions could not be read ({exc.message})")
    ours = {
        row["tradingsymbol"]: int(row["net"] or 0)
        for row in Position.objects.filter(account=account)
        .values("tradingsymbol")
        .annotate(net=Sum("net_quantity"))
    }
    found: dict[str, PositionDifference] = {}
    for position in theirs:
        symbol = position.tradingsymbol
        previous = found.get(symbol)
        quantity = position.quantity + (previous.broker_quantity if previous else 0)
        found[symbol] = PositionDifference(
            exchange=position.exchange,
            tradingsymbol=symbol,
            product=str(position.product),
            broker_quantity=quantity,
            our_quantity=ours.get(symbol, 0),
            last_price=position.last_price,
        )
    for symbol, quantity in ours.items():
        if symbol not in found and quantity:
            found[symbol] = PositionDifference("", symbol, "", 0, quantity)
    differences = [d for d in found.values() if d.broker_quantity != d.our_quantity]
    return AccountPositions(account, sorted(differences, key=lambda d: d.tradingsymbol))


def broker_positions_for_user(*, user: Any) -> list[AccountPositions]:
    """Every connected account of the user compared (kept 15 s per account: the positions
    page polls, brokers limit their positions calls to about 1/s)."""
    from django.core.cache import cache

    from brokers.models import AccountStatus, BrokerAccount

    results = []
    for account in BrokerAccount.objects.filter(owner=user, status=AccountStatus.CONNECTED):
        key = f"broker-positions:{account.pk}"
        compared = cache.get(key)
        if not isinstance(compared, AccountPositions):
            compared = broker_positions_compare(account=account)
            cache.set(key, compared, CACHE_SECONDS)
        results.append(compared)
    return results


def outside_positions_flatten(
    *,
    user_id: int,
    adapters: dict[int, Any] | None = None,
    before_send: Callable[[], None] | None = None,
) -> int:
    """For the kill switch's "flatten everything": close, on each connected account of the
    user, what the broker holds beyond our own positions (opened outside the platform),
    shorts first. Every account's positions are read first, then `before_send` runs (the
    kill switch sends its own closing orders there: read after them, a contract we had just
    closed would hide an outside position of the same size), then the orders go. Returns the
    number of orders the brokers accepted; each order and each refusal is an audit event."""
    from brokers.models import AccountStatus, BrokerAccount
    from brokers.registry import get_adapter
    from execution import conf, marketable
    from execution.audit import event_record
    from execution.dispatch import new_tag
    from execution.models.engine import Purpose
    from execution.sender import slot_take

    accepted = 0
    accounts = BrokerAccount.objects.filter(owner_id=user_id, status=AccountStatus.CONNECTED)
    plans = []
    for account in accounts:
        adapter = (adapters or {}).get(account.pk) or get_adapter(account)
        plans.append((account, adapter, broker_positions_compare(account=account, adapter=adapter)))
    if before_send is not None:
        before_send()
    for account, adapter, compared in plans:
        if compared.problem:
            event_record(
                kind="killswitch.outside_failed",
                message=f"{account.label}: {compared.problem}; positions opened outside the "
                "platform were not closed.",
                user_id=user_id,
                account_id=account.pk,
            )
            continue
        to_close = [d for d in compared.differences if d.outside_quantity]
        to_close.sort(key=lambda d: d.outside_quantity > 0)  # shorts (negative) first
        for difference in to_close:
            quantity = abs(difference.outside_quantity)
            side = Side.BUY if difference.outside_quantity < 0 else Side.SELL
            capabilities = adapter.capabilities
            order_type, price, protection = OrderType.MARKET, None, None
            if not marketable.market_orders_allowed(account.broker):
                if not difference.last_price:
                    event_record(
                        kind="killswitch.outside_failed",
                        message=f"{account.label}: {difference.tradingsymbol} not closed: the "
                        "broker takes only LIMIT orders from algos and gave no last price.",
                        user_id=user_id,
                        account_id=account.pk,
                    )
                    continue
                order_type = OrderType.LIMIT
                price = marketable.protected_limit(
                    side=side.value,
                    reference=difference.last_price,
                    percent=conf.limit_protection_percent(),
                    tick=marketable.DEFAULT_TICK,
                )
            elif capabilities.market_protection_required:
                protection = conf.market_protection()
            request = OrderRequest(
                exchange=difference.exchange,
                tradingsymbol=difference.tradingsymbol,
                side=side,
                quantity=quantity,
                order_type=order_type,
                product=Product(difference.product),
                tag=new_tag(Purpose.FLATTEN),
                price=price,
                market_protection=protection,
            )
            try:
                if not slot_take(account.pk, account.orders_per_second):
                    raise RateLimitedError("No orders-per-second slot came free.")
                ack = adapter.place_order(request)
            except BrokerError as exc:
                event_record(
                    kind="killswitch.outside_failed",
                    message=f"{account.label}: {side} {quantity} {difference.tradingsymbol} "
                    f"(opened outside the platform) refused: {exc.message}",
                    user_id=user_id,
                    account_id=account.pk,
                )
                continue
            accepted += 1
            event_record(
                kind="killswitch.outside_closed",
                message=f"{account.label}: {side} {quantity} {difference.tradingsymbol} sent "
                f"to close a position opened outside the platform (order "
                f"{ack.broker_order_id}, tag {request.tag}).",
                user_id=user_id,
                account_id=account.pk,
            )
    return accepted
