"""End to end through the real engine: creator publishes → admin approves in Django admin →
trader subscribes → deploys on paper with multiplier 2 → one boundary executes for creator and
subscriber (subscriber's quantities doubled) → the track record includes it → the month's
ledger is right.

Runs the engine's own path: execution.planning.plan.day_plan, execution.dispatch.boundary_dispatch,
execution.tasks.account_send_task (the sender, on the paper broker adapter) and
execution.orders.lifecycle.open_orders_reconcile (which polls the fills, as the beat does). The
paper accounts are made by the brokers service and logged in through the paper broker's own login.

The session traded is in a month that is over (so the month can be closed), but the paper
broker, like any broker, only takes contracts listed on the wall-clock day and quotes the
market at the wall-clock time. The test therefore puts the paper "exchange" on the session day
(`_session_exchange`): its calendar day and its market clock. It also sends a phase's legs one
after the other instead of from the sender's thread pool, so that the test runs inside its own
transaction like the others.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal as D

import pytest
from django.test import Client
from django.urls import reverse

from brokers.models import Broker, BrokerAccount
from brokers.services import broker_account_create, paper_account_log_in
from execution.dispatch import boundary_dispatch
from execution.market import SimulatedMarket
from execution.markettime import IST
from execution.models import IntentState, OrderIntent, Position, ScheduledRun
from execution.orders.lifecycle import open_orders_reconcile
from execution.planning.plan import day_plan
from execution.tasks import account_send_task
from marketplace import services
from marketplace.models import Invoice, Listing, MonthlyLedger, Subscription
from marketplace.performance import listing_track_records, subscription_pnl_between
from tests.conftest import staff_client_for
from tests.execution.engine_factories import strategy_with_accounts
from tests.trader.factories import ProfileFactory
from trader.models import BrokerAllocation

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 10, 15)  # a Thursday session, in a month that is over
ENTRY = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)
EXIT = datetime.datetime.combine(DAY, datetime.time(15, 10), tzinfo=IST)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _paper_account(owner) -> BrokerAccount:
    """A paper account as a trader gets one: created with its book, then logged in."""
    account = broker_account_create(owner=owner, broker=Broker.PAPER, label="Paper")
    return paper_account_log_in(account=account, actor=owner)


class _SessionClock:
    def __init__(self) -> None:
        self.now = ENTRY

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def _session_exchange(monkeypatch, settings):
    """The paper exchange on DAY: contracts listed that day, quotes at the boundary's time; the
    legs of a phase sent in turn."""
    # The boundaries are of DAY (past), replayed now: the engine's entry lateness cap reads
    # the real clock, so it is lifted here (tests/execution covers the cap itself).
    settings.EXECUTION_ENTRY_LATE_CAP_SECONDS = 10**9
    clock = _SessionClock()
    market = SimulatedMarket(clock=clock)
    monkeypatch.setattr("brokers.paper.market._today", lambda market=None: DAY)
    monkeypatch.setattr("brokers.paper.market._market", lambda: market)
    # The sender sends a phase's legs from a thread pool, each thread on its own database
    # connection, which cannot see this test's uncommitted rows; here the legs of a phase go
    # one after the other (hedges still first). Concurrency: tests/execution/test_engine_sender.
    monkeypatch.setattr(
        "execution.send.sender.run_concurrently", lambda calls: [call() for call in calls]
    )
    return clock, market


def _execute(fire_at, *, clock, market):
    """One boundary: dispatch, the account tasks (called directly, as a solo worker would),
    then the reconciler a minute later, which polls the acknowledged orders for their fills."""
    clock.now = fire_at
    result = boundary_dispatch(fire_at=fire_at, market=market, wait=False, start_sends=False)
    assert not result.skipped, result.skipped
    for batch in result.batches:
        account_send_task(batch.to_json())
    open_orders_reconcile(now=fire_at + datetime.timedelta(minutes=1))
    return result


def test_creator_to_subscriber_to_track_record_and_ledger(settings, _session_exchange):
    settings.MARKETPLACE_COMMISSION_PERCENT = "20"
    clock, market = _session_exchange
    strategy, _, _ = strategy_with_accounts(brokers=())
    BrokerAllocation.objects.create(
        strategy=strategy,
        broker_account=_paper_account(strategy.owner),
        multiplier=D("1"),
        priority=1,
    )
    creator = _client(strategy.owner)
    creator.post(
        reverse("marketplace:listing-new"),
        {
            "strategy": strategy.pk,
            "title": "Condor",
            "description": "Weekly condor.",
            "risk_level": "medium",
            "capital_required": "100000",
            "min_multiplier": "1",
            "visibility": "copy_allowed",
            "plan_kind": "fee_share",
            "monthly_fee": "500",
            "profit_share_percent": "20",
        },
    )
    listing = Listing.objects.get()
    creator.post(reverse("marketplace:listing-action", args=[listing.pk, "submit"]))
    admin_user = ProfileFactory().user
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    staff_client_for(admin_user).post(
        reverse("admin:marketplace_listing_changelist"),
        {"action": "workflow_approve", "_selected_action": [listing.pk], "apply": "1"},
    )
    creator.post(reverse("marketplace:listing-action", args=[listing.pk, "publish"]))
    listing.refresh_from_db()
    assert listing.state == "published"

    trader = ProfileFactory().user
    trader_client = _client(trader)
    trader_client.post(
        reverse("marketplace:subscribe", args=[listing.pk]),
        {"plan": listing.plans.get().pk, "confirm": "yes"},
    )
    subscription = Subscription.objects.get()
    # The subscription began before the traded day; its first month's fee covers October.
    subscription.started_at = ENTRY - datetime.timedelta(days=14)
    subscription.paid_until = DAY + datetime.timedelta(days=20)
    subscription.save()
    Invoice.objects.filter(subscription=subscription).update(
        period_start=datetime.date(2026, 10, 1), period_end=datetime.date(2026, 10, 31)
    )
    paper = _paper_account(trader)
    trader_client.post(
        reverse("marketplace:subscription", args=[subscription.pk]),
        {"broker_account": paper.pk, "multiplier": "2"},
    )
    assert subscription.deployments.get().multiplier == 2

    day_plan(day=DAY)
    runs = ScheduledRun.objects.filter(session_date=DAY, boundary="entry")
    assert {r.source for r in runs} == {"allocation", "deployment"}
    _execute(ENTRY, clock=clock, market=market)
    assert set(OrderIntent.objects.values_list("state", flat=True)) == {IntentState.FILLED}
    quantities = defaultdict(dict)
    for intent in OrderIntent.objects.filter(run__boundary="entry").select_related("run"):
        quantities[intent.run.source][intent.leg_id] = intent.quantity
    assert quantities["allocation"], "the creator's entry sent no orders"
    assert quantities["deployment"] == {
        leg: 2 * qty for leg, qty in quantities["allocation"].items()
    }
    _execute(EXIT, clock=clock, market=market)
    assert set(OrderIntent.objects.values_list("state", flat=True)) == {IntentState.FILLED}
    assert not Position.objects.exclude(net_quantity=0).exists()

    (record,) = listing_track_records(listing=listing)
    assert record.mode == "paper"
    assert record.executions == 1
    assert [day.day for day in record.days] == [DAY]

    pnl = subscription_pnl_between(datetime.date(2026, 10, 1), datetime.date(2026, 10, 31))
    subscriber_pnl = pnl[subscription.pk]
    assert subscriber_pnl == (record.days[0].pnl * 2).quantize(D("0.01"))
    services.ledger_close_month(
        month=datetime.date(2026, 10, 1), pnl_source=subscription_pnl_between
    )
    row = MonthlyLedger.objects.get(subscription=subscription)
    share = max(subscriber_pnl, D(0)) * D("0.20")
    assert row.fee == D("500.00")
    assert row.profit_share == share.quantize(D("0.01"))
    assert row.commission == ((D("500") + row.profit_share) * D("0.20")).quantize(D("0.01"))
    assert row.creator_payout == row.fee + row.profit_share - row.commission
