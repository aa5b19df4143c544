"""Fills from the brokers' trade books (item 5), counted once with postbacks and polling.

A trade book lists each fill with the broker's trade id. The trades of one order, oldest
first, bring it to cumulative quantities q1 < q2 < …: a trade is new only if its cumulative
quantity is above what we already counted for the order (from a postback, a poll or an
earlier read of the book), and it is stored under that cumulative quantity and its trade id.
The same fill reported by a postback ("filled 65") and by the book (trade T1, 65) therefore
lands on the same key and is counted once; the book's trade id is kept on it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.base import BrokerError
from brokers.trades import Trade
from execution.models.engine import Fill, IntentState, OrderIntent
from execution.orders.lifecycle import INTENT_TRANSITIONS, _position_add, intent_transition

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
            _position_add(intent, increment, trade.price)
            value = (intent.average_price or Decimal(0)) * intent.filled_quantity
            intent.average_price = ((value + trade.price * increment) / cumulative).quantize(
                Decimal("0.01")
            )
            intent.filled_quantity = cumulative
            intent.save(update_fields=["filled_quantity", "average_price", "updated_at"])
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
