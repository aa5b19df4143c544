"""The trading desk through HTTP: one truth for a run's P&L and state, live fragments that stop
polling, per-run and per-position exits, the kill switch on every page, the dashboard's money."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from brokers.models import Broker
from brokers.services import paper_account_log_in
from execution.markettime import IST
from execution.models import ExecutionEvent, OrderIntent, ScheduledRun
from execution.models.engine import (
    Fill,
    IntentState,
    KillSwitch,
    Position,
    Purpose,
    RunState,
)
from execution.orders.runs import run_settle, runs_missed_mark
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.execution.engine_factories import IntentFactory, RunFactory, strategy_with_accounts
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

# A Thursday session, 10:00 IST: the tests pass on any date.
NOW = datetime.datetime(2026, 11, 19, 10, 0, tzinfo=IST)


@pytest.fixture(autouse=True)
def _pinned_clock():
    with time_machine.travel(NOW, tick=True):
        yield


def _position(run, account, symbol, *, net, buy_q=0, buy_v="0", sell_q=0, sell_v="0", last=None):
    return Position.objects.create(
        run=run,
        account=account,
        owner=run.owner,
        exchange="NFO",
        tradingsymbol=symbol,
        lot_size=75,
        net_quantity=net,
        buy_quantity=buy_q,
        buy_value=Decimal(buy_v),
        sell_quantity=sell_q,
        sell_value=Decimal(sell_v),
        last_price=None if last is None else Decimal(last),
    )


@pytest.fixture
def live_run(owner):
    """A dispatched run with a short call on one account and a long call on another."""
    run = RunFactory(
        strategy_version__strategy__owner=owner,
        owner=owner,
        state=RunState.DISPATCHED,
        session_date=NOW.date(),
        fire_at=NOW - datetime.timedelta(minutes=40),
    )
    kite = BrokerAccountFactory(owner=owner, broker=Broker.KITE, label="Kite main")
    paper = BrokerAccountFactory(owner=owner, broker=Broker.PAPER, label="Paper one")
    short = _position(run, kite, "NIFTY26D1724200CE", net=-75, sell_q=75, sell_v="7500", last="90")
    long_ = _position(run, paper, "NIFTY26D1724600CE", net=75, buy_q=75, buy_v="1500", last="25")
    return run, short, long_


def test_an_unmarked_position_shows_no_premium_as_profit(owner_client, owner):
    run = RunFactory(strategy_version__strategy__owner=owner, owner=owner, state="dispatched")
    account = BrokerAccountFactory(owner=owner)
    # Just filled: sold 75 at ₹50.80 (₹3,810 received), never marked yet.
    position = _position(run, account, "NIFTY26D1724200CE", net=-75, sell_q=75, sell_v="3810")
    assert position.pnl() == 0 and position.unrealised() is None
    page = owner_client.get(reverse("execution:run-detail", args=[run.pk]))
    assert "+₹3,810" not in page.text and "not marked" in page.text
    assert "1 position not marked yet" in page.text


def test_run_mtm_is_the_sum_of_its_positions_with_charges_apart(owner_client, live_run):
    run, _, _ = live_run
    ScheduledRun.objects.filter(pk=run.pk).update(mtm=Decimal("-56.55"))  # a stale watch value
    # short: sold 75 @ 100, now 90 → +750; long: bought 75 @ 20, now 25 → +375.
    page = owner_client.get(reverse("execution:run-detail", args=[run.pk]))
    assert "data-mtm>+₹1,125.00<" in page.text
    assert "₹-56.55" not in page.text and "\u2212₹56.55" not in page.text
    assert "shown apart, not in MTM" in page.text


def test_a_planned_run_whose_time_passed_is_missed_with_the_reason(owner_client, owner):
    run = RunFactory(strategy_version__strategy__owner=owner, owner=owner)  # 19 Nov, 09:20
    listing = owner_client.get(reverse("execution:runs"))
    assert "Missed" in listing.text and "Planned" not in listing.text
    assert runs_missed_mark() == 1
    run.refresh_from_db()
    assert run.state == RunState.MISSED and "no dispatch" in run.note
    assert ExecutionEvent.objects.filter(run_id=run.pk, kind="run.missed").exists()
    assert runs_missed_mark() == 0


def test_a_flat_run_settles_exited_after_an_early_exit_and_failed_without_fills(owner, live_run):
    run, _, _ = live_run
    assert run_settle(run_id=run.pk) is None  # positions open
    Position.objects.filter(run=run).update(net_quantity=0, buy_quantity=75, sell_quantity=75)
    ScheduledRun.objects.filter(pk=run.pk).update(exit_reason="combined stop-loss")
    assert run_settle(run_id=run.pk) == RunState.EXITED
    run.refresh_from_db()
    assert run.finished_at is not None
    empty = RunFactory(strategy_version__strategy__owner=owner, owner=owner, state="dispatched")
    IntentFactory(run=empty, state=IntentState.REJECTED)
    assert run_settle(run_id=empty.pk) == RunState.FAILED


def test_run_page_polls_while_open_and_stops_when_final(owner_client, live_run):
    run, _, _ = live_run
    fragment = owner_client.get(reverse("execution:run-live", args=[run.pk]))
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-trigger="every 2s"' in fragment.text
    Position.objects.filter(run=run).update(net_quantity=0)
    ScheduledRun.objects.filter(pk=run.pk).update(state=RunState.EXITED)
    fragment = owner_client.get(reverse("execution:run-live", args=[run.pk]))
    assert "hx-trigger" not in fragment.text and "Exited early" in fragment.text
    full = owner_client.get(reverse("execution:run-detail", args=[run.pk]))
    assert 'id="run-live"' in full.text and "<html" in full.text


def test_fragments_are_the_users_own(stranger_client, live_run):
    run, short, _ = live_run
    assert stranger_client.get(reverse("execution:run-live", args=[run.pk])).status_code == 404
    positions = stranger_client.get(reverse("execution:positions-live"))
    assert short.tradingsymbol not in positions.text
    response = stranger_client.post(reverse("execution:run-exit", args=[run.pk]))
    assert response.status_code == 404 and not OrderIntent.objects.exists()


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def test_fragment_queries_do_not_grow_with_orders(owner_client, owner, live_run):
    run, _, long_ = live_run
    urls = [
        reverse("execution:run-live", args=[run.pk]),
        reverse("execution:positions-live"),
        reverse("execution:runs-live"),
        reverse("trader:dashboard-live"),
    ]

    def fill():
        intent = IntentFactory(
            run=run,
            account=long_.account,
            state=IntentState.FILLED,
            filled_quantity=75,
            average_price=Decimal("20"),
        )
        Fill.objects.create(
            intent=intent,
            cumulative_quantity=75,
            quantity=75,
            price=Decimal("20"),
            filled_at=timezone.now(),
        )

    fill()
    for url in urls:  # warm: sessions, the funds cache
        _queries(owner_client, url)
    before = [_queries(owner_client, url) for url in urls]
    for _ in range(30):
        fill()
    after = [_queries(owner_client, url) for url in urls]
    assert after == before, dict(zip(urls, zip(before, after, strict=True), strict=True))
    assert max(after) <= 16


def test_exit_run_closes_every_broker_shorts_first_and_is_audited(
    owner_client, owner, live_run, monkeypatch
):
    run, short, long_ = live_run
    sent = []
    monkeypatch.setattr(
        "execution.enqueue.account_sends_enqueue", lambda payloads: sent.extend(payloads)
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = owner_client.post(reverse("execution:run-exit", args=[run.pk]))
    assert response.status_code == 302
    intents = list(OrderIntent.objects.filter(run=run, purpose=Purpose.MANUAL))
    by_side = {i.side: i for i in intents}
    assert set(by_side) == {"BUY", "SELL"}
    assert by_side["BUY"].phase < by_side["SELL"].phase  # the short is bought back first
    assert by_side["BUY"].account_id == short.account_id
    assert by_side["SELL"].account_id == long_.account_id
    assert {p["account_id"] for p in sent} == {short.account_id, long_.account_id}
    event = ExecutionEvent.objects.get(run_id=run.pk, kind="run.exit_manual")
    assert str(owner) in event.message and event.data["actor_id"] == owner.pk
    # Pressed again while the closing orders work: nothing more is sent.
    again = owner_client.post(reverse("execution:run-exit", args=[run.pk]), follow=True)
    assert "Nothing to exit" in again.text
    assert OrderIntent.objects.filter(run=run, purpose=Purpose.MANUAL).count() == 2


def test_exit_one_position_only(owner_client, live_run, monkeypatch):
    run, short, _ = live_run
    monkeypatch.setattr("execution.enqueue.account_sends_enqueue", lambda payloads: None)
    owner_client.post(reverse("execution:run-exit", args=[run.pk]), {"position": short.pk})
    intents = list(OrderIntent.objects.filter(run=run, purpose=Purpose.MANUAL))
    assert [(i.side, i.tradingsymbol) for i in intents] == [("BUY", short.tradingsymbol)]
    bad = owner_client.post(
        reverse("execution:run-exit", args=[run.pk]), {"position": "x"}, follow=True
    )
    assert bad.status_code == 200 and "not one of this run" in bad.text


def test_kill_switch_state_is_on_every_page_with_who_and_when(owner_client, owner):
    strategy_with_accounts(brokers=(), owner=owner)
    owner_client.post(reverse("execution:kill-switch"), {"action": "engage"})
    for url in (reverse("trader:dashboard"), reverse("execution:runs"), reverse("brokers:list")):
        page = owner_client.get(url)
        assert "KILL SWITCH ENGAGED" in page.text and "YOUR KILL SWITCH IS ENGAGED" in page.text
        assert "by you at" in page.text
    dashboard = owner_client.get(reverse("trader:dashboard"))
    assert "nothing enters until it is re-armed" in dashboard.text
    runs = owner_client.get(reverse("execution:runs"))
    assert "a test run would be skipped" in runs.text
    owner_client.post(reverse("execution:kill-switch"), {"action": "rearm"})
    assert "KILL SWITCH ENGAGED" not in owner_client.get(reverse("trader:dashboard")).text


def test_platform_switch_needs_the_named_permission_and_a_reason(client, owner_client, owner):
    staff = ProfileFactory().user
    staff.is_staff = True
    staff.save()
    client.force_login(staff)
    page = client.get(reverse("trader:dashboard"))
    assert "Platform-wide kill switch (admin)" not in page.text
    client.post(reverse("execution:kill-switch"), {"scope": "global", "reason": "outage"})
    assert not KillSwitch.objects.filter(scope="global", engaged=True).exists()
    staff.user_permissions.add(Permission.objects.get(codename="operate_global_kill_switch"))
    staff = type(staff).objects.get(pk=staff.pk)  # permissions are cached per instance
    client.force_login(staff)
    assert "Platform-wide kill switch (admin)" in client.get(reverse("trader:dashboard")).text
    no_reason = client.post(reverse("execution:kill-switch"), {"scope": "global"}, follow=True)
    assert "Say why" in no_reason.text
    client.post(reverse("execution:kill-switch"), {"scope": "global", "reason": "NSE outage"})
    switch = KillSwitch.objects.get(scope="global")
    assert switch.engaged and switch.engaged_by == staff and switch.reason == "NSE outage"
    seen = owner_client.get(reverse("execution:positions")).text
    assert "PLATFORM-WIDE KILL SWITCH ENGAGED" in seen and "NSE outage" in seen
    assert "Re-arm for everyone" not in seen
    assert ExecutionEvent.objects.filter(kind="killswitch.engaged").count() == 1


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_dashboard_shows_funds_and_todays_pnl_in_indian_format(owner, owner_client):
    book = PaperBookFactory(account__owner=owner, cash=Decimal("1000000"))
    paper_account_log_in(account=book.account, actor=owner)
    page = owner_client.get(reverse("trader:dashboard"))
    assert "₹10,00,000.00" in page.text and "Funds and margin" in page.text
    assert "Today&#x27;s P&amp;L" in page.text or "Today's P&amp;L" in page.text


def test_test_now_on_paper_is_refused_while_the_kill_switch_is_engaged(owner_client, owner):
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    owner_client.post(reverse("execution:kill-switch"), {"action": "engage"})
    response = owner_client.post(reverse("execution:paper-test", args=[strategy.pk]), follow=True)
    assert "re-arm it before a test run" in response.text
    assert not ScheduledRun.objects.filter(is_test=True).exists()


def test_dashboard_books_show_each_accounts_latest_orders_and_trades_newest_first(
    owner_client, live_run
):
    run, short, long_ = live_run
    kite, paper = short.account, long_.account
    start = NOW - datetime.timedelta(minutes=30)
    # 25 orders on Kite a second apart (the oldest five fall off the book), one on paper.
    for index in range(25):
        IntentFactory(
            run=run,
            account=kite,
            side="SELL" if index % 2 else "BUY",
            tradingsymbol=f"NIFTY26D17{24000 + 50 * index}CE",
            intended_at=start + datetime.timedelta(seconds=index),
            state=IntentState.FILLED,
            filled_quantity=75,
        )
    paper_order = IntentFactory(
        run=run, account=paper, side="SELL", tradingsymbol="NIFTY26D1725000PE", intended_at=start
    )
    Fill.objects.create(
        intent=paper_order,
        cumulative_quantity=75,
        quantity=75,
        price=Decimal("1234.5"),
        filled_at=start + datetime.timedelta(seconds=3),
    )
    text = owner_client.get(reverse("trader:dashboard-live")).text
    kite_book = text[text.index("Kite main: order book") : text.index("Paper one: order book")]
    shown = re.findall(r"NIFTY26D17(\d{5})CE", kite_book)
    assert shown == [str(24000 + 50 * index) for index in range(24, 4, -1)]
    assert "Orders (latest 20)" in kite_book and "No trade yet." in kite_book
    paper_book = text[text.index("Paper one: order book") :]
    trade = re.search(r"<caption>Trades \(latest 1\)</caption>.*?</tbody>", paper_book, re.S)
    assert trade is not None
    assert ">SELL<" in trade.group() and "NIFTY26D1725000PE" in trade.group()
    assert "₹1,234.50" in trade.group()
    assert ">09:30:03<" in trade.group()  # the fill's own time, IST


def test_polled_fragments_do_not_read_the_kill_switch_that_pages_show(owner_client, live_run):
    run, _, _ = live_run
    owner_client.post(reverse("execution:kill-switch"), {"action": "engage"})
    for url in (
        reverse("trader:dashboard-live"),
        reverse("execution:run-live", args=[run.pk]),
        reverse("execution:positions-live"),
    ):
        with CaptureQueriesContext(connection) as ctx:
            assert owner_client.get(url).status_code == 200
        assert not [q for q in ctx.captured_queries if "execution_killswitch" in q["sql"]], url
    with CaptureQueriesContext(connection) as ctx:
        page = owner_client.get(reverse("execution:positions"))
    assert "YOUR KILL SWITCH IS ENGAGED" in page.text
    # Read once for the header, the banner and the buttons.
    assert len([q for q in ctx.captured_queries if "execution_killswitch" in q["sql"]]) == 1


def test_dashboard_and_positions_poll_while_something_can_change_and_stop_when_not(
    owner_client, live_run
):
    run, short, _ = live_run
    dashboard, positions = reverse("trader:dashboard-live"), reverse("execution:positions-live")
    assert 'hx-trigger="every 3s"' in owner_client.get(dashboard).text
    assert 'hx-trigger="every 2s"' in owner_client.get(positions).text
    # Flat, the run over, but one order still waiting for the broker: the dashboard polls on.
    Position.objects.filter(run=run).update(net_quantity=0)
    ScheduledRun.objects.filter(pk=run.pk).update(state=RunState.EXITED)
    pending = IntentFactory(run=run, account=short.account, state=IntentState.SENT)
    assert 'hx-trigger="every 3s"' in owner_client.get(dashboard).text
    assert "hx-trigger" not in owner_client.get(positions).text
    OrderIntent.objects.filter(pk=pending.pk).update(state=IntentState.CANCELLED)
    assert "hx-trigger" not in owner_client.get(dashboard).text
