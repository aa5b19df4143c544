"""Dispatch of a boundary: query budget, intents, hedge-first phases, risk, calendar."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.markettime import IST
from execution.models import IntentState, OrderIntent, RunState, ScheduledRun
from execution.planning.plan import day_plan
from tests.execution.engine_factories import strategy_with_accounts

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 19)  # Thursday, a session
T = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)


class FlatMarket:
    def spot(self, symbol, at=None):
        return Decimal("24012.35")

    def chain(self, *args, **kwargs):
        return []


def _accounts_ready(accounts):
    for account in accounts:
        account.token_issued_at = T - datetime.timedelta(hours=1)
        account.static_ip_primary = "203.0.113.7"
        account.save()


def _seed(n: int, brokers=(Broker.KITE,)):
    for _ in range(n):
        _, _, accounts = strategy_with_accounts(brokers=brokers)
        _accounts_ready(accounts)
    day_plan(day=DAY)


def _dispatch_queries(n: int) -> tuple[int, int, object]:
    _seed(n)
    # Reference data (symbols, lots, calendar) is looked up once per contract: warm it so the
    # count compares what grows with strategies.
    with CaptureQueriesContext(connection) as ctx:
        result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    # Loads of the engine's own rows: runs (with version, strategy, owner, limits, kill
    # switches), legs, accounts. The rest is reference data looked up once per contract.
    starts = ('SELECT "execution_scheduledrun"."id"', 'SELECT "trader_leg"."id"')
    starts += ('SELECT "brokers_brokeraccount"."id"',)
    loads = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith(starts)]
    return len(ctx.captured_queries), len(loads), result


@pytest.mark.parametrize("n", [10, 1000])
def test_dispatch_loads_in_three_queries_whatever_the_number_of_strategies(n):
    total, loads, result = _dispatch_queries(n)
    assert result.runs == n and result.intents == n * 4 and not result.skipped
    assert loads == 3
    # Everything else (reference data per contract, bulk writes) does not grow with n.
    # 72: the calendar also reads which holiday years are loaded (fail closed on unloaded ones).
    # 73: every run records the market that priced it (one update per price source).
    # 75: the runs' record (notes, sources, events) is a second transaction after the orders'.
    # 76: the contracts resolved at T - ε are written onto the intents in one UPDATE.
    # 77: at T - ε, is a kill switch engaged since the runs were loaded (one query).
    assert total <= 77 + (n * 4) // 1000 + n // 500


@pytest.mark.parametrize("brokers", [(Broker.KITE,), (Broker.KITE, Broker.UPSTOX)])
def test_the_step_at_t_minus_epsilon_does_no_per_order_database_work(brokers):
    """Everything that grows with the strategies happens before T - ε: the step at T - ε
    (spot, strikes, symbols, the resolution written) costs the same statements for 3
    strategies as for 40."""
    counts, sizes = [], []
    # The first boundary creates the contracts' reference rows (warm, as a day's first
    # boundary would be); the third has the first two's 6 strategies and 34 more.
    for n in (3, 3, 34):
        OrderIntent.objects.all().delete()
        ScheduledRun.objects.all().delete()
        _seed(n, brokers=brokers)
        result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
        assert result.intents == result.runs * 4 * len(brokers) and not result.skipped
        counts.append(result.queries_at_epsilon)
        sizes.append(result.intents)
        # Every intent was written before T - ε with a placeholder, and carries its contract now.
        assert not OrderIntent.objects.filter(tradingsymbol__startswith="?").exists()
        assert OrderIntent.objects.filter(instrument_token="").count() == 0
    assert sizes[2] > 6 * sizes[1] and counts[1] == counts[2]
    # What it reads is reference data per contract; it writes nothing (the intents get their
    # contracts in one statement once the resolution is published).
    assert result.writes_at_epsilon == 0 and counts[2] >= 1


def test_intents_are_hedge_first_with_unique_tags_and_algo_ids():
    strategy, _version, accounts = strategy_with_accounts(brokers=(Broker.KITE, Broker.UPSTOX))
    _accounts_ready(accounts)
    accounts[0].algo_id = "GENERIC1"
    accounts[0].save()
    strategy.algo_ids.create(broker=Broker.UPSTOX, algo_id="OWN42")
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    intents = list(OrderIntent.objects.all())
    assert len(intents) == 8 and len({i.tag for i in intents}) == 8
    assert all(i.state == IntentState.INTENT and i.intended_at == T for i in intents)
    assert {i.algo_id for i in intents if i.account_id == accounts[0].pk} == {"GENERIC1"}
    assert {i.algo_id for i in intents if i.account_id == accounts[1].pk} == {"OWN42"}
    for batch in result.batches:
        sides = [o["side"] for o in batch.orders]
        assert sides == ["BUY", "BUY", "SELL", "SELL"]
    assert ScheduledRun.objects.get(boundary="entry").state == RunState.DISPATCHED


def test_freeze_quantity_slices_big_legs():
    from execution.reference import contracts

    _, _, accounts = strategy_with_accounts(brokers=(Broker.KITE,), lots=40)
    _accounts_ready(accounts)
    day_plan(day=DAY)
    boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    freeze = contracts.freeze_quantity("NIFTY", DAY)
    intents = list(OrderIntent.objects.filter(side="SELL", tradingsymbol__endswith="CE"))
    assert len(intents) > 1
    assert all(i.quantity <= freeze for i in intents)
    assert sum(i.quantity for i in intents) == 40 * intents[0].lot_size


def test_account_not_logged_in_today_is_refused_in_words():
    _, _, _accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    assert OrderIntent.objects.count() == 0
    (reason,) = result.skipped.values()
    assert "not logged in today" in reason and "static IP" in reason


def test_a_second_dispatch_of_the_same_boundary_sends_nothing():
    _seed(2)
    boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    again = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    assert again.runs == 0 and OrderIntent.objects.count() == 8


def test_holiday_dispatch_is_refused_by_the_calendar_guard():
    holiday = datetime.date(2026, 11, 24)  # Guru Nanak Jayanti
    when = datetime.datetime.combine(holiday, datetime.time(9, 20), tzinfo=IST)
    strategy, version, accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    ScheduledRun.objects.create(
        session_date=holiday,
        boundary="entry",
        fire_at=when,
        strategy_version=version,
        owner=strategy.owner,
        source="allocation",
        allocations=[{"account_id": accounts[0].pk, "broker": "kite", "priority": 1}],
    )
    result = boundary_dispatch(fire_at=when, market=FlatMarket(), wait=False, start_sends=False)
    assert "holiday" in next(iter(result.skipped.values())).lower()
    assert OrderIntent.objects.count() == 0


def test_dispatch_of_chosen_runs_leaves_the_others_of_the_same_instant_planned():
    _seed(2)
    first, second = ScheduledRun.objects.filter(boundary="entry").order_by("pk")
    boundary_dispatch(
        fire_at=T, market=FlatMarket(), wait=False, start_sends=False, run_ids=[first.pk]
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.state == RunState.DISPATCHED and second.state == RunState.PLANNED


@pytest.mark.parametrize(("other_ref", "refused"), [("41", True), ("42", False)])
def test_a_targets_own_daily_loss_refuses_its_next_entry(other_ref, refused):
    """Source limits (a deployment's own max daily loss) are checked against the P&L of that
    target's runs of the day, not another target's of the same strategy."""
    from execution.planning.sources import AccountAllocation
    from tests.execution.engine_factories import RunFactory, VersionFactory

    strategy, version, accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    _accounts_ready(accounts)
    allocations = [
        AccountAllocation(
            account_id=accounts[0].pk,
            broker="kite",
            priority=1,
            limits={"max_daily_loss": "1000"},
        ).to_json()
    ]
    # Earlier today, on another version of the strategy (one run per version and boundary).
    earlier = T - datetime.timedelta(minutes=5)
    RunFactory(
        strategy_version=VersionFactory(strategy=strategy, number=2),
        owner=strategy.owner,
        source="deployment",
        source_ref=other_ref,
        session_date=DAY,
        fire_at=earlier,
        state=RunState.DONE,
        mtm=Decimal("-1200"),
    )
    run = RunFactory(
        strategy_version=version,
        owner=strategy.owner,
        source="deployment",
        source_ref="41",
        session_date=DAY,
        fire_at=T,
        allocations=allocations,
    )
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    if refused:
        assert "daily limit" in result.skipped[run.pk]
        assert not OrderIntent.objects.exists()
    else:
        assert not result.skipped and result.intents == 4


@pytest.mark.parametrize(("choice", "waits"), [("ack", True), ("none", False)])
def test_entry_orders_carry_the_strategys_hedge_confirmation(choice, waits):
    strategy, _version, accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    strategy.hedge_confirmation = choice
    strategy.save()
    _accounts_ready(accounts)
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    intents = list(OrderIntent.objects.all())
    assert len(intents) == 4
    assert {i.waits_for_hedges for i in intents} == {waits}
    (batch,) = result.batches
    assert [o["side"] for o in batch.orders] == ["BUY", "BUY", "SELL", "SELL"]  # still hedges first
    assert {o["waits_for_hedges"] for o in batch.orders} == {waits}


def test_an_order_needing_attention_halts_the_strategys_entries_until_settled(client):
    from execution.models import ExecutionEvent

    strategy, version, accounts = strategy_with_accounts(brokers=(Broker.KITE,))
    _accounts_ready(accounts)
    _, _, other_accounts = strategy_with_accounts(brokers=(Broker.KITE,), owner=strategy.owner)
    _accounts_ready(other_accounts)
    earlier = ScheduledRun.objects.create(
        session_date=DAY - datetime.timedelta(days=1),
        boundary="entry",
        fire_at=T - datetime.timedelta(days=1),
        strategy_version=version,
        owner=strategy.owner,
        source="allocation",
        state=RunState.DONE,
    )
    stuck = OrderIntent.objects.create(
        run=earlier,
        account=accounts[0],
        side="BUY",
        exchange="NFO",
        tradingsymbol="NIFTY26N2424000CE",
        quantity=75,
        tag="STUCK1",
        intended_at=earlier.fire_at,
        state=IntentState.NEEDS_ATTENTION,
    )
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    halted = ScheduledRun.objects.get(strategy_version=version, fire_at=T)
    assert halted.state == RunState.SKIPPED and "needs your attention" in halted.note
    # The owner's other strategy is not halted.
    assert result.intents == 4 and OrderIntent.objects.filter(run__fire_at=T).count() == 4
    assert ExecutionEvent.objects.filter(run_id=halted.pk, kind="run.skipped").exists()
    # The runs page shows it; the owner closes it as not placed (never sent again).
    client.force_login(strategy.owner)
    page = client.get("/execution/runs/")
    assert b"STUCK1" in page.content and b"need your attention" in page.content
    response = client.post(f"/execution/orders/{stuck.pk}/dismiss/")
    assert response.status_code == 302
    stuck.refresh_from_db()
    assert stuck.state == IntentState.ABANDONED


def test_only_the_owner_can_close_an_order_needing_attention(client):
    from tests.execution.engine_factories import IntentFactory
    from tests.trader.factories import UserFactory

    intent = IntentFactory(state=IntentState.NEEDS_ATTENTION)
    client.force_login(UserFactory())
    assert client.post(f"/execution/orders/{intent.pk}/dismiss/").status_code == 404
    intent.refresh_from_db()
    assert intent.state == IntentState.NEEDS_ATTENTION


def test_an_entry_boundary_past_the_lateness_cap_is_missed_and_reported(settings):
    from execution.models import ExecutionEvent

    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 5
    _seed(1)
    result = boundary_dispatch(
        fire_at=T, market=FlatMarket(), wait=False, start_sends=False, late_cap=True
    )
    run = ScheduledRun.objects.get(boundary="entry")
    assert run.state == RunState.SKIPPED and run.note.startswith("Missed: ")
    assert "s late" in run.note and OrderIntent.objects.count() == 0
    assert result.skipped == {run.pk: run.note}
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="run.skipped").exists()
    # The exit boundary of the same day is never dropped for lateness (nothing to close here).
    exit_run = ScheduledRun.objects.get(boundary="exit")
    boundary_dispatch(
        fire_at=exit_run.fire_at, market=FlatMarket(), wait=False, start_sends=False, late_cap=True
    )
    exit_run.refresh_from_db()
    assert exit_run.state == RunState.DONE and not exit_run.note.startswith("Missed")


def test_closing_orders_carry_the_strategys_algo_id_not_the_accounts_generic_one():
    """One function decides the algo ID: entries, exits, the kill switch's and the unwind's
    closing orders of a strategy all carry its own ID at that broker."""
    from execution.intents.build import algo_id_for, close_intents
    from execution.models import Position, Purpose

    strategy, _version, accounts = strategy_with_accounts(brokers=(Broker.KITE, Broker.UPSTOX))
    _accounts_ready(accounts)
    for account in accounts:
        account.algo_id = "GENERIC1"
        account.save()
    strategy.algo_ids.create(broker=Broker.KITE, algo_id="OWN42")
    day_plan(day=DAY)
    boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    run = ScheduledRun.objects.get(boundary="entry")
    kite, upstox = accounts
    assert {i.algo_id for i in OrderIntent.objects.filter(account=kite)} == {"OWN42"}
    assert {i.algo_id for i in OrderIntent.objects.filter(account=upstox)} == {"GENERIC1"}
    positions = [
        Position.objects.create(
            run=run,
            owner=run.owner,
            account=account,
            exchange="NFO",
            tradingsymbol="NIFTY26N1924000CE",
            product="NRML",
            lot_size=75,
            net_quantity=-75,
        )
        for account in accounts
    ]
    for purpose in (Purpose.FLATTEN, Purpose.UNWIND, Purpose.STOP):
        closing = close_intents(
            run=run,
            positions=positions,
            accounts={a.pk: a for a in accounts},
            purpose=purpose,
            intended_at=T,
            freeze=lambda p: 10**6,
            lot_size=lambda p: p.lot_size,
            quotes=None,
        )
        assert {(i.account_id, i.algo_id) for i in closing} == {
            (kite.pk, "OWN42"),
            (upstox.pk, "GENERIC1"),
        }
    assert algo_id_for(run=run, account=kite) == "OWN42"


def test_a_big_boundary_is_published_in_chunks_of_accounts(monkeypatch, settings):
    from execution import dispatch as dispatch_module

    settings.EXECUTION_SEND_CHUNK_ACCOUNTS = 25
    published = []
    monkeypatch.setattr(
        "celery.canvas.Signature.apply_async",
        lambda self, *args, **kw: published.append((self.task, self.args[0])),
    )
    payloads = [{"account_id": i, "orders": []} for i in range(1, 61)]
    dispatch_module._start_group(payloads)
    assert {name for name, _ in published} == {"execution.tasks.accounts_send_task"}
    assert [len(chunk) for _, chunk in published] == [25, 25, 10]
    assert [p["account_id"] for _, chunk in published for p in chunk] == list(range(1, 61))


def test_a_chunk_sends_each_account_as_the_one_account_task_would(monkeypatch):
    from execution import tasks

    seen = []
    monkeypatch.setattr(
        "execution.orders.sending.account_batch_send", lambda payload: seen.append(payload)
    )
    tasks.accounts_send_task([{"account_id": 1}, {"account_id": 2}])
    assert seen == [{"account_id": 1}, {"account_id": 2}]


def test_the_lead_grows_with_the_boundary_from_the_measured_cost_per_order(settings):
    from execution import dispatch
    from execution.send import template
    from execution.send.sender import engine_redis

    engine_redis().delete(dispatch.COST_KEY, template.HANDOVER_COST_KEY)
    settings.EXECUTION_DISPATCH_SECONDS_PER_INTENT = 0.002
    # Before any measurement: the calibrated cost; never less than the configured lead.
    assert dispatch.seconds_per_intent() == 0.002
    assert dispatch.dispatch_lead(10) == 7.0
    assert dispatch.dispatch_lead(10_000) == 4.0 + 1.0 + 2 * 10_000 * 0.002
    _seed(3)
    assert dispatch.expected_intents(T) == 3 * 4  # planned: legs x accounts
    boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    # The dispatch measured its own cost per order: the next leads are sized from it.
    measured = dispatch.seconds_per_intent()
    assert measured != 0.002 and measured > 0
    assert dispatch.dispatch_lead(100_000) > dispatch.dispatch_lead(10_000) > 7.0
    # The send workers' hand-over (requests built before T - ε) counts too, once measured.
    before = dispatch.dispatch_lead(10_000)
    # (What a process's hand-overs of a boundary cost is recorded by its pass at T - ε.)
    template._spent["execution:contracts:lead-test"] = [0.5, 1000]
    assert template.batches_fill("execution:contracts:lead-test", lambda orders: orders) == 0
    assert template.handover_seconds_per_order() == 0.0005
    assert dispatch.dispatch_lead(10_000) == pytest.approx(before + 2 * 10_000 * 0.0005)
    engine_redis().delete(dispatch.COST_KEY, template.HANDOVER_COST_KEY)
