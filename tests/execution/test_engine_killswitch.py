"""The kill switch across two brokers (Kite and Upstox emulators over real HTTP): open orders
cancelled, every engine position flattened shorts-first, new entries refused until re-armed;
and one click from every page."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from brokers.base import OrderRequest, OrderType, Product, Side
from brokers.registry import get_adapter
from execution.dispatch import boundary_dispatch
from execution.models import (
    ExecutionEvent,
    IntentState,
    KillSwitch,
    OrderIntent,
    Position,
    RunState,
)
from execution.planning.plan import day_plan
from execution.protection.killswitch import (
    kill_switch_engage,
    kill_switch_rearm,
    open_orders_cancel,
)
from execution.send import sender
from execution.tasks import account_send_task
from tests.brokers.contract.venues import broker_symbol, make_venue
from tests.execution.engine_factories import IntentFactory, RunFactory, VersionFactory
from tests.execution.test_dispatch import DAY, FlatMarket, T, _accounts_ready
from tests.trader.factories import ProfileFactory

# These trade contracts of today's date: today's holiday year is loaded, as on a live platform.
pytestmark = [
    pytest.mark.django_db,
    pytest.mark.network,
    pytest.mark.usefixtures("calendar_loaded_today", "session_open"),
]


@pytest.fixture
def two_brokers(settings):
    owner = ProfileFactory().user
    venues = []
    for broker in ("kite", "upstox"):
        venue = make_venue(broker, settings)
        venue.account.owner = owner
        venue.account.save()
        venue.login()
        venues.append(venue)
    yield owner, venues
    for venue in venues:
        venue.stop()


def _position(run, venue, strike, quantity):
    symbol = broker_symbol(venue.broker, strike)
    return Position.objects.create(
        run=run,
        account=venue.account,
        owner=run.owner,
        exchange="NFO",
        tradingsymbol=symbol,
        instrument_token=venue.instrument_token(symbol),
        lot_size=abs(quantity),
        net_quantity=quantity,
    )


def test_kill_switch_cancels_and_flattens_on_two_brokers_and_blocks_entries(two_brokers):
    owner, venues = two_brokers
    run = RunFactory(strategy_version=VersionFactory(strategy__owner=owner), owner=owner)
    for venue in venues:
        _position(run, venue, 25000, -75)  # short
        _position(run, venue, 26000, 75)  # its hedge
    # One resting LIMIT order at Kite, acknowledged by the broker.
    kite = venues[0]
    symbol = broker_symbol("kite", 24000)
    ack = get_adapter(kite.account).place_order(
        OrderRequest(
            exchange="NFO",
            tradingsymbol=symbol,
            side=Side.BUY,
            quantity=75,
            order_type=OrderType.LIMIT,
            product=Product.NRML,
            tag="RESTING1",
            price=Decimal("0.05"),
        )
    )
    resting = IntentFactory(
        run=run,
        account=kite.account,
        state=IntentState.ACKNOWLEDGED,
        broker_order_id=ack.broker_order_id,
        tradingsymbol=symbol,
    )

    payloads = kill_switch_engage(actor=owner, user=owner, send=False)

    assert open_orders_cancel(intent_ids=[resting.pk]) == 1
    resting.refresh_from_db()
    assert resting.state == IntentState.CANCELLED
    assert {p["account_id"] for p in payloads} == {v.account.pk for v in venues}
    sender.ADAPTERS.clear()
    for payload in payloads:
        account_send_task(payload)
    for venue in venues:
        posts = [
            r
            for r in venue.emulator.order_log()
            if r["method"] == "POST" and "cancel" not in r["path"]
        ]
        flatten = OrderIntent.objects.filter(account=venue.account, purpose="flatten")
        assert sorted(i.side for i in flatten) == ["BUY", "SELL"]
        assert {i.state for i in flatten} == {IntentState.ACKNOWLEDGED}
        buy = flatten.get(side="BUY")
        assert buy.sent_at <= flatten.get(side="SELL").sent_at  # the short goes first
        assert len(posts) >= 2
    assert KillSwitch.objects.get(user=owner).engaged
    assert ExecutionEvent.objects.filter(kind="killswitch.engaged", user_id=owner.pk).exists()


def test_engaged_switch_refuses_new_entries_until_rearmed():
    from tests.execution.engine_factories import strategy_with_accounts

    strategy, _, accounts = strategy_with_accounts(brokers=("kite",))
    _accounts_ready(accounts)
    owner = strategy.owner
    kill_switch_engage(actor=owner, user=owner, send=False)
    day_plan(day=DAY)
    result = boundary_dispatch(fire_at=T, market=FlatMarket(), wait=False, start_sends=False)
    assert "Kill switch" in next(iter(result.skipped.values()))
    assert OrderIntent.objects.count() == 0

    kill_switch_rearm(actor=owner, user=owner)
    later = T + datetime.timedelta(minutes=5)
    run = RunFactory(
        strategy_version=strategy.current_version,
        owner=owner,
        fire_at=later,
        source="manual",
        allocations=[{"account_id": accounts[0].pk, "broker": "kite", "priority": 1}],
    )
    result = boundary_dispatch(fire_at=later, market=FlatMarket(), wait=False, start_sends=False)
    assert result.intents == 4
    run.refresh_from_db()
    assert run.state == RunState.DISPATCHED


def test_only_admins_engage_the_global_switch(owner):
    with pytest.raises(PermissionError):
        kill_switch_engage(actor=owner, user=None, send=False)


def test_kill_switch_is_one_click_from_every_page(owner_client, owner):
    page = owner_client.get(reverse("trader:dashboard"))
    assert reverse("execution:kill-switch").encode() in page.content
    response = owner_client.post(reverse("execution:kill-switch"), {"action": "engage"})
    assert response.status_code == 302
    assert KillSwitch.objects.get(user=owner).engaged
