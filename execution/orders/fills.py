"""Fills from the brokers' trade books (item 5), counted once with postbacks and polling.

A trade book lists each fill with the broker's trade id. The trades of one order, oldest
first, bring it to cumulative quantities q1 < q2 < …: a trade is new only if its cumulative
quantity is above what we already counted for the order (from a postback, a poll or an
earlier read of the book), and it is stored under that cumulative quantity and its trade id.
The same fill reported by a postback ("filled 65") and by the book (trade T1, 65) therefore
lands on the same key and is counted once; the book's trade id is kept on it.

Live orders that are still open after their send are followed fast (`orders_follow_start`,
`orders_follow_step`): one chain of short-interval tasks per account reads the trade book and
the order book (two calls, within a share of the broker's documented read budget) until every
open order of the account is final, or for `EXECUTION_FOLLOW_MAX_SECONDS`; the 15-second
reconcilers go on underneath. The paper broker reports its fills at once instead.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.base import BrokerError, BrokerOrder
from brokers.trades import Trade
from execution import conf
from execution.markettime import IST
from execution.models.engine import Fill, IntentState, OrderIntent
from execution.orders.follow import FOLLOW_KEY_SLACK_SECONDS, follow_keys
from execution.orders.lifecycle import (
    INTENT_TRANSITIONS,
    PAISA,
    _position_add,
    _unless_changed_meanwhile,
    contract_known,
    fill_apply,
    intent_transition,
)

logger = logging.getLogger(__name__)

OPEN_STATES = (
    IntentState.SENT,
    IntentState.UNKNOWN,
    IntentState.ACKNOWLEDGED,
    IntentState.PARTIALLY_FILLED,
)


def trades_apply(*, intent: OrderIntent, trades: list[Trade]) -> OrderIntent:
    """Count the trades of one order that are not counted yet; move the order to partially
    filled or filled. Returns the intent as stored."""
    ordered = sorted(trades, key=lambda t: (t.filled_at or timezone.now(), t.trade_id))
    with transaction.atomic():
        intent = OrderIntent.objects.select_for_update().select_related("run").get(pk=intent.pk)
        if not contract_known(intent):
            return intent
        cumulative = 0
        for trade in ordered:
            cumulative += trade.quantity
            if cumulative <= intent.filled_quantity:
                # Counted already (a postback or a poll got there first): keep the trade id on
                # the fill of that figure, if there is one.
                Fill.objects.filter(
                    intent=intent, cumulative_quantity=cumulative, trade_id=""
                ).update(trade_id=trade.trade_id)
                continue
            try:
                with transaction.atomic():
                    Fill.objects.create(
                        intent=intent,
                        cumulative_quantity=cumulative,
                        quantity=cumulative - intent.filled_quantity,
                        price=trade.price,
                        filled_at=trade.filled_at or timezone.now(),
                        source="tradebook",
                        trade_id=trade.trade_id,
                    )
            except IntegrityError:
                continue  # the same trade id under another figure: counted already
            increment = cumulative - intent.filled_quantity
            value = (trade.price * increment).quantize(PAISA)
            _position_add(intent, increment, trade.price, value=value)
            intent.filled_value += value
            intent.average_price = (intent.filled_value / cumulative).quantize(PAISA)
            intent.filled_quantity = cumulative
            intent.save(
                update_fields=["filled_quantity", "filled_value", "average_price", "updated_at"]
            )
        target = (
            IntentState.FILLED
            if intent.filled_quantity >= intent.quantity
            else IntentState.PARTIALLY_FILLED
            if intent.filled_quantity
            else None
        )
        if target and target != intent.state and target in INTENT_TRANSITIONS[intent.state]:
            intent_transition(intent=intent, to=target, message="From the broker's trade book.")
    return intent


def trade_book_reconcile(*, account_id: int, adapter: Any) -> dict[str, int]:
    """Read one account's trade book once and apply it to that account's open orders of
    today. Trades of orders that are not ours (placed outside the platform) are counted and
    left alone. A failed read changes nothing (polling goes on)."""
    try:
        trades = adapter.trade_book()
    except BrokerError as exc:
        logger.info("trade book of account %s not read: %s", account_id, exc.message)
        return {"trades": 0, "orders": 0, "foreign": 0}
    by_order: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        by_order[trade.broker_order_id].append(trade)
    intents = OrderIntent.objects.filter(
        account_id=account_id, broker_order_id__in=list(by_order), state__in=OPEN_STATES
    )
    applied = 0
    for intent in intents:
        trades_apply(intent=intent, trades=by_order[intent.broker_order_id])
        applied += 1
    ours = set(
        OrderIntent.objects.filter(
            account_id=account_id, broker_order_id__in=list(by_order)
        ).values_list("broker_order_id", flat=True)
    )
    return {
        "trades": len(trades),
        "orders": applied,
        "foreign": sum(1 for order_id in by_order if order_id not in ours),
    }


def trade_books_reconcile() -> dict[str, int]:
    """Every account with open orders: read its trade book once and apply it (beat: every
    15 seconds, next to the order-status reconciler). Brokers without a trade book (paper)
    are left to polling."""
    from brokers.models import BrokerAccount
    from brokers.registry import get_adapter

    account_ids = (
        OrderIntent.objects.filter(state__in=OPEN_STATES)
        .exclude(broker_order_id="")
        .values_list("account_id", flat=True)
        .distinct()
    )
    totals = {"accounts": 0, "trades": 0, "orders": 0, "foreign": 0}
    for account in BrokerAccount.objects.filter(pk__in=list(account_ids)):
        adapter = get_adapter(account)
        if not hasattr(adapter, "trade_book"):
            continue
        result = trade_book_reconcile(account_id=account.pk, adapter=adapter)
        totals["accounts"] += 1
        for key, value in result.items():
            totals[key] += value
    return totals


# --- fast follow-up of live orders ------------------------------------------------------

# The chain's stop (see execution.orders.follow for the keys and the start): it frees the
# account, unless a start left a note meanwhile, in which case the chain goes on.
_FOLLOW_STOP = """
redis.call('DEL', KEYS[1])
if redis.call('GETDEL', KEYS[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return 1
end
return 0
"""


def follow_interval(broker: str, day: date) -> float:
    """Seconds between two rounds (each reads the trade book and the order book once): the
    configured interval, or longer where the broker's read budget on `day` asks for it
    (brokers/book_read_limits.json; a broker without a row: one read a second)."""
    from brokers.ratelimit import book_reads_per_second

    documented = book_reads_per_second(broker, day)
    budget = (1.0 if documented is None else float(documented)) * conf.follow_budget_share()
    return max(conf.follow_interval_seconds(), 2 / budget if budget > 0 else 60.0)


@dataclass(frozen=True)
class FollowRound:
    open_orders: int  # the account's live orders still open after this round
    read: bool  # both books were read and applied
    followable: bool = True  # False: not a live account that can be read (paper, logged out)


def _open_live_intents(account_id: int) -> list[OrderIntent]:
    since = timezone.now() - timedelta(days=1)
    return list(
        OrderIntent.objects.filter(
            account_id=account_id, state__in=OPEN_STATES, intended_at__gte=since
        ).order_by("pk")
    )


def _order_by_tag(orders: list[BrokerOrder], tag: str) -> BrokerOrder | None:
    # Some brokers prefix the tag they echo (the contract suite checks `endswith`).
    return next((o for o in orders if o.tag and o.tag.endswith(tag)), None)


def account_orders_follow(*, account_id: int) -> FollowRound:
    """One round of the fast follow-up: the account's trade book, then its order book, each
    read once, applied to its open orders (trades de-duplicated by trade id and cumulative
    quantity; states from the order book, an unknown order found by its tag). A failed read
    changes nothing and is retried next round. Runs touched are settled."""
    from brokers.models import AccountStatus, BrokerAccount
    from brokers.registry import get_adapter
    from execution.orders.runs import runs_settle

    account = BrokerAccount.objects.filter(pk=account_id).first()
    if account is None or account.is_paper or account.status != AccountStatus.CONNECTED:
        return FollowRound(open_orders=0, read=False, followable=False)
    intents = _open_live_intents(account_id)
    if not intents:
        return FollowRound(open_orders=0, read=False)
    adapter = get_adapter(account)
    try:
        trades = adapter.trade_book() if hasattr(adapter, "trade_book") else []
        orders = adapter.order_book()
    except BrokerError as exc:
        logger.info("books of account %s not read: %s", account_id, exc.message)
        return FollowRound(open_orders=len(intents), read=False)
    trades_by_order: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        trades_by_order[trade.broker_order_id].append(trade)
    orders_by_id = {o.broker_order_id: o for o in orders}
    for intent in intents:
        with _unless_changed_meanwhile(intent):
            if intent.broker_order_id in trades_by_order:
                intent = trades_apply(intent=intent, trades=trades_by_order[intent.broker_order_id])
            order = (
                orders_by_id.get(intent.broker_order_id)
                if intent.broker_order_id
                else _order_by_tag(orders, intent.tag)
            )
            if order is not None:
                fill_apply(intent=intent, order=order, source="poll")
    runs_settle(run_ids={i.run_id for i in intents})
    still_open = OrderIntent.objects.filter(
        pk__in=[i.pk for i in intents], state__in=OPEN_STATES
    ).count()
    return FollowRound(open_orders=still_open, read=True)


def orders_follow_step(*, account_id: int, until: float) -> tuple[float | None, float]:
    """One round for the chain of `account_id`, and when to run the next one: (seconds to
    wait, the chain's deadline), or (None, …) when the chain ends: every order final, the
    account not readable any more, or `until` passed. A start that arrived meanwhile
    extends the chain by a fresh `EXECUTION_FOLLOW_MAX_SECONDS`."""
    from brokers.models import BrokerAccount
    from execution.send.sender import engine_redis

    result = account_orders_follow(account_id=account_id)
    client = engine_redis()
    keys = follow_keys(account_id)
    ttl = int(conf.follow_max_seconds()) + FOLLOW_KEY_SLACK_SECONDS
    broker = BrokerAccount.objects.filter(pk=account_id).values_list("broker", flat=True).first()
    interval = follow_interval(broker, timezone.localdate(timezone=IST)) if broker else 0.0
    if result.followable and result.open_orders and time.time() + interval < until:
        client.set(keys[0], f"{until:.3f}", ex=ttl)
        return interval, until
    if not result.followable:
        client.delete(*keys)
        return None, until
    until = time.time() + conf.follow_max_seconds()
    stop = client.register_script(_FOLLOW_STOP)
    if stop(keys=keys, args=[f"{until:.3f}", ttl]):
        return interval, until
    return None, until
