"""Watching: MTM, per-leg and combined stop-loss / target / trailing, square-off; once each."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from execution.markettime import IST
from execution.models import OrderIntent, Position, ScheduledRun
from execution.protection.watch import runs_watch
from execution.reference import contracts, instruments
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.engine_factories import LegFactory, RunFactory, VersionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("session_open")]

DAY = datetime.date(2026, 11, 19)
NOON = datetime.datetime.combine(DAY, datetime.time(12, 0), tzinfo=IST)


class PricedMarket:
    """Option prices set by the test, per strike."""

    def __init__(self, prices):
        self.prices = prices

    def option_quote(self, symbol, expiry, strike, option_type, at=None):
        class Quote:
            ltp = self.prices[int(strike)]

        return Quote()


def _open_run(*, version_kwargs=None, leg_kwargs=None):
    version = VersionFactory(**(version_kwargs or {}))
    run = RunFactory(strategy_version=version, owner=version.strategy.owner, session_date=DAY)
    account = BrokerAccountFactory(owner=run.owner)
    expiry = contracts.pick_expiry("NIFTY", DAY, "current_week")
    positions = []
    for strike, quantity, price in ((24000, -75, "100"), (24500, 75, "40")):
        instrument = instruments.instrument_for("NIFTY", expiry, strike, "CE")
        symbol, token = instruments.broker_symbol(instrument, "kite")
        leg = LegFactory(
            version=version,
            side="SELL" if quantity < 0 else "BUY",
            **(leg_kwargs or {}) if quantity < 0 else {},
        )
        value = Decimal(price) * abs(quantity)
        positions.append(
            Position.objects.create(
                run=run,
                account=account,
                owner=run.owner,
                leg=leg,
                exchange="NFO",
                tradingsymbol=symbol,
                instrument_token=token,
                lot_size=75,
                net_quantity=quantity,
                buy_quantity=max(quantity, 0),
                sell_quantity=max(-quantity, 0),
                buy_value=value if quantity > 0 else 0,
                sell_value=value if quantity < 0 else 0,
            )
        )
    return run, positions


def test_mtm_is_marked_and_nothing_exits_inside_the_limits():
    run, _ = _open_run(version_kwargs={"stop_loss_mtm": Decimal("5000")})
    runs_watch(
        now=NOON, market=PricedMarket({24000: Decimal("90"), 24500: Decimal("38")}), send=False
    )
    run.refresh_from_db()
    # Short gains 10 x 75, long loses 2 x 75.
    assert run.mtm == Decimal("600.00") and run.peak_mtm == Decimal("600.00")
    assert not OrderIntent.objects.exists()


def test_combined_stop_loss_closes_every_leg_shorts_first_once():
    run, _ = _open_run(version_kwargs={"stop_loss_mtm": Decimal("3000")})
    market = PricedMarket({24000: Decimal("150"), 24500: Decimal("45")})
    runs_watch(now=NOON, market=market, send=False)
    run.refresh_from_db()
    assert run.exit_reason.startswith("combined stop-loss")
    closing = list(OrderIntent.objects.order_by("phase"))
    assert [(i.side, i.purpose, i.quantity) for i in closing] == [
        ("BUY", "stop", 75),
        ("SELL", "stop", 75),
    ]
    runs_watch(now=NOON, market=market, send=False)
    assert OrderIntent.objects.count() == 2


def test_trailing_stop_fires_after_giving_back_from_the_best_level():
    run, _ = _open_run(version_kwargs={"trailing_stop_mtm": Decimal("1000")})
    runs_watch(
        now=NOON, market=PricedMarket({24000: Decimal("60"), 24500: Decimal("40")}), send=False
    )
    run.refresh_from_db()
    assert run.peak_mtm == Decimal("3000.00") and not run.exit_reason
    runs_watch(
        now=NOON, market=PricedMarket({24000: Decimal("75"), 24500: Decimal("40")}), send=False
    )
    run.refresh_from_db()
    assert run.exit_reason.startswith("trailing stop")


def test_target_fires():
    run, _ = _open_run(version_kwargs={"target_mtm": Decimal("2000")})
    runs_watch(
        now=NOON, market=PricedMarket({24000: Decimal("70"), 24500: Decimal("40")}), send=False
    )
    run.refresh_from_db()
    assert run.exit_reason.startswith("combined target")


def test_leg_stop_loss_in_percent_closes_only_that_leg():
    run, positions = _open_run(leg_kwargs={"stop_loss": Decimal("30"), "stop_loss_unit": "percent"})
    runs_watch(
        now=NOON, market=PricedMarket({24000: Decimal("131"), 24500: Decimal("40")}), send=False
    )
    (closing,) = OrderIntent.objects.all()
    assert closing.side == "BUY" and closing.tradingsymbol == positions[0].tradingsymbol
    assert not ScheduledRun.objects.get(pk=run.pk).exit_reason


def test_intraday_positions_are_squared_off_before_the_close():
    run, _ = _open_run()
    # 19-Nov-2026 closes at 15:40 (since 3-Aug-2026): 15:25 is not yet "before the close"...
    early = datetime.datetime.combine(DAY, datetime.time(15, 25), tzinfo=IST)
    runs_watch(
        now=early, market=PricedMarket({24000: Decimal("100"), 24500: Decimal("40")}), send=False
    )
    run.refresh_from_db()
    assert not run.exit_reason and not OrderIntent.objects.exists()
    # ...15:35 is.
    late = datetime.datetime.combine(DAY, datetime.time(15, 35), tzinfo=IST)
    runs_watch(
        now=late, market=PricedMarket({24000: Decimal("100"), 24500: Decimal("40")}), send=False
    )
    run.refresh_from_db()
    assert run.exit_reason == "intraday square-off before the close"
    assert set(OrderIntent.objects.values_list("purpose", flat=True)) == {"square_off"}


def _watch_queries(runs: int) -> tuple[int, list[ScheduledRun]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    opened = [_open_run()[0] for _ in range(runs)]
    late = datetime.datetime.combine(DAY, datetime.time(15, 35), tzinfo=IST)
    market = PricedMarket({24000: Decimal("100"), 24500: Decimal("40")})
    with CaptureQueriesContext(connection) as ctx:
        assert runs_watch(now=late, market=market, send=False) == runs
    return len(ctx.captured_queries), opened


def test_a_pass_of_the_watch_does_not_read_the_calendar_or_write_rows_per_run():
    """The watch runs every second over every open run: the square-off's session window and
    the closing orders' freeze quantity are read once per day (and underlying), and runs and
    positions are written in one statement each, so its queries do not grow with the number of
    runs (the simulated day's 200 strategies spent most of their time there)."""
    few, _ = _watch_queries(2)
    ScheduledRun.objects.all().delete()
    many, opened = _watch_queries(12)
    # Still marked and squared off, each run on its own figures.
    for run in opened:
        run.refresh_from_db()
        assert run.exit_reason == "intraday square-off before the close"
        assert run.mtm == Decimal("0.00")
    assert OrderIntent.objects.filter(purpose="square_off").count() == 12 * 2
    assert many == few
