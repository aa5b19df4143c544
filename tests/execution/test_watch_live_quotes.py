"""The watch marking a live run with its own broker's quotes (the Kite emulator over HTTP), and
holding every exit when that broker gives no fresh price: the owner is told once a minute, and
nothing is sent on a price the platform does not have."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.registry import get_adapter
from execution.models import ExecutionEvent, OrderIntent, Position
from execution.protection.watch import runs_watch
from tests.execution.test_engine_sends_at_brokers import _watched_run

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.network,
    pytest.mark.usefixtures("calendar_loaded_today", "session_open"),
]


@pytest.fixture
def kite_live(settings):
    from tests.brokers.contract.venues import make_venue
    from tests.trader.factories import ProfileFactory

    venue = make_venue("kite", settings)
    venue.account.owner = ProfileFactory().user
    venue.account.save()
    venue.login()
    yield venue
    venue.stop()


def test_a_live_run_is_marked_with_its_brokers_own_quotes(kite_live):
    run, _ = _watched_run(kite_live, stop_loss_mtm=Decimal("100000000"))
    runs_watch(now=timezone.now(), send=False)
    positions = list(Position.objects.filter(run=run))
    quotes = get_adapter(kite_live.account).quote([f"NFO:{p.tradingsymbol}" for p in positions])
    for position in positions:
        assert position.last_price == quotes[f"NFO:{position.tradingsymbol}"].last_price
    run.refresh_from_db()
    expected = sum((p.pnl(p.last_price) for p in positions), Decimal(0))
    assert run.mtm == expected.quantize(Decimal("0.01"))
    assert not OrderIntent.objects.filter(run=run).exists()  # far inside the limit


def test_no_fresh_price_holds_every_exit_and_tells_the_owner_once_a_minute(kite_live):
    # A stop-loss that any price would trigger: only the missing price can hold it.
    run, _ = _watched_run(kite_live, stop_loss_mtm=Decimal("0.01"), target_mtm=Decimal("0.01"))
    kite_live.stop()  # the broker stops answering
    runs_watch(now=timezone.now(), send=False)
    runs_watch(now=timezone.now(), send=False)
    assert not OrderIntent.objects.filter(run=run).exists()
    run.refresh_from_db()
    assert not run.exit_reason
    (alert,) = ExecutionEvent.objects.filter(kind="price.stale", run_id=run.pk)
    assert alert.message.startswith("Exits held: no price from")
