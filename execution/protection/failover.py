"""After a boundary's sends: move a failed account's lots to the next account by priority,
or, when nowhere is left, run the strategy's leg-failure policy so no short is left naked.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction

from brokers.models import BrokerAccount
from execution.audit import event_build, events_record
from execution.intents import marketable
from execution.intents.build import (
    algo_id_for,
    new_tag,
    outgoing,
)
from execution.models.engine import (
    UNSETTLED_INTENT_STATES,
    IntentState,
    OrderIntent,
    Position,
    Purpose,
    RunState,
    ScheduledRun,
)
from execution.orders import killed
from execution.planning.sources import AccountAllocation
from execution.send import sender
from execution.send.sender import MISSED_PREFIX

logger = logging.getLogger(__name__)

# An account whose order was refused for one of these reasons failed "permanently" for this
# boundary: its remaining lots go elsewhere. (Retryable errors were retried on the hot path.)
FAILED_STATES = (IntentState.REJECTED, IntentState.ABANDONED)
FINAL_RUN_STATES = (RunState.EXITED, RunState.COMPLETED)


def run_failures_handle(*, run_id: int) -> list[dict[str, Any]]:
    """Fail over or apply the leg-failure policy for one run; returns account payloads to send
    now (already committed as intents). Safe to run twice: failed intents are moved once."""
    payloads: list[dict[str, Any]] = []
    with transaction.atomic():
        run = (
            ScheduledRun.objects.select_for_update()
            .select_related("strategy_version__strategy")
            .get(pk=run_id)
        )
        intents = list(OrderIntent.objects.filter(run=run).select_related("account"))
        failed = [
            i
            for i in intents
            if i.state in FAILED_STATES and not any(f.failover_from_id == i.pk for f in intents)
        ]
        if not failed or run.state in FINAL_RUN_STATES:
            # Final: an outcome settled long after (the owner confirming, hours later, that an
            # order needing attention was never placed) changes nothing of a run already
            # exited or completed.
            return payloads
        if killed.kill_switch_stops(owner_id=run.owner_id):
            # Nothing more goes out for this owner: engaging flattened their positions, and a
            # fill that reached a broker since is closed as it is booked.
            return payloads
        # An account with an unknown outcome keeps its failed lots until the reconciler has
        # found out by tag (a short held back for an unknown hedge must not move without it);
        # another account's unknown does not hold them: a failed order was certainly not
        # placed, and a broker down for the boundary must fail over while there is time.
        unsettled = {i.account_id for i in intents if i.state in UNSETTLED_INTENT_STATES}
        failed_accounts = {i.account_id for i in failed}
        allocations = sorted(
            (AccountAllocation.from_json(a) for a in run.allocations), key=lambda a: a.priority
        )
        used = {i.account_id for i in intents}
        healthy = [
            a
            for a in allocations
            if a.account_id not in failed_accounts
            and not any(i.account_id == a.account_id and i.state in FAILED_STATES for i in intents)
        ]
        events = []
        moved: list[OrderIntent] = []
        # An entry missed for lateness would be as late on any other account: the run's
        # leg-failure policy decides what becomes of the legs already placed.
        late = any(i.error.startswith(MISSED_PREFIX) for i in failed)
        movable = [i for i in failed if i.account_id not in unsettled]
        # A failure learnt late (an unknown outcome settled as not placed by the reconciler):
        # past the entry lateness cap its leg is missed, not moved.
        overdue = _missed_words(movable) if run.boundary == "entry" and not late else ""
        if overdue:
            late = True
            events.append(
                event_build(
                    kind="run.failover_missed",
                    message=f"{len(movable)} orders not moved to another account. {overdue}",
                    user_id=run.owner_id,
                    run_id=run.pk,
                )
            )
            run.note = f"Orders not sent. {overdue}"
            run.save(update_fields=["note"])
        if healthy and run.boundary == "entry" and not late:
            by_account: dict[int, list[OrderIntent]] = defaultdict(list)
            for intent in movable:
                by_account[intent.account_id].append(intent)
            for account_id, lost in by_account.items():
                target = _next_account(allocations, account_id, healthy)
                account = BrokerAccount.objects.get(pk=target.account_id)
                for intent in lost:
                    moved.append(
                        _moved_intent(intent, account, algo_id_for(run=run, account=account))
                    )
                    if intent.state == IntentState.REJECTED:
                        intent.state = IntentState.FAILED_OVER
                events.append(
                    event_build(
                        kind="run.failover",
                        message=f"{len(lost)} orders moved from account {account_id} to "
                        f"{account.label} after: {lost[0].error or 'a permanent failure'}",
                        user_id=run.owner_id,
                        run_id=run.pk,
                        account_id=account_id,
                        data={"to_account": account.pk, "used": sorted(used)},
                    )
                )
            OrderIntent.objects.bulk_create(moved)
            OrderIntent.objects.bulk_update(
                [i for i in movable if i.state == IntentState.FAILED_OVER], ["state"]
            )
            payloads = killed.payloads_at_once(moved)  # T has passed
        elif unsettled:
            return payloads  # the policy needs every outcome: resolved by tag first
        elif run.state != RunState.HALTED:
            payloads = leg_failure_policy_apply(run=run, intents=intents, events=events)
        # A run already halted had its policy applied (its closing orders written): another
        # failure of the same run (a later missed or rejected order) must not close the same
        # positions a second time (an over-close is a naked position the other way).
        events_record(events)
    return payloads


def _missed_words(intents: list[OrderIntent]) -> str:
    """The sender's words for an entry too late to send (\"Missed: N s late…\"), judged on
    the earliest T of `intents`; \"\" within the cap."""
    if not intents:
        return ""
    first = min(intents, key=lambda i: i.intended_at)
    return sender.missed(sender.OutgoingOrder(**outgoing(first)))


def _next_account(
    allocations: list[AccountAllocation], failed_id: int, healthy: list[AccountAllocation]
) -> AccountAllocation:
    failed_priority = next((a.priority for a in allocations if a.account_id == failed_id), 0)
    later = [a for a in healthy if a.priority > failed_priority]
    return (later or healthy)[0]


def _notation(broker: str) -> str:
    return "kite" if broker == "paper" else broker  # the paper broker speaks Kite's notation


def _symbol_at(intent: OrderIntent, broker: str) -> tuple[str, str]:
    """The intent's contract in `broker`'s own symbol and token: every broker names a contract
    its own way, so an order moved to another broker must be renamed."""
    from execution.reference import instruments

    source = _notation(intent.account.broker)
    if source == _notation(broker):
        return intent.tradingsymbol, intent.instrument_token
    try:
        instrument = instruments.instrument_from_broker_symbol(source, intent.tradingsymbol)
        return instruments.broker_symbol(instrument, _notation(broker))
    except (LookupError, ObjectDoesNotExist):
        # Unknown here: sent as it was, and the broker refuses it in words.
        logger.warning("no %s symbol for %s", broker, intent.tradingsymbol)
        return intent.tradingsymbol, intent.instrument_token


def _moved_intent(intent: OrderIntent, account: BrokerAccount, algo_id: str) -> OrderIntent:
    tradingsymbol, token = _symbol_at(intent, account.broker)
    moved = OrderIntent(
        run_id=intent.run_id,
        leg_id=intent.leg_id,
        account=account,
        purpose=intent.purpose,
        slice_no=intent.slice_no,
        phase=intent.phase,
        waits_for_hedges=intent.waits_for_hedges,
        side=intent.side,
        exchange=intent.exchange,
        tradingsymbol=tradingsymbol,
        instrument_token=str(token),
        product=intent.product,
        order_type=intent.order_type,
        price=intent.price,
        quantity=intent.quantity,
        lot_size=intent.lot_size,
        algo_id=algo_id,
        tag=new_tag(intent.purpose),
        intended_at=intent.intended_at,
        failover_from=intent,
        reference_price=intent.reference_price,
    )
    # The next account's broker may refuse MARKET orders (or take them where the failed one
    # did not): its terms come from the same reference price.
    problem = marketable.terms_apply(moved, broker=account.broker, tick=None)
    if problem:
        logger.warning("moved order left as %s: %s", moved.order_type, problem)
    return moved


def leg_failure_policy_apply(
    *, run: ScheduledRun, intents: list[OrderIntent], events: list[Any]
) -> list[dict[str, Any]]:
    """Nowhere left to place a failed leg. UNWIND: close every leg already filled (shorts
    bought back first). HALT: close only shorts left without their hedge, halt the run and
    pause the strategy, and tell the trader. Either way no naked short remains."""
    from trader.models import LegFailurePolicy, Strategy, StrategyStatus

    strategy = run.strategy_version.strategy
    positions = list(Position.objects.filter(run=run).exclude(net_quantity=0))
    if strategy.leg_failure_policy == LegFailurePolicy.HALT:
        long_by_account = {p.account_id for p in positions if p.net_quantity > 0}
        to_close = [
            p for p in positions if p.net_quantity < 0 and p.account_id not in long_by_account
        ]
        Strategy.objects.filter(pk=strategy.pk).update(status=StrategyStatus.PAUSED)
        message = "A leg could not be placed on any account: strategy halted and paused"
    else:
        to_close = positions
        message = "A leg could not be placed on any account: filled legs unwound"
    # Orders not sent yet are dropped: nothing more goes out for this run. Only those proved
    # never written and made unwritable (claimed, unmarked): one a live sender holds or one
    # marked "about to write" (maybe on the wire, its sender dead) keeps its state until its
    # sender, or the lookup by tag, records what became of it. Dropped while on the wire, it
    # would be a position at the broker that the platform holds as never sent.
    unsent = [i.tag for i in intents if i.state == IntentState.INTENT]
    OrderIntent.objects.filter(
        run=run, state=IntentState.INTENT, tag__in=sender.unsent_stop(unsent)
    ).update(
        state=IntentState.ABANDONED, error="Not sent: the leg-failure policy stopped this run."
    )
    accounts = {
        a.pk: a for a in BrokerAccount.objects.filter(pk__in={p.account_id for p in to_close})
    }
    closing = killed.closing_orders(
        run=run, positions=to_close, accounts=accounts, purpose=Purpose.UNWIND
    )
    OrderIntent.objects.bulk_create(closing)
    run.state = RunState.HALTED
    run.note = message
    run.save(update_fields=["state", "note"])
    events.append(
        event_build(
            kind="run.leg_failure_policy",
            message=f"{message} ({len(closing)} closing orders).",
            user_id=run.owner_id,
            run_id=run.pk,
            data={"policy": strategy.leg_failure_policy, "closing": len(closing)},
        )
    )
    return killed.payloads_at_once(closing)
