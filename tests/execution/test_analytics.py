"""Analytics selectors: exact percentiles, broker outcomes, charges per strategy and month,
equity curve and drawdown, paper and live apart, and flat query counts."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from brokers.models import Broker
from execution.analytics import reports as analytics
from execution.models import Boundary, IntentState
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.analytics_helpers import audit, closed_trade, filled, run_on, sent
from tests.execution.engine_factories import VersionFactory

D = Decimal
DAY = datetime.date(2026, 3, 2)
WIDE = {"start": datetime.date(2026, 1, 1), "end": datetime.date(2026, 12, 31)}

pytestmark = pytest.mark.django_db


@pytest.fixture
def version():
    return VersionFactory()


@pytest.fixture
def kite(version):
    return BrokerAccountFactory(owner=version.strategy.owner, broker=Broker.KITE, label="Main")


@pytest.fixture
def paper(version):
    return BrokerAccountFactory(owner=version.strategy.owner, broker=Broker.PAPER, label="Sim")


def test_percentiles_are_nearest_rank_values_that_happened():
    values = [D(v) for v in range(1, 11)]
    assert [analytics.percentile(values, p) for p in (50, 90, 99)] == [D(5), D(9), D(10)]
    assert analytics.percentile([D(7)], 99) == D(7)
    assert analytics.percentile([], 50) is None
    assert analytics.LatencyStats.of([D(3), D(1), D(2)]).max == D(3)


def test_timing_per_order_day_account_and_strategy(version, kite, paper):
    first = run_on(version, DAY)
    for lag in range(1, 11):  # 1..10 ms after T, acknowledged 30 ms later
        sent(first, kite, lag_ms=lag, ack_ms=lag + 30)
    early = sent(first, paper, lag_ms=-3, ack_ms=None)
    second = run_on(version, DAY + datetime.timedelta(days=1))
    sent(second, paper, lag_ms=250, ack_ms=400)
    sent(second, paper, lag_ms=None, ack_ms=None, state=IntentState.INTENT)
    sent(run_on(VersionFactory(), DAY), BrokerAccountFactory(), lag_ms=999)  # someone else's

    report = analytics.timing_for_user(user=version.strategy.owner, **WIDE)

    overall = report.overall
    # 12 lags sorted: -3, 1..10, 250 → ranks 6, 11, 12
    assert (overall.send.count, overall.send.p50, overall.send.p90) == (12, D(5), D(10))
    assert (overall.send.p99, overall.send.max, overall.early) == (D(250), D(250), 1)
    assert (overall.ack.count, overall.ack.p50, overall.ack.max) == (11, D(36), D(400))
    assert [(g.label, g.send.count, g.early) for g in report.by_day] == [
        ("2026-03-02", 11, 1),
        ("2026-03-03", 1, 0),
    ]
    by_account = {g.label: g for g in report.by_account}
    assert by_account["Main · Zerodha Kite"].send.p90 == D(9)
    assert by_account["Sim · Paper (simulated)"].send.max == D(250)
    assert [g.send.count for g in report.by_strategy] == [12]
    assert [o.intent_id for o in report.early_orders] == [early.pk]
    assert [o.send_ms for o in report.slowest[:3]] == [D(250), D(10), D(9)]


def test_timing_keeps_microseconds_exact(version, kite):
    run = run_on(version, DAY)
    sent(run, kite, lag_ms=0.125, ack_ms=12.5)
    report = analytics.timing_for_user(user=version.strategy.owner, start=DAY, end=DAY)
    assert (report.overall.send.p50, report.overall.ack.p50) == (D("0.125"), D("12.5"))


def test_broker_comparison_rejections_and_unknown_outcomes(version, kite, paper):
    run = run_on(version, DAY)
    sent(run, kite, lag_ms=2, ack_ms=32)  # acknowledged 30 ms after the send
    sent(run, kite, lag_ms=2, ack_ms=52)  # 50 ms
    for _ in range(2):
        rejected = sent(
            run, kite, ack_ms=None, state=IntentState.REJECTED, error="Insufficient margin"
        )
        audit(rejected, "rejected", previous="intent")
    moved = sent(run, kite, ack_ms=None, state=IntentState.FAILED_OVER, error="RMS: blocked")
    audit(moved, "rejected", previous="intent")
    audit(moved, "failed_over", previous="rejected")
    found = sent(run, kite, ack_ms=None, state=IntentState.FILLED)
    audit(found, "unknown", previous="intent")
    audit(found, "filled", previous="unknown")
    lost = sent(run, kite, ack_ms=None, state=IntentState.UNKNOWN)
    audit(lost, "unknown", previous="intent")
    sent(run, paper, lag_ms=1, ack_ms=3)
    other = sent(run_on(VersionFactory(), DAY), BrokerAccountFactory(), state="rejected")
    audit(other, "rejected", previous="intent")

    rows = {
        r.account: r
        for r in analytics.broker_comparison_for_user(user=version.strategy.owner, **WIDE)
    }

    main = rows["Main · Zerodha Kite"]
    assert (main.orders, main.acknowledged, main.mode) == (7, 2, "live")
    assert (main.ack_latency.p50, main.ack_latency.max) == (D(30), D(50))
    assert (main.rejected, main.rejection_percent) == (3, D("42.9"))
    assert main.reasons == [("Insufficient margin", 2), ("RMS: blocked", 1)]
    assert (main.unknown, main.unresolved) == (2, 1)
    assert main.resolutions == [("Found at the broker, filled", 1)]
    sim = rows["Sim · Paper (simulated)"]
    assert (sim.mode, sim.orders, sim.rejected, sim.rejection_percent) == ("paper", 1, 0, D(0))
    assert len(rows) == 2


def _straddle(version, account, day, *, source_ref=""):
    """§4.2's worked example traded for real: two 65-unit sells at 100, bought back at 80."""
    entry = run_on(version, day, source_ref=source_ref or f"e{day}")
    exit_run = run_on(
        version, day, boundary=Boundary.EXIT, entry_run=entry, source_ref=source_ref or f"e{day}"
    )
    for symbol in ("NIFTY26MAR24000CE", "NIFTY26MAR24000PE"):
        filled(entry, account, side="SELL", quantity=65, price="100", tradingsymbol=symbol)
        filled(
            exit_run,
            account,
            side="BUY",
            quantity=65,
            price="80",
            tradingsymbol=symbol,
            position_run=entry,
        )
    return entry


def test_costs_per_strategy_and_month_use_the_rate_of_each_trade_date(version, kite):
    _straddle(version, kite, datetime.date(2026, 3, 31))
    _straddle(version, kite, datetime.date(2026, 4, 1))

    rows = analytics.costs_for_user(user=version.strategy.owner, **WIDE)

    march, april = rows
    assert (march.month, march.mode, march.charges.orders) == (datetime.date(2026, 3, 1), "live", 4)
    assert (march.charges.brokerage, march.charges.stt, march.charges.total) == (
        D("80.00"),
        D("13.00"),
        D("117.54"),  # NSE's transaction charge re-split from 1-Mar-2026 (test_charges)
    )
    assert march.gross_pnl == D("2600.00")
    assert march.percent_of_gross == D("4.5")  # 117.54 / 2600
    assert march.net_pnl == D("2482.46")
    assert (april.charges.stt, april.charges.total) == (D("19.50"), D("124.04"))


def test_costs_label_paper_brokerage_and_count_orders_without_a_rate(version, paper, kite):
    _straddle(version, paper, DAY)
    _straddle(version, kite, datetime.date(2024, 9, 2))  # before the first seeded rate
    rows = analytics.costs_for_user(
        user=version.strategy.owner, start=datetime.date(2024, 1, 1), end=DAY
    )
    old, sim = rows
    assert (old.mode, old.charges.total, old.orders_without_rate) == ("live", D(0), 4)
    assert old.percent_of_gross == D(0)  # no charge counted, gross 2600
    assert (sim.mode, sim.charges.brokerage, sim.charges.brokerage_simulated) == ("paper", 0, True)
    assert sim.charges.total == D("23.14")  # 117.54 less ₹80 brokerage and its ₹14.40 GST


def test_charges_are_not_a_percentage_of_a_loss(version, kite):
    entry = run_on(version, DAY)
    filled(entry, kite, side="SELL", quantity=65, price="80")
    filled(entry, kite, side="BUY", quantity=65, price="100")
    (row,) = analytics.costs_for_user(user=version.strategy.owner, **WIDE)
    assert row.gross_pnl == D("-1300.00") and row.percent_of_gross is None


def test_equity_curve_drawdown_and_win_rate():
    curve = analytics.equity_curve(
        [(1, D(1000)), (2, D(-1500)), (3, D(300)), (4, D(2000)), (5, D(0))]
    )
    assert [p.cumulative for p in curve.points] == [D(1000), D(-500), D(-200), D(1800), D(1800)]
    assert [p.drawdown for p in curve.points] == [D(0), D(1500), D(1200), D(0), D(0)]
    assert (curve.max_drawdown, curve.total, curve.win_rate_percent) == (D(1500), D(1800), D(60))
    assert analytics.equity_curve([(1, D(-5))]).max_drawdown == D(5)  # the peak starts at 0


def test_performance_per_strategy_keeps_paper_and_live_apart(version, kite, paper):
    for offset, pnl in enumerate(["1000", "-1500", "300", "2000"]):
        run = run_on(version, DAY + datetime.timedelta(days=offset))
        closed_trade(run, kite, pnl=pnl)
    paper_run = run_on(version, DAY, source_ref="paper")
    closed_trade(paper_run, paper, pnl="-50")
    closed_trade(paper_run, paper, pnl="20", symbol="Y")
    test_run = run_on(version, DAY, source_ref="test", is_test=True)
    closed_trade(test_run, kite, pnl="99999")

    live, sim = analytics.performance_for_user(user=version.strategy.owner, **WIDE)

    assert (live.mode, live.runs, live.curve.total) == ("live", 4, D(1800))
    assert (live.curve.max_drawdown, live.curve.win_rate_percent) == (D(1500), D("75.0"))
    assert (sim.mode, sim.runs, sim.curve.total, sim.curve.max_drawdown) == (
        "paper",
        1,
        D(-30),
        D(30),
    )
    assert analytics.performance_for_user(user=BrokerAccountFactory().owner, **WIDE) == []


def test_performance_nets_the_charges_of_its_fills(version, kite):
    _straddle(version, kite, datetime.date(2026, 3, 31))
    (result,) = analytics.performance_for_user(user=version.strategy.owner, **WIDE)
    assert (result.curve.total, result.charges, result.net_pnl) == (
        D("2600.00"),
        D("117.54"),
        D("2482.46"),
    )


def _queries(func, **kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        func(**kwargs)
    return len(captured)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (analytics.timing_for_user, 1),
        (analytics.broker_comparison_for_user, 2),
        (analytics.costs_for_user, 4),
        (analytics.performance_for_user, 5),
    ],
)
def test_query_counts_stay_flat_as_orders_and_runs_grow(version, kite, paper, selector, expected):
    user = version.strategy.owner

    def grow(days: int) -> None:
        # Weekdays only: the database refuses a weekend run.
        start = datetime.date(2026, 5, 4) if days > 1 else DAY
        weekdays = [start + datetime.timedelta(days=n) for n in range(days * 2)]
        for offset, day in enumerate([d for d in weekdays if d.weekday() < 5][:days]):
            for account in (kite, paper):
                entry = _straddle(version, account, day, source_ref=f"{account.pk}-{offset}")
                bad = sent(entry, account, state=IntentState.UNKNOWN, ack_ms=None)
                audit(bad, "unknown", previous="intent")

    grow(1)
    small = _queries(selector, user=user, **WIDE)
    grow(6)
    assert _queries(selector, user=user, **WIDE) == small == expected
