"""Broker positions against ours, and "flatten everything" closing positions opened outside
the platform (issue 13, item 5), against the Kite emulator on loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from brokers.base import OrderRequest, OrderType, Product, Side
from brokers.emulator import start_in_thread
from brokers.registry import get_adapter
from execution.broker_positions import broker_positions_compare, outside_positions_flatten
from execution.models import ExecutionEvent, Position
from execution.services import positions_differ_notify
from tests.brokers.factories import BrokerAccountFactory
from tests.brokers.fixed_market import CONTRACT, FixedQuotes
from tests.execution.engine_factories import RunFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]
OTHER = "NIFTY25JUN24100CE"


@pytest.fixture
def kite(settings):
    running = start_in_thread("kite", quotes=FixedQuotes())
    running.add_account(api_key="posapp", api_secret="possecret", user_id="ZP0001")
    settings.BROKER_BASE_URLS = {**settings.BROKER_BASE_URLS, "kite": running.base_url}
    yield running
    running.stop()


@pytest.fixture
def account(kite):
    return BrokerAccountFactory(api_key="posapp", access_token=kite.issue_token("posapp"))


def place(account, symbol: str, side: Side, quantity: int, tag: str) -> None:
    get_adapter(account).place_order(
        OrderRequest(
            exchange="NFO", tradingsymbol=symbol, side=side, quantity=quantity,
            order_type=OrderType.MARKET, product=Product.NRML, tag=tag,
            market_protection=Decimal("2"),
        )
    )  # fmt: skip


def ours(account, symbol: str, quantity: int) -> Position:
    run = RunFactory(owner=account.owner, strategy_version__strategy__owner=account.owner)
    return Position.objects.create(
        run=run, account=account, owner=account.owner, exchange="NFO", tradingsymbol=symbol,
        product="NRML", lot_size=75, net_quantity=quantity,
        sell_quantity=max(-quantity, 0), sell_value=Decimal("100") * max(-quantity, 0),
        buy_quantity=max(quantity, 0), buy_value=Decimal("100") * max(quantity, 0),
    )  # fmt: skip


@pytest.fixture
def mixed(account):
    """At Kite: CONTRACT -150 (ours -75, the rest sold outside) and OTHER +75 (outside)."""
    place(account, CONTRACT, Side.SELL, 75, "ours1")
    ours(account, CONTRACT, -75)
    place(account, CONTRACT, Side.SELL, 75, "manual1")
    place(account, OTHER, Side.BUY, 75, "manual2")
    return account


def test_differences_are_found_and_flagged_by_kind(mixed):
    compared = broker_positions_compare(account=mixed)
    found = {d.tradingsymbol: d for d in compared.differences}
    assert not compared.problem and set(found) == {CONTRACT, OTHER}
    assert (found[CONTRACT].broker_quantity, found[CONTRACT].our_quantity) == (-150, -75)
    assert found[CONTRACT].kind == "differs" and found[CONTRACT].outside_quantity == -75
    assert found[OTHER].kind == "outside" and found[OTHER].outside_quantity == 75
    assert "opened outside the platform" in found[OTHER].words

    # A position of ours the broker does not show is flagged, and never "closed" outside.
    ours(mixed, "NIFTY25JUN24200PE", 75)
    missing = {d.tradingsymbol: d for d in broker_positions_compare(account=mixed).differences}
    assert missing["NIFTY25JUN24200PE"].kind == "missing"
    assert missing["NIFTY25JUN24200PE"].outside_quantity == 0


def test_flatten_everything_closes_what_was_opened_outside_shorts_first(mixed, kite):
    sent_before = []
    accepted = outside_positions_flatten(
        user_id=mixed.owner_id, before_send=lambda: sent_before.append(len(kite.orders("posapp")))
    )
    assert accepted == 2
    book = sorted(get_adapter(mixed).order_book(), key=lambda o: int(o.broker_order_id))
    # Read before the engine's own closing orders went (the hook), then the two closes.
    assert sent_before == [3] and len(book) == 5
    assert [(o.tradingsymbol, o.side, o.quantity) for o in book[3:]] == [
        (CONTRACT, Side.BUY, 75),  # the short sold outside, bought back first
        (OTHER, Side.SELL, 75),
    ]
    left = {d.tradingsymbol: d for d in broker_positions_compare(account=mixed).differences}
    assert left == {}  # CONTRACT -75 is ours again (the engine's own flatten closes it)
    assert ExecutionEvent.objects.filter(kind="killswitch.outside_closed").count() == 2


def test_a_broker_that_cannot_be_read_is_said_so_and_nothing_is_sent(mixed, kite):
    kite.revoke_token(mixed.access_token)
    assert "could not be read" in broker_positions_compare(account=mixed).problem
    assert outside_positions_flatten(user_id=mixed.owner_id) == 0
    assert len(kite.orders("posapp")) == 3
    assert ExecutionEvent.objects.filter(kind="killswitch.outside_failed").exists()


def test_positions_page_and_ready_check_flag_the_differences(mixed, client):
    from execution.planning.plan import today_ist

    client.force_login(mixed.owner)
    page = client.get(reverse("execution:positions")).content.decode()
    assert 'data-difference="outside"' in page and 'data-difference="differs"' in page
    assert "data-flatten-everything" in page
    lines = positions_differ_notify(account=mixed, day=today_ist())
    assert len(lines) == 2
    positions_differ_notify(account=mixed, day=today_ist())
    [message] = mail.outbox  # once a day
    assert "opened outside the platform" in message.body


def test_the_kill_switch_form_asks_for_the_outside_flatten(
    mixed, client, monkeypatch, django_capture_on_commit_callbacks
):
    from execution.protection import killswitch

    called = []
    monkeypatch.setattr(
        killswitch.enqueue, "task_enqueue", lambda name, args: called.append((name, *args))
    )
    monkeypatch.setattr(killswitch.enqueue, "account_sends_enqueue", called.append)
    client.force_login(mixed.owner)
    url = reverse("execution:kill-switch")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "engage", "flatten_outside": "1"}, follow=True)
    assert "including those opened outside the platform" in response.content.decode()
    # One task reads the brokers' positions, then starts the engine's own closing orders.
    [(task, user_id, _cancel, payloads)] = called
    assert task == killswitch.enqueue.KILL_SWITCH_FLATTEN_OUTSIDE
    assert user_id == mixed.owner_id and len(payloads) == 1  # our own CONTRACT -75 too
    called.clear()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "engage"})
    # The header's switch: the platform's own closing orders only, sent straight away.
    tasks = [entry[0] for entry in called if isinstance(entry, tuple)]
    [sent] = [entry for entry in called if isinstance(entry, list)]
    assert killswitch.enqueue.KILL_SWITCH_FLATTEN_OUTSIDE not in tasks and len(sent) == 1


def test_the_outside_flatten_task_starts_the_engines_own_orders_after_reading_positions(
    monkeypatch,
):
    from execution import broker_positions, tasks
    from execution.protection import killswitch

    calls: list = []
    monkeypatch.setattr(killswitch.enqueue, "task_enqueue", lambda name, args: calls.append(name))
    monkeypatch.setattr(
        killswitch.enqueue, "account_sends_enqueue", lambda payloads: calls.append(len(payloads))
    )

    def flatten(*, user_id, before_send):
        calls.append(f"positions of {user_id} read")
        before_send()
        calls.append("outside closed")
        return 1

    monkeypatch.setattr(broker_positions, "outside_positions_flatten", flatten)
    assert tasks.kill_switch_flatten_outside_task(7, [11, 12], [{"account_id": 3}]) == 1
    assert calls == ["positions of 7 read", killswitch.enqueue.ORDERS_CANCEL, 1, "outside closed"]


def test_at_a_limit_only_broker_outside_positions_close_with_protected_limits(
    mixed, kite, monkeypatch
):
    """A broker that takes only LIMIT orders from algos: each outside position is closed by a
    LIMIT at the last price moved by the protection percent against us (a buy above it, a
    sell below it), shorts first."""
    from execution.intents import marketable

    monkeypatch.setattr(marketable, "market_orders_allowed", lambda broker: False)
    last = {
        d.tradingsymbol: d.last_price for d in broker_positions_compare(account=mixed).differences
    }
    assert all(last.values())
    adapter = get_adapter(mixed)
    written = []
    place_order = adapter.place_order
    adapter.place_order = lambda request: written.append(request) or place_order(request)
    assert outside_positions_flatten(user_id=mixed.owner_id, adapters={mixed.pk: adapter}) == 2
    assert [(r.tradingsymbol, r.side, r.order_type) for r in written] == [
        (CONTRACT, Side.BUY, OrderType.LIMIT),
        (OTHER, Side.SELL, OrderType.LIMIT),
    ]
    buy, sell = written
    assert buy.price > last[CONTRACT] and sell.price < last[OTHER]
    assert len(kite.orders("posapp")) == 5  # both accepted at the broker


def test_an_outside_close_the_budget_or_broker_refuses_is_recorded_not_retried(
    mixed, kite, monkeypatch
):
    monkeypatch.setattr("execution.send.sender.slot_take", lambda account_id, limit: False)
    assert outside_positions_flatten(user_id=mixed.owner_id) == 0
    assert len(kite.orders("posapp")) == 3  # nothing more was written
    refusals = ExecutionEvent.objects.filter(kind="killswitch.outside_failed")
    assert refusals.count() == 2
    assert all("No orders-per-second slot came free." in e.message for e in refusals)
