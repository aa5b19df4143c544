"""Order lifecycle after the send: outcomes recorded, fills and positions, reconciliation.

Every state change goes through `intent_transition` (conditional UPDATE on the current state,
audit event in the same transaction). An unknown outcome is resolved by looking the tag up in
the broker's books, never by sending again: absent there for longer than the settle time it
"needs attention" (owner told in the UI and by email, the strategy's entries halt). An intent
nobody is sending any more (its worker died) is sent only when no sender ever marked it "about
to write" (execution.send.sender.wire_marks_set); a marked one is looked up like an unknown one.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from brokers.base import BrokerError, BrokerOrder, OrderStatus
from brokers.kite import postback
from execution import conf, enqueue
from execution.audit import event_build, events_record
from execution.dbfunctions import rows_update
from execution.intents import slots
from execution.models.engine import (
    INTENT_TRANSITIONS,
    OPEN_INTENT_STATES,
    UNSETTLED_INTENT_STATES,
    Fill,
    IntentState,
    OrderIntent,
    Position,
    Purpose,
    ScheduledRun,
)
from execution.orders import follow, killed
from execution.send import sender

logger = logging.getLogger(__name__)

ORPHAN_AFTER = timedelta(seconds=3)  # an unsent intent this far past T has lost its sender
# Orphans are claimed under the reconciler's own name, never the senders' of this process.
RECONCILER = sender.RECONCILER_ID
TAKEOVER_THREADS = 64


class TransitionError(ValueError):
    """The lifecycle does not allow this change of state."""


def intent_transition(
    *, intent: OrderIntent, to: str, message: str = "", **fields: Any
) -> OrderIntent:
    """Move one intent to `to` if the lifecycle allows it from its current state; the UPDATE
    is conditional on that state, so a concurrent change wins once, never twice."""
    if to not in INTENT_TRANSITIONS[intent.state]:
        raise TransitionError(f"{intent.state} → {to} is not a valid order transition.")
    with transaction.atomic():
        _runs_lock([intent.run_id])
        updated = OrderIntent.objects.filter(pk=intent.pk, state=intent.state).update(
            state=to, updated_at=timezone.now(), **fields
        )
        if not updated:
            intent.refresh_from_db()
            raise TransitionError(f"The order changed meanwhile (now {intent.state}).")
        events_record(
            [
                event_build(
                    kind=f"order.{to}",
                    message=message or f"{intent} {intent.state} → {to}",
                    user_id=intent.run.owner_id,
                    run_id=intent.run_id,
                    intent_id=intent.pk,
                    account_id=intent.account_id,
                    data={"from": intent.state, "to": to},
                )
            ]
        )
        if intent.state in UNSETTLED_INTENT_STATES and to not in UNSETTLED_INTENT_STATES:
            _failures_decide(intent, to)
    for name, value in fields.items():
        setattr(intent, name, value)
    intent.state = to
    return intent


def _failures_decide(intent: OrderIntent, to: str) -> None:
    """An unknown outcome settled: what the failover (or the leg-failure policy) waited for is
    known now. Settled as not placed, its leg moves to the next account while there is time;
    placed, the run's lots held back for it are decided (execution.protection.failover). The
    task (on the execution queue) only when the run has a failure to decide: most unknowns
    settle as placed in runs with none."""
    failed = (IntentState.REJECTED, IntentState.ABANDONED)
    if to in failed or OrderIntent.objects.filter(run_id=intent.run_id, state__in=failed).exists():
        enqueue.task_enqueue_on_commit(enqueue.RUN_FAILURES, args=[intent.run_id])


def outcomes_apply(outcomes: list[sender.Outcome]) -> None:
    """Record the hot path's outcomes in a few statements: sent, acknowledged, rejected,
    unknown or held back. Only intents still in `intent` or `sent` are changed (a reconciler
    may have got there first), and one audit event is written per order."""
    if not outcomes:
        return
    # "intent": not sent by this worker after all (another sender holds the order's claim).
    outcomes = [o for o in outcomes if o.state != IntentState.INTENT]
    if not outcomes:
        return
    by_id = {o.intent_id: o for o in outcomes}
    with transaction.atomic():
        _runs_lock({o.run_id for o in outcomes})
        intents = list(
            OrderIntent.objects.select_for_update()
            .select_related("run")
            .filter(pk__in=by_id, state__in=[IntentState.INTENT, IntentState.SENT])
        )
        events = []
        contracts = [i for i in intents if _contract_take(i, by_id[i.pk])]
        for intent in intents:
            outcome = by_id[intent.pk]
            previous = intent.state
            intent.state = outcome.state
            intent.sent_at = sender.epoch_to_datetime(outcome.sent_at)
            intent.acked_at = sender.epoch_to_datetime(outcome.acked_at)
            intent.broker_order_id = outcome.broker_order_id
            intent.error = outcome.error
            intent.attempts = outcome.attempts
            if outcome.state == IntentState.UNKNOWN:
                intent.unknown_since = timezone.now()
            events.append(
                event_build(
                    kind=f"order.{outcome.state}",
                    message=outcome.error or f"{intent} {outcome.state}",
                    user_id=intent.run.owner_id,
                    run_id=intent.run_id,
                    intent_id=intent.pk,
                    account_id=intent.account_id,
                    data={
                        "from": previous,
                        "to": outcome.state,
                        "error_class": outcome.error_class,
                        "lag_ms": intent.lag_ms,
                    },
                )
            )
        _outcome_fields_write(intents)
        if contracts:  # the dispatcher stopped before writing them (rare: none normally)
            rows_update(contracts, _CONTRACT_FIELDS)
        events_record(events)
    late_runs = {o.run_id: o.error for o in outcomes if o.error_class == "late"}
    for run_id, words in late_runs.items():
        # The owner reads it on the run (and in its audit events): what was not sent and why.
        ScheduledRun.objects.filter(pk=run_id).update(note=f"Orders not sent. {words}")
    acknowledged = [o.intent_id for o in outcomes if o.state == IntentState.ACKNOWLEDGED]
    if acknowledged:
        paper_fills_report(intent_ids=acknowledged)
        killed.acknowledged_entries_cancel(intent_ids=acknowledged)
    in_flight = (IntentState.ACKNOWLEDGED, IntentState.UNKNOWN, IntentState.SENT)
    followed = {o.account_id for o in outcomes if o.state in in_flight}
    if followed:
        # Live orders still open: read their books every second or so until they are final
        # (paper accounts are left out: their fills were just reported).
        follow.orders_follow_start(account_ids=followed)
    failed_runs = {o.run_id for o in outcomes if o.state in ("rejected", "abandoned", "unknown")}
    if failed_runs:
        for run_id in failed_runs:
            enqueue.task_enqueue_on_commit(enqueue.RUN_FAILURES, args=[run_id])


def _runs_lock(run_ids: Any) -> None:
    """Lock the runs before their intents, in id order, as every writer of intents does
    (failover and the leg-failure policy lock the run first): the audit events' foreign key
    locks the run too, and taking intents first deadlocked against run_failures_task. NO KEY
    UPDATE: it does not block the events' key-share locks of other writers."""
    ids = sorted(set(run_ids))
    if ids and connection.vendor == "postgresql":
        list(
            ScheduledRun.objects.select_for_update(no_key=True)
            .filter(pk__in=ids)
            .order_by("pk")
            .values_list("pk", flat=True)
        )


_OUTCOME_FIELDS = (
    "state",
    "sent_at",
    "acked_at",
    "broker_order_id",
    "error",
    "attempts",
    "unknown_since",
)


_CONTRACT_FIELDS = ("tradingsymbol", "instrument_token", "price", "reference_price")
CONTRACT_LOST = (
    "It may have reached the broker, and the contract it was to trade (resolved at T - ε) is "
    "no longer known to the engine (its resolution is gone): it is not guessed."
)


def contract_known(intent: OrderIntent) -> bool:
    """Whether `intent` (locked) names its real contract, after filling in a placeholder from
    the published resolution: fills and positions are booked only on a known contract."""
    if slots.unresolved(intent.tradingsymbol) and not contracts_fill([intent]):
        logger.error("%s: %s", intent.tag, CONTRACT_LOST)
        return False
    return True


def contracts_fill(intents: list[OrderIntent]) -> list[OrderIntent]:
    """Write onto `intents` still naming their contract by a placeholder the contract
    published for them at T - ε (`slots.intents_fill`; the dispatcher writes it right after
    publishing, and may have stopped in between). One statement for those filled, none when
    there are none (the normal case)."""
    filled = slots.intents_fill(intents)
    rows_update(filled, _CONTRACT_FIELDS)
    return filled


def _contract_take(intent: OrderIntent, outcome: sender.Outcome) -> bool:
    """Give `intent`, still naming its contract by a placeholder, the contract its order was
    sent with (resolved at T - ε; the dispatcher writes it onto the intents right after
    publishing it, and may have stopped in between). Returns whether it took it."""
    if not slots.unresolved(intent.tradingsymbol):
        return False
    if not outcome.tradingsymbol or slots.unresolved(outcome.tradingsymbol):
        return False  # not resolved when it was given up (never sent): nothing to take
    intent.tradingsymbol = outcome.tradingsymbol
    intent.instrument_token = outcome.instrument_token
    intent.price = None if outcome.price is None else Decimal(outcome.price)
    if outcome.reference_price is not None:
        intent.reference_price = Decimal(outcome.reference_price)
    return True


def paper_fills_report(*, intent_ids: list[int]) -> int:
    """The paper broker fills a marketable order as it accepts it: its fills reach the engine
    at once (as a postback would), not on the reconciler's next pass. Only paper accounts'
    orders are looked at (one query when there are none); returns how many were followed."""
    from brokers.registry import get_adapter

    intents = list(
        OrderIntent.objects.select_related("account", "run").filter(
            pk__in=intent_ids, account__broker="paper", state=IntentState.ACKNOWLEDGED
        )
    )
    adapters: dict[int, Any] = {}
    for intent in intents:
        if intent.account_id not in adapters:
            adapters[intent.account_id] = get_adapter(intent.account)
        intent_poll(intent=intent, adapter=adapters[intent.account_id])
    if intents:
        from execution.orders.runs import runs_settle

        runs_settle(run_ids={i.run_id for i in intents})
    return len(intents)


def _outcome_fields_write(intents: list[OrderIntent]) -> None:
    """The outcome fields of every intent, in one prepared statement (rows_update)."""
    now = timezone.now()
    for intent in intents:
        intent.updated_at = now
    rows_update(intents, (*_OUTCOME_FIELDS, "updated_at"))


def fill_apply(*, intent: OrderIntent, order: BrokerOrder, source: str = "poll") -> OrderIntent:
    """Apply the broker's view of one order: new fills (once each: keyed by the cumulative
    filled quantity), the position, and the state (partially filled, filled, cancelled,
    rejected after the acknowledgement). Never on a placeholder contract: one is filled in
    from the published resolution first, or the broker's view waits (its owner is told
    through the needs-attention state; a position is never booked on a placeholder)."""
    with transaction.atomic():
        intent = OrderIntent.objects.select_for_update().select_related("run").get(pk=intent.pk)
        if not contract_known(intent):
            return intent
        if order.filled_quantity > intent.filled_quantity:
            increment = order.filled_quantity - intent.filled_quantity
            # The broker reports the cumulative quantity and its average: their product is the
            # traded value so far. The new fill is worth that minus what is booked already
            # (a stored figure, not an average in paise times a quantity, which drifts).
            total_value = fill_value(order.average_price, order.filled_quantity)
            value = total_value - intent.filled_value
            price = (value / increment).quantize(PAISA)
            try:
                with transaction.atomic():
                    Fill.objects.create(
                        intent=intent,
                        cumulative_quantity=order.filled_quantity,
                        quantity=increment,
                        price=price,
                        filled_at=timezone.now(),
                        source=source,
                    )
            except IntegrityError:
                return intent  # this fill was applied already (duplicate postback)
            _position_add(intent, increment, price, value=value)
            intent.filled_quantity = order.filled_quantity
            intent.filled_value = total_value
            intent.average_price = (total_value / order.filled_quantity).quantize(PAISA)
            intent.save(
                update_fields=["filled_quantity", "filled_value", "average_price", "updated_at"]
            )
        target = {
            OrderStatus.FILLED: IntentState.FILLED,
            OrderStatus.PARTIALLY_FILLED: IntentState.PARTIALLY_FILLED,
            OrderStatus.CANCELLED: IntentState.CANCELLED,
            OrderStatus.REJECTED: IntentState.REJECTED,
        }.get(order.status)
        if order.status in (OrderStatus.OPEN, OrderStatus.PENDING) and intent.state in (
            IntentState.UNKNOWN,
            IntentState.NEEDS_ATTENTION,
            IntentState.SENT,
        ):
            target = IntentState.ACKNOWLEDGED
        if target and target != intent.state and target in INTENT_TRANSITIONS[intent.state]:
            extra: dict[str, Any] = {}
            if not intent.broker_order_id:
                extra["broker_order_id"] = order.broker_order_id
            if target == IntentState.REJECTED:
                extra["error"] = order.status_message or "Rejected by the broker."
            intent_transition(intent=intent, to=target, message=order.status_message, **extra)
    return intent


PAISA = Decimal("0.01")


def fill_value(average_price: Decimal | None, quantity: int) -> Decimal:
    """The traded value of `quantity` at the broker's average, to the paisa (prices are in
    ticks of paise, so the exact value of whole units has two decimals; the average a broker
    reports may carry more digits, or fewer, which this rounding absorbs once per order)."""
    return ((average_price or Decimal(0)) * quantity).quantize(PAISA)


def _position_add(
    intent: OrderIntent, quantity: int, price: Decimal, *, value: Decimal | None = None
) -> None:
    """Book a fill on the position of the run it belongs to (an exit books on its entry).
    `value` is the fill's traded value when known (else price times quantity)."""
    run = intent.run
    position_run_id = run.pk
    if intent.purpose != Purpose.ENTRY and run.entry_run_id:
        position_run_id = run.entry_run_id
    position, _ = Position.objects.select_for_update().get_or_create(
        run_id=position_run_id,
        account_id=intent.account_id,
        tradingsymbol=intent.tradingsymbol,
        defaults={
            "owner_id": run.owner_id,
            "leg_id": intent.leg_id,
            "exchange": intent.exchange,
            "instrument_token": intent.instrument_token,
            "product": intent.product,
            "lot_size": intent.lot_size,
        },
    )
    if value is None:
        value = price * quantity
    if intent.side == "BUY":
        Position.objects.filter(pk=position.pk).update(
            net_quantity=F("net_quantity") + quantity,
            buy_quantity=F("buy_quantity") + quantity,
            buy_value=F("buy_value") + value,
        )
    else:
        Position.objects.filter(pk=position.pk).update(
            net_quantity=F("net_quantity") - quantity,
            sell_quantity=F("sell_quantity") + quantity,
            sell_value=F("sell_value") + value,
        )
    # An entry that reached its broker after its owner's kill switch engaged: closed at once.
    killed.entry_fill_close(intent=intent, quantity=quantity)


def intent_poll(*, intent: OrderIntent, adapter: Any) -> OrderIntent:
    """Follow one open order at the broker (by id, or by tag when the outcome is unknown)."""
    try:
        if intent.broker_order_id:
            order: BrokerOrder | None = adapter.order_status(intent.broker_order_id)
        else:
            order = adapter.find_order_by_tag(intent.tag)
    except BrokerError as exc:
        logger.info("poll of %s failed: %s", intent.tag, exc.message)
        return intent
    if order is None:
        return unsettled_absent(intent=intent)
    return fill_apply(intent=intent, order=order)


def unsettled_absent(*, intent: OrderIntent, now: datetime | None = None) -> OrderIntent:
    """An order that may exist was not in the broker's books. It stays unknown (and is never
    sent again); past the settle time it needs attention."""
    if intent.state != IntentState.UNKNOWN:
        return intent
    now = now or timezone.now()
    since = intent.unknown_since or intent.sent_at or intent.intended_at
    if now - since <= timedelta(seconds=conf.unknown_settle_seconds()):
        return intent
    return intent_attention_raise(intent=intent)


def intent_attention_raise(*, intent: OrderIntent, why: str = "") -> OrderIntent:
    """Unknown for too long (or `why`): mark the order "needs attention", tell its owner by
    email (the runs page shows it too), and so halt the strategy's further entries (dispatch
    refuses an entry while any order of the owner's strategy needs attention). Fails closed:
    if the email cannot be sent the state still changes."""
    from django.core.mail import send_mail

    why = why or (
        f"It was not found in the broker's books {conf.unknown_settle_seconds():.0f} s after "
        "it may have been sent."
    )
    intent = intent_transition(
        intent=intent,
        to=IntentState.NEEDS_ATTENTION,
        message=(
            f"{intent}: {why} It is not sent again; the strategy's entries are halted until "
            "it is settled."
        ),
    )
    owner = intent.run.owner
    try:
        send_mail(
            subject=f"Order needs your attention: {intent.tradingsymbol} ({intent.tag})",
            message=(
                f"We may have sent {intent.side} {intent.quantity} {intent.tradingsymbol} "
                f"(tag {intent.tag}) to your broker account {intent.account}. {why} It will "
                "not be sent again. Check the order book at your broker; new entries of this "
                "strategy are halted until the order is found or you mark it as not placed."
            ),
            from_email=None,
            recipient_list=[owner.email],
        )
    except Exception:  # the alert on the runs page and the audit event remain
        logger.exception("could not email the owner about order %s", intent.tag)
    return intent


def intent_attention_dismiss(*, intent: OrderIntent, user: Any) -> OrderIntent:
    """The owner confirms at the broker that an order needing attention does not exist: it
    is closed as not sent (never sent again), which lifts the halt on the strategy."""
    if intent.run.owner_id != user.pk:
        raise TransitionError("Only the order's owner can settle it.")
    return intent_transition(
        intent=intent,
        to=IntentState.ABANDONED,
        message=f"{intent}: confirmed absent at the broker by its owner; not sent again.",
    )


# An earlier phase's order in one of these states is placed: a later phase waiting for its
# hedges may go. Still unsent (another sender's, or deferred): the later phase waits. Any other
# state (unknown, rejected, not sent): the later phase is held back, as on the hot path.
_PLACED_STATES = (
    IntentState.ACKNOWLEDGED,
    IntentState.PARTIALLY_FILLED,
    IntentState.FILLED,
)
_PENDING_STATES = (IntentState.INTENT, IntentState.SENT)


def _adapter_of(intent: OrderIntent) -> Any:
    from brokers.registry import get_adapter

    return get_adapter(intent.account)


def orphans_finish(
    orphans: list[OrderIntent],
    *,
    adapters: dict[int, Any],
    look_first: bool,
    unclaimed: bool = True,
    threads: int = 16,
    now: datetime | None = None,
) -> dict[str, int]:
    """Finish unsent intents (state `intent`) whose sender is gone: each is claimed (only from
    a claimant that is not alive, compare-and-set), then

    - marked "about to write" by some sender: maybe on the wire, so looked up by tag: found,
      the broker's state applies; absent, unknown (looked up again, never sent again);
    - never marked: provably never written, so sent now (late, within the lateness cap and
      the session guard), hedges first: a later phase that waits for its hedges goes only
      when every earlier-phase order of its run on that account is placed; one that is
      unknown, rejected or not sent holds it back ("not sent", the owner told), one still
      unsent leaves it for a later pass. `look_first`: look an unmarked order up by tag
      before sending it anyway (the periodic reconciler, which may run long after a Redis
      restart); the fast take-over right after T relies on the marks alone. `unclaimed`
      False: orders nobody claimed are taken only when a dead claimant is seen among them
      (its fetched tasks never start); else they may be a live worker's late tasks. `now`:
      the clock lateness is judged on (a simulated session passes its own; default the wall
      clock).

    Returns counts by what happened ("sent", "found", "unknown", "skipped", "waiting")."""
    counts = {"sent": 0, "found": 0, "unknown": 0, "skipped": 0, "waiting": 0}
    if not orphans:
        return counts
    sender.heartbeat_start()  # others see this process's claims as alive
    owners = sender.claim_owners(i.tag for i in orphans)
    alive: dict[str, bool] = {}
    for owner in {o for o in owners.values() if o is not None}:
        alive[owner] = sender.worker_alive(owner)
    unclaimed = unclaimed or not all(alive.values())
    taken = sender.claims_take_over(
        {t: o for t, o in owners.items() if (o is None and unclaimed) or (o and not alive[o])},
        owner=RECONCILER,
    )
    mine = [i for i in orphans if i.tag in taken]
    counts["skipped"] = len(orphans) - len(mine)
    contracts_fill(mine)
    for intent in mine:
        if intent.account_id not in adapters:
            adapters[intent.account_id] = _adapter_of(intent)
    # Read after the claims are ours: a stalled former claimant can no longer set a mark.
    maybe_written = sender.wire_marked(i.tag for i in mine)
    phases: dict[int, list[OrderIntent]] = {}
    for intent in sorted(mine, key=lambda i: i.phase):
        phases.setdefault(intent.phase, []).append(intent)
    # What this pass learnt of each order (its state), for the later phases' hedge check:
    # the per-order records of found and unknown ones (slow) are written after every phase
    # was sent, so that a short never waits for its hedge's bookkeeping.
    resolved: dict[int, str] = {}
    later: list[tuple[OrderIntent, str, Any]] = []
    for phase, intents in phases.items():
        due, held, waiting = _hedges_first(phase, intents, maybe_written, resolved)
        for intent in waiting:
            sender.claim_release(intent.tag, owner=RECONCILER)  # a later pass decides
        counts["waiting"] += len(waiting)
        outcomes = [
            sender.held_back(sender.OutgoingOrder(**_outgoing_fields(i)), i.account_id)
            for i in held
        ]
        resolved.update(dict.fromkeys((i.pk for i in held), IntentState.ABANDONED))
        counts["held"] = counts.get("held", 0) + len(outcomes)
        results = _orphans_resolve(
            due, adapters, maybe_written, look_first=look_first, threads=threads, now=now
        )
        for intent, kind, value in results:
            counts[kind] += 1
            if kind == "sent" and value.state == IntentState.INTENT:
                if value.error_class != "not_ours":
                    # Not written after all (no orders-per-second slot came free): handed
                    # back, so the next pass (of any worker) takes it up again.
                    sender.claim_release(value.tag, owner=RECONCILER)
                counts["sent"] -= 1
                counts["waiting"] += 1
            elif kind == "sent":
                outcomes.append(value)
                resolved[intent.pk] = value.state
            elif kind in ("found", "unknown"):
                later.append((intent, kind, value))
                resolved[intent.pk] = (
                    IntentState.ACKNOWLEDGED if kind == "found" else IntentState.UNKNOWN
                )
        outcomes_apply(outcomes)  # one transaction (conditional on the state)
    _orphans_record(later)
    return counts


def _hedges_first(
    phase: int, intents: list[OrderIntent], maybe_written: set[str], resolved: dict[int, str]
) -> tuple[list[OrderIntent], list[OrderIntent], list[OrderIntent]]:
    """Split one phase's orphans into (to resolve now, to hold back, to leave for later) by
    the states of the earlier phases of their run on the same account (one query; `resolved`:
    the states this pass found, not yet written). A marked order is always resolved: it is
    only looked up, never written here."""
    checked = {
        i.pk: i for i in intents if i.waits_for_hedges and i.tag not in maybe_written and phase > 0
    }
    earlier: dict[tuple[int, int], list[str]] = {}
    if checked:
        for pk, run_id, account_id, state in OrderIntent.objects.filter(
            run_id__in={i.run_id for i in checked.values()},
            account_id__in={i.account_id for i in checked.values()},
            phase__lt=phase,
        ).values_list("pk", "run_id", "account_id", "state"):
            earlier.setdefault((run_id, account_id), []).append(resolved.get(pk, state))
    due, held, waiting = [], [], []
    for intent in intents:
        key = (intent.run_id, intent.account_id)
        states = earlier.get(key, []) if intent.pk in checked else []
        if all(s in _PLACED_STATES for s in states):
            due.append(intent)
        elif any(s in _PENDING_STATES for s in states):
            waiting.append(intent)
        else:
            held.append(intent)
    return due, held, waiting


def _orphans_resolve(
    mine: list[OrderIntent],
    adapters: dict[int, Any],
    maybe_written: set[str],
    *,
    look_first: bool,
    threads: int,
    now: datetime | None = None,
) -> list[tuple[OrderIntent, str, Any]]:
    """Look up, or send, one phase of claimed orphans side by side (no database write):
    (intent, "found" | "unknown" | "sent" | "skipped", the broker's order or the outcome)."""
    # Lateness is judged on the clock of `now` (a simulated session passes its own): each T
    # moves onto the wall clock the sender reads, keeping how late it is at `now`.
    shift = time.time() - now.timestamp() if now is not None else 0.0
    outgoing = {}
    for intent in mine:
        fields = _outgoing_fields(intent)
        if fields.get("intended_at"):
            fields["intended_at"] += shift
        outgoing[intent.tag] = sender.OutgoingOrder(**fields)
    # The session guard, here in this thread (the sends below run on a thread pool).
    at = time.time()
    closed = sender.session_refusals(outgoing.values(), at=dict.fromkeys(outgoing, at))

    def resolve(intent: OrderIntent) -> tuple[str, Any]:
        adapter = adapters[intent.account_id]
        marked = intent.tag in maybe_written
        if marked and slots.unresolved(intent.tradingsymbol):
            # Maybe on the wire, and what it trades is no longer known (its resolution is
            # gone): never guessed, its owner settles it.
            return "unknown", "contract"
        if marked or look_first:
            try:
                found = adapter.find_order_by_tag(intent.tag)
            except BrokerError:
                if marked:
                    return "unknown", None
                # Not knowing whether it exists, nothing is sent; the claim is handed back so
                # the next pass (of any worker) looks again, instead of this live worker's
                # claim keeping every reconciler away from it.
                sender.claim_release(intent.tag, owner=RECONCILER)
                return "skipped", None
            if found is not None:
                return "found", found
            if marked:
                return "unknown", None
        order = outgoing[intent.tag]
        if slots.unresolved(order.tradingsymbol):
            # Its contract was never resolved (the dispatch stopped before T - ε, or its
            # batch was lost): reported, never guessed.
            return "sent", sender.Outcome.of(
                order,
                intent.account_id,
                state=IntentState.ABANDONED,
                error="Not sent: its contract was never resolved before T (the dispatch of "
                "its boundary stopped or its batch was lost).",
                error_class="blocked",
            )
        if intent.tag in closed:
            return "sent", sender.closed_outcome(order, intent.account_id, closed[intent.tag])
        return "sent", sender.send_one(
            adapter,
            order,
            intent.account_id,
            ops_limit=intent.account.orders_per_second,
            session_checked=True,
            owner=RECONCILER,
        )

    results = _side_by_side(resolve, mine, threads=threads)
    return [(intent, kind, value) for intent, (kind, value) in zip(mine, results, strict=True)]


def _orphans_record(results: list[tuple[OrderIntent, str, Any]]) -> None:
    """Write what the lookups found: acknowledged (and its fills), or unknown."""
    for intent, kind, value in results:
        with _unless_changed_meanwhile(intent):
            if kind == "found":
                intent_transition(
                    intent=intent,
                    to=IntentState.ACKNOWLEDGED,
                    message="Found at the broker by its tag after its sender stopped.",
                    broker_order_id=value.broker_order_id,
                    acked_at=timezone.now(),
                )
                fill_apply(intent=intent, order=value, source="reconcile")
            elif value == "contract":
                intent = intent_transition(
                    intent=intent,
                    to=IntentState.UNKNOWN,
                    message=CONTRACT_LOST,
                    unknown_since=timezone.now(),
                )
                intent_attention_raise(intent=intent, why=CONTRACT_LOST)
            else:
                intent_transition(
                    intent=intent,
                    to=IntentState.UNKNOWN,
                    message=(
                        "Its sender stopped after marking it about to be written, and the "
                        "broker's books do not show it (yet): looked up again, never sent again."
                    ),
                    unknown_since=timezone.now(),
                )


def boundary_orphans_take_over(*, fire_at: datetime) -> dict[str, int]:
    """Right after T, on a surviving worker: finish the unsent orders of boundary `fire_at`
    whose claimant is dead (its liveness key expired) or that nobody claimed (a dead worker's
    task, fetched and never started; before ORPHAN_AFTER only when a dead claimant is seen),
    without waiting for the dead worker's restart. Orders a live sender holds are left to
    it. Returns the counts of `orphans_finish`, "unsent" (the boundary's orders found unsent)
    and "taken" (those this pass claimed)."""
    # Every worker runs this each TAKEOVER_EVERY from a second after T, while the boundary's
    # orders are still being sent and their outcomes not yet written: it reads only tags and
    # claims (a few ms for 10,000 orders), and loads in full only the orders a dead claimant
    # holds (or nobody does, when they are to be taken: see orphans_finish).
    unsent = list(
        OrderIntent.objects.filter(state=IntentState.INTENT, intended_at=fire_at).values_list(
            "pk", "tag"
        )
    )
    late = timezone.now() - fire_at >= ORPHAN_AFTER
    owners = sender.claim_owners(tag for _, tag in unsent) if unsent else {}
    alive = {o: sender.worker_alive(o) for o in set(owners.values()) if o is not None}
    take_unclaimed = late or not all(alive.values())
    suspects = [
        pk
        for pk, tag in unsent
        if ((owner := owners[tag]) is None and take_unclaimed) or (owner and not alive[owner])
    ]
    orphans = (
        list(OrderIntent.objects.select_related("account", "run").filter(pk__in=suspects))
        if suspects
        else []
    )
    # Within the entry cap, a dead worker's share of a boundary (hundreds of orders): more
    # threads than a periodic pass, each mostly waiting for its broker's answer.
    counts = orphans_finish(
        orphans, adapters={}, look_first=False, unclaimed=late, threads=TAKEOVER_THREADS
    )
    counts["skipped"] += len(unsent) - len(orphans)
    counts["unsent"] = len(unsent)
    counts["taken"] = len(unsent) - counts["skipped"]
    return counts


def open_orders_reconcile(*, now: datetime | None = None, poll_limit: int = 200) -> dict[str, int]:
    """Bring open orders up to date with their brokers, and finish the sends of dead workers.

    Runs at worker start and periodically (beat). First the urgent part: intents still unsent
    past their time whose claimant is not alive are claimed and finished (`orphans_finish`:
    found at the broker by tag, unknown when maybe written, or sent when provably never on
    the wire, hedges first). Then up to `poll_limit` open orders (least recently updated
    first) are polled. Broker calls run side by side (one thread per order, bounded); database
    writes happen here, after them."""
    now = now or timezone.now()
    counts = {"polled": 0, "sent": 0, "found": 0, "skipped": 0, "waiting": 0, "unknown": 0}
    since = now - timedelta(days=1)
    # Unsent intents whose T has passed but not yet by ORPHAN_AFTER: their senders may still
    # be at work, or dead. A reconciler that runs early (a worker restarted just after T) must
    # look again, or nobody would (reconcile_open_orders_task repeats while any are waiting).
    counts["waiting"] = OrderIntent.objects.filter(
        state=IntentState.INTENT, intended_at__gt=now - ORPHAN_AFTER, intended_at__lte=now
    ).count()
    orphans = list(
        OrderIntent.objects.select_related("account", "run").filter(
            state=IntentState.INTENT, intended_at__gte=since, intended_at__lte=now - ORPHAN_AFTER
        )
    )
    counts["contracts"] = _sent_contracts_fill(since, now - ORPHAN_AFTER)
    adapters: dict[int, Any] = {}
    for kind, n in orphans_finish(orphans, adapters=adapters, look_first=True, now=now).items():
        counts[kind] = counts.get(kind, 0) + n

    def adapter_for(intent: OrderIntent) -> Any:
        if intent.account_id not in adapters:
            adapters[intent.account_id] = _adapter_of(intent)
        return adapters[intent.account_id]

    to_poll = list(
        OrderIntent.objects.select_related("account", "run")
        .filter(state__in=OPEN_INTENT_STATES, intended_at__gte=since)
        .order_by("updated_at")[:poll_limit]
    )
    for intent in to_poll:
        adapter_for(intent)

    def look(intent: OrderIntent) -> Any:
        adapter = adapters[intent.account_id]
        try:
            if intent.broker_order_id:
                return adapter.order_status(intent.broker_order_id)
            return adapter.find_order_by_tag(intent.tag)
        except BrokerError as exc:
            logger.info("poll of %s failed: %s", intent.tag, exc.message)
            return exc

    for intent, order in zip(to_poll, _side_by_side(look, to_poll), strict=True):
        counts["polled"] += 1
        with _unless_changed_meanwhile(intent):
            if isinstance(order, BrokerError):
                if intent.state == IntentState.UNKNOWN:
                    # A lookup that keeps failing must not keep the order unknown for ever.
                    unsettled_absent(intent=intent, now=now)
            elif order is None:
                unsettled_absent(intent=intent, now=now)
            else:
                fill_apply(intent=intent, order=order)
    if not to_poll:
        return counts
    from execution.orders.runs import runs_settle

    runs_settle(run_ids={i.run_id for i in to_poll})
    # Polled rows that did not change still count as looked at, so the next pass moves on.
    OrderIntent.objects.filter(pk__in=[i.pk for i in to_poll]).update(updated_at=timezone.now())
    return counts


def _sent_contracts_fill(since: datetime, until: datetime) -> int:
    """Orders past their T that went to a broker with their intent still naming a placeholder
    (their outcome was recorded without the contract, by a worker of before it carried it)
    get the contract published for them; one whose resolution is gone and whose state still
    allows it needs attention (its owner told), never a guessed contract. Returns how many
    were filled in (one query per pass, none found normally)."""
    stale = list(
        OrderIntent.objects.select_related("account", "run")
        .filter(
            tradingsymbol__startswith=slots.PREFIX, intended_at__gte=since, intended_at__lte=until
        )
        .exclude(state__in=[IntentState.INTENT, IntentState.ABANDONED])
    )
    filled = contracts_fill(stale)
    for intent in stale:
        if not slots.unresolved(intent.tradingsymbol):
            continue
        with _unless_changed_meanwhile(intent):
            if intent.state == IntentState.SENT:
                intent = intent_transition(
                    intent=intent,
                    to=IntentState.UNKNOWN,
                    message=CONTRACT_LOST,
                    unknown_since=timezone.now(),
                )
            if intent.state in (IntentState.UNKNOWN, IntentState.ACKNOWLEDGED):
                intent_attention_raise(intent=intent, why=CONTRACT_LOST)
            elif intent.state != IntentState.NEEDS_ATTENTION:
                logger.error("%s (%s): %s", intent.tag, intent.state, CONTRACT_LOST)
    return len(filled)


@contextlib.contextmanager
def _unless_changed_meanwhile(intent: OrderIntent) -> Iterator[None]:
    """Another reconciler (every worker runs one at start-up) or the sender changed this
    order first: its change stands, this pass moves on to the next order."""
    try:
        yield
    except TransitionError as exc:
        logger.info("%s: %s", intent.tag, exc)


def _side_by_side(call: Any, items: list[OrderIntent], *, threads: int = 16) -> list[Any]:
    """`call` over `items`: network brokers' calls on a small thread pool; the paper broker's
    in this thread (it books in the database, which a thread would reach on another
    connection, outside the caller's transaction)."""
    from concurrent.futures import ThreadPoolExecutor

    remote = [i for i in items if not i.account.is_paper]
    results: dict[int, Any] = {}
    if len(remote) > 1:
        with ThreadPoolExecutor(max_workers=min(threads, len(remote))) as pool:
            results = dict(zip([id(i) for i in remote], pool.map(call, remote), strict=True))
    return [results[id(i)] if id(i) in results else call(i) for i in items]


def _outgoing_fields(intent: OrderIntent) -> dict[str, Any]:
    from execution.intents.build import outgoing

    return outgoing(intent)


def kite_postback_apply(*, payload: dict[str, Any]) -> OrderIntent:
    """Apply a Kite order postback: the checksum (hex SHA-256 of order_id + order_timestamp +
    the app's api_secret) must verify for the account that placed the order, else nothing is
    applied (the Kite-specific reading and checking is brokers.kite.postback). Raises
    PostbackRefusedError for a refused one. Duplicates count once (fills are keyed by cumulative
    quantity)."""
    order_id = postback.postback_order_id(payload)
    intent = (
        OrderIntent.objects.select_related("account", "run")
        .filter(broker_order_id=order_id, account__broker="kite")
        .first()
        if order_id
        else None
    )
    if intent is None:
        raise postback.PostbackRefusedError("No order of ours has this order id.")
    if not postback.postback_checksum_ok(payload, api_secret=intent.account.api_secret):
        events_record(
            [
                event_build(
                    kind="postback.refused",
                    message="A Kite postback with a wrong checksum was ignored.",
                    user_id=intent.run.owner_id,
                    intent_id=intent.pk,
                    account_id=intent.account_id,
                )
            ]
        )
        raise postback.PostbackRefusedError("The checksum does not verify.")
    return fill_apply(intent=intent, order=postback.postback_order(payload), source="postback")
