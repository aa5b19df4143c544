"""Through the production send path: a Celery worker started as `make run` starts it (threads
pool: account sends handed to the asynchronous lane off the main thread, outcomes written by
the writer thread), HTTP to the Kite and Upstox emulators in child processes. Entries, exits,
failover, the kill switch and reconciliation; each judged at the emulators by tag (see
tests/execution/realworker.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from execution.models import IntentState, OrderIntent, Position, ScheduledRun
from tests.execution.realworker import (
    SKIP_UNDER_FAKETIME,
    Platform,
    declare_session_or_skip,
    tags,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.celery_worker,
    pytest.mark.network,
    pytest.mark.slow,
    SKIP_UNDER_FAKETIME,
]

LEAD = 10  # seconds from seeding to T: the dispatch task runs at T - 7 s (its lead)


@pytest.fixture
def make_platform(settings, tmp_path, calendar_loaded_today, monkeypatch):
    made: list[Platform] = []

    def make(**kwargs):
        platform = Platform(settings=settings, tmp_path=tmp_path, **kwargs)
        made.append(platform)
        # An unknown outcome needs attention after 8 s here (120 s in production).
        platform.env["EXECUTION_UNKNOWN_SETTLE_SECONDS"] = "8"
        return platform

    yield make
    for platform in made:
        platform.stop()


def _boundary(platform: Platform, *, strategies: int = 2, legs: int = 2):
    declare_session_or_skip(timezone.now())
    fire_at = (timezone.now() + timedelta(seconds=LEAD)).replace(microsecond=0)
    seeded = platform.seed(strategies=strategies, legs=legs, fire_at=fire_at)
    return fire_at, seeded.run_ids


def _clean(audit: dict) -> None:
    assert audit["duplicates"] == 0, audit
    assert audit["lost"] == [], audit
    assert audit["untracked"] == [], audit


def test_entries_then_exits_each_written_once_through_the_worker(make_platform):
    platform = make_platform()
    platform.start_worker()
    platform.wait_for_workers(1)
    fire_at, run_ids = _boundary(platform)
    outcome = platform.dispatch(fire_at).get(timeout=LEAD + 30)
    # Two strategies of two legs, each on its Kite and its Upstox account.
    assert outcome["intents"] == 8, outcome
    platform.wait_for(
        lambda: (
            not OrderIntent.objects.filter(
                run_id__in=run_ids, state__in=[IntentState.INTENT, IntentState.SENT]
            ).exists()
        ),
        timeout=30,
        what="the entries' outcomes",
    )
    platform.settle(run_ids)
    audit = platform.audit(run_ids)
    _clean(audit)
    written = platform.written()
    # Each entry at its account's broker, once.
    for broker in ("kite", "upstox"):
        at = {e["tag"] for e in platform.log() if e["broker"] == broker and e.get("order_id")}
        assert at == tags(run_ids, account__broker=broker) and len(at) == 4
    assert set(written) == tags(run_ids) and set(written.values()) == {1}
    entries = list(OrderIntent.objects.filter(run_id__in=run_ids))
    assert {i.state for i in entries} <= {IntentState.ACKNOWLEDGED, IntentState.FILLED}
    assert all(i.sent_at >= fire_at for i in entries)

    # The exit boundary of the same runs closes what the entries opened, through the worker.
    exit_at = (timezone.now() + timedelta(seconds=LEAD)).replace(microsecond=0)
    exits = []
    for run in ScheduledRun.objects.filter(pk__in=run_ids):
        exits.append(
            ScheduledRun.objects.create(
                session_date=run.session_date,
                boundary="exit",
                fire_at=exit_at,
                strategy_version=run.strategy_version,
                owner=run.owner,
                source=run.source,
                source_ref=f"{run.source_ref}-exit",
                special_session=run.special_session,
                entry_run=run,
                allocations=run.allocations,
            )
        )
    platform.settle(run_ids)  # entries filled before the exits are built
    exit_ids = [r.pk for r in exits]
    held = Position.objects.filter(run_id__in=run_ids).exclude(net_quantity=0).count()
    assert held == 8, list(Position.objects.filter(run_id__in=run_ids).values())
    outcome = platform.dispatch(exit_at).get(timeout=LEAD + 30)
    assert outcome["intents"] == 8, (outcome, [(r.state, r.note) for r in exits])
    platform.settle(exit_ids)
    audit = platform.audit(exit_ids)
    _clean(audit)
    assert audit["intents"] == 8 and audit["written"] == 8, audit
    assert not Position.objects.filter(run_id__in=run_ids).exclude(net_quantity=0).exists()


def test_kill_switch_flattens_through_the_worker_once(make_platform):
    from execution.protection.killswitch import kill_switch_engage

    platform = make_platform()
    platform.start_worker()
    platform.wait_for_workers(1)
    fire_at, run_ids = _boundary(platform, strategies=1, legs=2)
    platform.dispatch(fire_at).get(timeout=LEAD + 30)
    platform.settle(run_ids)
    run = ScheduledRun.objects.get(pk=run_ids[0])
    held = Position.objects.filter(run=run).exclude(net_quantity=0).count()
    assert held == 4  # two legs on each of two accounts
    before = len(platform.log())
    # The owner's switch: closing orders after the commit, as account tasks on the worker.
    kill_switch_engage(actor=run.owner, user=run.owner, reason="chaos test")
    platform.wait_for(
        lambda: (
            not Position.objects.filter(run=run).exclude(net_quantity=0).exists()
            or _reconcile(platform, run_ids)
        ),
        timeout=40,
        what="the kill switch to flatten",
        interval=1.0,
    )
    new = [e for e in platform.log()[before:] if e.get("order_id")]
    assert len(new) == held  # one closing order per leg, none twice
    assert len({e["tag"] for e in new}) == held
    _clean(platform.audit(run_ids))


def _reconcile(platform: Platform, run_ids: list[int]) -> bool:
    from execution.tasks import reconcile_open_orders_task

    reconcile_open_orders_task.apply_async(queue="execution")
    return False


def test_a_broker_down_for_the_boundary_fails_over_by_priority(make_platform):
    """Upstox (priority 1) takes orders on its own host; that host refuses every connection
    for the whole boundary (its quote host answers, so the boundary is priced). Each of its
    orders moves to the account of priority 2 (Kite), not 3, and is written there once."""
    platform = make_platform(brokers=("upstox", "kite", "kite"), down=("upstox_hft",))
    platform.start_worker()
    platform.wait_for_workers(1)
    fire_at, run_ids = _boundary(platform, strategies=1, legs=2)
    outcome = platform.dispatch(fire_at).get(timeout=LEAD + 30)
    run = ScheduledRun.objects.get(pk=run_ids[0])
    assert outcome["intents"] == 6, (outcome, run.state, run.note)
    platform.wait_for(
        lambda: (
            OrderIntent.objects.filter(run_id__in=run_ids, failover_from__isnull=False)
            .exclude(state=IntentState.INTENT)
            .count()
            == 2
        ),
        timeout=40,
        what="the failover",
        run_ids=run_ids,
    )
    platform.settle(run_ids)
    audit = platform.audit(run_ids)
    _clean(audit)
    by_priority = {a["priority"]: a["account_id"] for a in run.allocations}
    moved = list(OrderIntent.objects.filter(run=run, failover_from__isnull=False))
    assert {i.account_id for i in moved} == {by_priority[2]}
    first = OrderIntent.objects.filter(run=run, account_id=by_priority[1])
    assert set(first.values_list("state", flat=True)) == {IntentState.FAILED_OVER}
    written = platform.written()
    assert all(written[i.tag] == 1 for i in moved)
    # Priority 2 holds its own legs and the moved ones; priority 3 only its own.
    assert OrderIntent.objects.filter(run=run, account_id=by_priority[2]).count() == 4
    assert OrderIntent.objects.filter(run=run, account_id=by_priority[3]).count() == 2
    assert audit["written"] == 6
