"""`bench_boundary --fault-rate F --seed S`: the fault plan follows the seed and the orders'
places (never their random tags or arrival order), and the accounting counts duplicates and
lost lots across failover. Nothing here depends on timing."""

from __future__ import annotations

import secrets

import pytest

from execution.audit import event_build, events_record
from execution.bench import not_arrived_accounting
from execution.bench_faults import (
    FAULT_KINDS,
    PlannedAccount,
    PlannedOrder,
    chains,
    fault_accounting,
    fault_plan,
    injected_faults,
    order_fault,
)
from tests.execution.engine_factories import IntentFactory, RunFactory

STRATEGIES, LEGS = 200, 4


def _boundary() -> tuple[list[PlannedOrder], list[PlannedAccount]]:
    """200 strategies x 4 legs x 2 accounts (kite first, upstox its fallback), fresh tags."""
    orders, accounts = [], []
    for s in range(STRATEGIES):
        for a, broker in enumerate(("kite", "upstox")):
            api_key = f"b{secrets.token_hex(3)}u{s}a{a}"
            accounts.append(PlannedAccount(f"s{s}/a{a}", broker, api_key, has_fallback=a == 0))
            for leg in range(1, LEGS + 1):
                tag = "E" + secrets.token_hex(7)
                orders.append(PlannedOrder(tag, f"s{s}/a{a}/l{leg}/n1/entry", broker, api_key))
    return orders, accounts


def test_the_same_seed_plans_the_same_faults_whatever_the_tags():
    first_orders, first_accounts = _boundary()
    again_orders, again_accounts = _boundary()  # another run: other tags and api keys
    first = fault_plan(7, 0.2, first_orders, first_accounts)
    again = fault_plan(7, 0.2, again_orders, again_accounts)
    assert first.by_key(first_orders) == again.by_key(again_orders)
    assert first.planned == again.planned
    other = fault_plan(8, 0.2, first_orders, first_accounts)
    assert other.by_key(first_orders) != first.by_key(first_orders)


def test_the_rate_is_the_share_of_orders_with_a_fault_mixed_over_every_kind():
    orders, accounts = _boundary()
    plan = fault_plan(11, 0.2, orders, accounts)
    faulted = sum(plan.planned.values())
    assert 0.15 * len(orders) < faulted < 0.25 * len(orders)
    assert set(plan.planned) == set(FAULT_KINDS)
    # Only accounts with a fallback go down, and all of their orders with them.
    down = set(plan.down["kite"])
    assert down and not plan.down["upstox"]
    assert plan.planned["down"] == LEGS * len(down)
    assert not any(o.tag in plan.tags["kite"] for o in orders if o.api_key in down)
    assert fault_plan(11, 0.0, orders, accounts).planned == {}


def test_an_orders_fault_carries_what_the_emulator_needs():
    faults = [order_fault(3, 1.0, f"s{i}/a1/l1/n1/entry") for i in range(300)]
    by_kind = {f["kind"]: f for f in faults if f}
    assert 1 <= by_kind["429"]["count"] <= 3
    assert 1.0 <= by_kind["book-lag"]["seconds"] <= 5.0
    assert 1.0 <= by_kind["lookup-fail"]["seconds"] <= 6.0
    assert order_fault(3, 1.0, "s1/a1/l1/n1/entry") == faults[1]  # no hidden state


def test_a_failover_chain_is_one_lot_leg():
    rows = [(1, "A", None), (2, "B", None), (3, "A2", 1), (4, "A3", 3)]
    assert chains(rows) == [["A", "A2", "A3"], ["B"]]


def test_injected_faults_count_orders_not_attempts():
    logs = [
        {"tag": "x", "fault": "429", "outcome": "rate"},
        {"tag": "x", "fault": "429", "outcome": "rate"},
        {"tag": "x", "fault": None, "order_id": "1"},
        {"tag": "y", "fault": "down"},
        {"tag": "z", "fault": "drop", "order_id": "2"},
    ]
    assert injected_faults(logs) == {"429": 1, "down": 1, "drop": 1}


@pytest.mark.django_db
def test_the_accounting_counts_a_leg_placed_at_two_brokers_and_a_silent_loss():
    run = RunFactory()
    owner = run.owner_id

    def intent(state, error="", **fields):
        return IntentFactory(run=run, state=state, error=error, **fields)

    placed = intent("filled")
    # Down at its broker, moved to the next account and placed there: one leg, no duplicate.
    down = intent("failed_over", "OMS is unavailable, try again")
    moved = intent("filled", failover_from=down)
    # Answer lost (5xx after accept), placed, and its failover placed too: a duplicate.
    twice = intent("failed_over", "Internal server error")
    twice_moved = intent("filled", failover_from=twice)
    # Moved, then missed for lateness, the owner told: reported, not lost.
    late = intent("failed_over", "Too many requests")
    late_moved = intent("abandoned", "Missed: 5.2 s late", failover_from=late)
    # Moved and never sent, nobody told: lost.
    silent = intent("failed_over", "Too many requests")
    intent("intent", failover_from=silent)
    resolved = intent("filled", "The connection to the broker dropped.")
    attention = intent("needs_attention")
    events_record(
        [
            event_build(kind="order.abandoned", message="m", user_id=owner, run_id=run.pk,
                        intent_id=late_moved.pk),
            event_build(kind="order.unknown", message="m", user_id=owner, run_id=run.pk,
                        intent_id=resolved.pk, data={"error_class": "ambiguous"}),
            event_build(kind="order.unknown", message="m", user_id=owner, run_id=run.pk,
                        intent_id=attention.pk),
        ]
    )  # fmt: skip
    logs = [
        {"kind": "place", "tag": placed.tag, "order_id": "1"},
        {"kind": "place", "tag": down.tag, "outcome": "server_error", "fault": "down"},
        {"kind": "place", "tag": moved.tag, "order_id": "2"},
        {"kind": "place", "tag": twice.tag, "order_id": "3", "fault": "5xx-after"},
        {"kind": "place", "tag": twice_moved.tag, "order_id": "4"},
        {"kind": "place", "tag": resolved.tag, "order_id": "5", "fault": "drop"},
        {"kind": "place", "tag": attention.tag, "order_id": "6", "fault": "lookup-fail"},
    ]

    result = fault_accounting([run.pk], logs, not_arrived_accounting)

    assert result["duplicates"] == 1
    assert result["lost"] == result["missing"] == 1
    assert result["missed_reported"] == 1
    assert result["failed_over"] == 4
    assert result["unknown_resolved"] == 1
    assert result["needs_attention"] == 1
    assert result["orders"] == 6
    assert result["faults"] == {"5xx-after": 1, "down": 1, "drop": 1, "lookup-fail": 1}


def test_the_command_passes_the_fault_flags_on_and_refuses_them_outside_the_engine():
    from django.core.management import CommandError, call_command

    from execution.management.commands.bench_boundary import _flags

    options = {
        "strategies": 2, "legs": 4, "accounts": 2, "brokers": "kite,upstox", "latency_ms": 30.0,
        "mode": "engine", "trials": 1, "workers": 2, "lead": 40.0, "hedge": "ack",
        "fault_rate": 0.2, "seed": 3, "kill_worker": False,
    }  # fmt: skip
    flags = _flags(options)
    assert flags[flags.index("--fault-rate") + 1] == "0.2"
    assert flags[flags.index("--seed") + 1] == "3"
    with pytest.raises(CommandError, match="--mode engine"):
        call_command("bench_boundary", "--fault-rate", "0.2", "--mode", "floor")
    with pytest.raises(CommandError, match="between 0 and 1"):
        call_command("bench_boundary", "--fault-rate", "1.5")


@pytest.mark.django_db
def test_the_settle_wait_ends_at_its_bound_with_orders_still_in_flight():
    import datetime

    from django.utils import timezone

    from execution.bench_faults import SETTLE_MAX_SECONDS, settle_wait

    run = RunFactory()
    IntentFactory(run=run, state="unknown")
    fire_at = timezone.now() - datetime.timedelta(seconds=SETTLE_MAX_SECONDS + 1)
    stopped_after = settle_wait([run.pk], fire_at, max_seconds=SETTLE_MAX_SECONDS)
    assert stopped_after >= SETTLE_MAX_SECONDS  # it stopped by itself at its bound
