"""Entries that reach a broker after their owner's kill switch (or the global one) engaged.

Engaging stops every unsent order it can prove unwritten; an order a sender had already marked
"about to write" may still go out (execution.protection.killswitch). Engaging flattens the
positions it sees; a fill of an entry booked after it would be a position nobody closes. So
every entry fill booked while a switch that stops its owner is engaged gets a closing order
of exactly its quantity, in the same transaction as the fill (so counted once), sent after the
commit and reported in the audit trail.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Q
from django.utils import timezone

from execution import enqueue
from execution.audit import event_build, events_record
from execution.intents.build import batches_for, close_intents
from execution.models.engine import (
    IntentState,
    KillSwitch,
    KillSwitchScope,
    OrderIntent,
    Position,
    Purpose,
)

if TYPE_CHECKING:
    from brokers.models import BrokerAccount

logger = logging.getLogger(__name__)


def closing_orders(
    *, run: Any, positions: list[Position], accounts: dict[int, BrokerAccount], purpose: str
) -> list[OrderIntent]:
    """The unsaved closing orders of `positions` for now, as the kill switch and the
    leg-failure policy close (shorts bought back first; sliced by lot, no freeze split here)."""
    return close_intents(
        run=run,
        positions=positions,
        accounts=accounts,
        purpose=purpose,
        intended_at=timezone.now(),
        freeze=lambda p: 10**9,
        lot_size=lambda p: p.lot_size,
    )


def payloads_at_once(intents: list[OrderIntent]) -> list[dict[str, Any]]:
    """The account payloads of `intents`, to send at once (no T to wait for)."""
    payloads = [b.to_json() for b in batches_for(intents, fire_at=timezone.now())]
    for payload in payloads:
        payload["fire_at"] = None
    return payloads


def kill_switch_stops(*, owner_id: int) -> bool:
    """Whether a switch that stops `owner_id` (theirs or the global one) is engaged. Inside a
    transaction on PostgreSQL the switch rows are read FOR SHARE: an engage under way (it locks
    its row) is waited for, so a fill is either seen by the engage's flatten (committed before
    it read the positions) or sees the switch engaged here, never neither."""
    switches = KillSwitch.objects.filter(Q(scope=KillSwitchScope.GLOBAL) | Q(user_id=owner_id))
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return switches.filter(engaged=True).exists()
    # Not filtered on `engaged` in SQL: a row whose committed version does not match the
    # filter would be skipped without waiting for the engage that holds it.
    sql, params = switches.values_list("engaged").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} FOR SHARE", params)
        return any(engaged for (engaged,) in cursor.fetchall())


def entry_fill_close(*, intent: OrderIntent, quantity: int) -> list[OrderIntent]:
    """Called with each fill booked on a position (inside its transaction): an entry filled
    while a switch stops its owner gets closing orders of `quantity` (sliced by lot; shorts are
    bought back in phase 0, longs sold in phase 1), sent after the commit. Returns them."""
    if intent.purpose != Purpose.ENTRY or not kill_switch_stops(owner_id=intent.run.owner_id):
        return []
    account: BrokerAccount = intent.account
    filled = Position(
        run_id=intent.run_id,
        account_id=intent.account_id,
        owner_id=intent.run.owner_id,
        leg_id=intent.leg_id,
        exchange=intent.exchange,
        tradingsymbol=intent.tradingsymbol,
        instrument_token=intent.instrument_token,
        product=intent.product,
        lot_size=intent.lot_size,
        net_quantity=quantity if intent.side == "BUY" else -quantity,
    )
    accounts = {account.pk: account}
    closing = closing_orders(
        run=intent.run, positions=[filled], accounts=accounts, purpose=Purpose.FLATTEN
    )
    OrderIntent.objects.bulk_create(closing)
    events_record(
        [
            event_build(
                kind="killswitch.entry_closed",
                message=f"{intent} filled {quantity} after the kill switch engaged (it was "
                f"already on its way to the broker): closed by {len(closing)} orders.",
                user_id=intent.run.owner_id,
                run_id=intent.run_id,
                intent_id=intent.pk,
                account_id=intent.account_id,
                data={"quantity": quantity, "closing": [c.tag for c in closing]},
            )
        ]
    )
    logger.warning("%s filled %s after a kill switch engaged: closing it", intent.tag, quantity)
    enqueue.account_sends_enqueue_on_commit(payloads_at_once(closing))
    return closing


def acknowledged_entries_cancel(*, intent_ids: list[int]) -> list[int]:
    """Entries among `intent_ids` acknowledged after a switch that stops their owner engaged
    and still open (not filled at once): cancelled like the open orders at the engage (after
    the commit, `execution.protection.killswitch.open_orders_cancel`); what fills before the
    cancel is closed by `entry_fill_close`. One query when no switch is engaged (the normal
    case). Returns the ids to cancel."""
    engaged = list(KillSwitch.objects.filter(engaged=True).values_list("scope", "user_id"))
    if not engaged:
        return []
    open_entries = OrderIntent.objects.filter(
        pk__in=intent_ids,
        purpose=Purpose.ENTRY,
        state__in=[IntentState.ACKNOWLEDGED, IntentState.PARTIALLY_FILLED],
    )
    if not any(scope == KillSwitchScope.GLOBAL for scope, _ in engaged):
        open_entries = open_entries.filter(run__owner_id__in={u for _, u in engaged if u})
    ids = list(open_entries.values_list("pk", flat=True))
    if ids:
        enqueue.task_enqueue_on_commit(enqueue.ORDERS_CANCEL, args=[ids])
    return ids
