"""Analytics pages through HTTP: login only, own data only (owner, subscriber, stranger), the
figures a trader reads, bad periods, and flat query counts as orders and runs grow."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from brokers.models import Broker
from execution.models import IntentState, OrderIntent
from tests.brokers.factories import BrokerAccountFactory
from tests.execution.analytics_helpers import audit, closed_trade, filled, run_on, sent
from tests.execution.engine_factories import VersionFactory
from tests.trader.factories import ProfileFactory

DAY = datetime.date(2026, 3, 2)
PERIOD = {"start": "2026-03-01", "end": "2026-03-31"}
PAGES = [
    "execution:analytics",
    "execution:analytics-timing",
    "execution:analytics-brokers",
    "execution:analytics-costs",
    "execution:analytics-performance",
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner):
    """The owner's strategy traded on a Zerodha account; a subscriber trades the same version
    from a marketplace deployment on their own account."""
    version = VersionFactory(strategy__owner=owner, strategy__name="Owner Straddle")
    kite = BrokerAccountFactory(owner=owner, broker=Broker.KITE, label="Owner Kite")
    entry = run_on(version, DAY)
    filled(entry, kite, side="SELL", quantity=65, price="100")
    filled(entry, kite, side="BUY", quantity=65, price="80")
    early = sent(entry, kite, lag_ms=-4, ack_ms=None, tag="EARLYTAG1")
    rejected = sent(entry, kite, state=IntentState.REJECTED, error="Margin shortfall of 5000")
    audit(rejected, "rejected", previous="intent")
    subscriber = ProfileFactory().user
    upstox = BrokerAccountFactory(owner=subscriber, broker=Broker.UPSTOX, label="Sub Upstox")
    deployed = run_on(version, DAY, owner=subscriber, source="deployment", source_ref="41")
    closed_trade(deployed, upstox, pnl="777")
    sent(deployed, upstox, lag_ms=3, tag="SUBTAG0001")
    return {"version": version, "subscriber": subscriber, "early": early}


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("name", PAGES)
def test_pages_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "/login" in response["Location"]


def test_nav_links_to_analytics(owner_client):
    page = owner_client.get(reverse("execution:analytics"))
    assert page.status_code == 200
    assert f'href="{reverse("execution:analytics")}"' in page.content.decode()


def test_timing_page_shows_the_owners_lags_and_early_orders_in_red(world, owner_client):
    page = owner_client.get(reverse("execution:analytics-timing"), PERIOD).content.decode()
    assert "EARLYTAG1" in page and "1 order left early" in page
    assert '<tr class="neg">' in page and "-4" in page
    assert "SUBTAG0001" not in page  # the subscriber's order is theirs


def test_broker_page_shows_rejection_reasons_in_words(world, owner_client):
    page = owner_client.get(reverse("execution:analytics-brokers"), PERIOD).content.decode()
    assert "Owner Kite · Zerodha Kite" in page
    assert "Margin shortfall of 5000 — 1\N{MULTIPLICATION SIGN}" in page
    assert "Sub Upstox" not in page
    # The world's fills have no reference price: nothing to measure slippage against.
    assert "<dt>Slippage</dt><dd>—</dd>" in page


def test_broker_page_shows_slippage_against_the_reference_quote(owner, owner_client):
    version = VersionFactory(strategy__owner=owner)
    kite = BrokerAccountFactory(owner=owner, broker=Broker.KITE, label="Owner Kite")
    entry = run_on(version, DAY)
    # A BUY of 65 quoted 80.00 at T - ε filled at 80.40 (lost 26.00), a SELL of 65 quoted
    # 100.00 filled at 99.90 (lost 6.50): ₹32.50 over 65 x 180 = ₹11,700 quoted, 0.28 %.
    buy = filled(entry, kite, side="BUY", quantity=65, price="80.40")
    sell = filled(entry, kite, side="SELL", quantity=65, price="99.90", tradingsymbol="S2")
    OrderIntent.objects.filter(pk=buy.pk).update(reference_price=Decimal("80.00"))
    OrderIntent.objects.filter(pk=sell.pk).update(reference_price=Decimal("100.00"))
    filled(entry, kite, side="SELL", quantity=65, price="50", tradingsymbol="S3")  # no reference
    page = owner_client.get(reverse("execution:analytics-brokers"), PERIOD).content.decode()
    assert '<span class="neg">₹32.50</span> (0.28 % of the quoted value) over 2 filled orders' in (
        page
    )


def test_cost_page_shows_charges_and_their_share_of_gross(world, owner_client):
    page = owner_client.get(reverse("execution:analytics-costs"), PERIOD).content.decode()
    # 65 x (100 - 80) = 1300 gross; 2 orders on 2-Mar-2026 (after NSE's 1-Mar re-split):
    # brokerage 40, STT 6.50, exchange 0.03552% of 11,700 = 4.16, IPFT 0.00, SEBI 0.01, stamp
    # 0.16, GST 18% of (40 + 4.16 + 0.01 + 0.00) = 7.95 → 58.78 (4.5 % of gross)
    assert "Owner Straddle" in page and "58.78" in page and "4.5 %" in page
    assert "1241.22" in page


def test_each_persona_sees_only_their_own_performance(world, owner_client, stranger_client):
    url = reverse("execution:analytics-performance")
    owner_page = owner_client.get(url, PERIOD).content.decode()
    assert "1300.00" in owner_page and "777" not in owner_page
    subscriber_page = login(world["subscriber"]).get(url, PERIOD).content.decode()
    assert "Owner Straddle" in subscriber_page and "777.00" in subscriber_page
    assert "1300.00" not in subscriber_page
    stranger_page = stranger_client.get(url, PERIOD).content.decode()
    assert "No closed position on these days." in stranger_page
    assert "Owner Straddle" not in stranger_page


def test_strategy_page_is_404_for_a_stranger_and_own_runs_only_for_others(
    world, owner_client, stranger_client
):
    url = reverse("execution:analytics-strategy", args=[world["version"].strategy_id])
    assert stranger_client.get(url, PERIOD).status_code == 404
    owner_page = owner_client.get(url, PERIOD).content.decode()
    assert "1300.00" in owner_page and "777.00" not in owner_page
    subscriber_page = login(world["subscriber"]).get(url, PERIOD).content.decode()
    assert "777.00" in subscriber_page and "1300.00" not in subscriber_page


@pytest.mark.parametrize("name", PAGES[1:])
def test_a_stranger_sees_empty_pages(world, stranger_client, name):
    page = stranger_client.get(reverse(name), PERIOD).content.decode()
    assert "EARLYTAG1" not in page and "Owner Kite" not in page and "Owner Straddle" not in page


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ({"start": "2026-03-31", "end": "2026-03-01"}, "The end date is before the start date."),
        ({"start": "2024-01-01", "end": "2026-03-01"}, "Choose at most 366 days."),
        ({"start": "yesterday", "end": "2026-03-01"}, "Enter a valid date."),
    ],
)
def test_a_bad_period_is_shown_with_its_error_and_the_default_period(owner_client, query, error):
    page = owner_client.get(reverse("execution:analytics-costs"), query)
    assert page.status_code == 200
    assert error in page.content.decode()
    assert "until the period above is corrected" in page.content.decode()


@pytest.mark.parametrize("name", [*PAGES[1:], "execution:analytics-strategy"])
def test_page_query_counts_stay_flat(world, owner, owner_client, name):
    version = world["version"]
    kite = BrokerAccountFactory(owner=owner, broker=Broker.KITE)
    url = (
        reverse(name, args=[version.strategy_id])
        if name == "execution:analytics-strategy"
        else reverse(name)
    )

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert owner_client.get(url, PERIOD).status_code == 200
        return len(captured)

    before = count()
    for offset in range(1, 5):  # Tuesday to Friday
        run = run_on(version, DAY + datetime.timedelta(days=offset), source_ref=f"g{offset}")
        filled(run, kite, side="SELL", quantity=65, price="90", tradingsymbol="A")
        filled(run, kite, side="BUY", quantity=65, price="95", tradingsymbol="A")
        lost = sent(run, kite, state=IntentState.UNKNOWN, ack_ms=None)
        audit(lost, "unknown", previous="intent")
    assert count() == before


def test_every_analytics_page_counts_the_same_kinds_of_run(owner_client, owner):
    """Test runs are out by default on every page, in on every page when ticked."""
    import datetime as dt

    from execution.models import OrderIntent
    from tests.execution.engine_factories import IntentFactory, RunFactory

    day = dt.date(2026, 11, 19)
    run = RunFactory(
        strategy_version__strategy__owner=owner, owner=owner, session_date=day, is_test=True
    )
    intent = IntentFactory(run=run, tradingsymbol="NIFTYTESTONLY", account__broker="paper")
    OrderIntent.objects.filter(pk=intent.pk).update(
        state="acknowledged",
        sent_at=run.fire_at + dt.timedelta(milliseconds=5),
        acked_at=run.fire_at + dt.timedelta(milliseconds=9),
    )
    period = "start=2026-11-01&end=2026-11-30"
    pages = ["analytics-timing", "analytics-brokers", "analytics-costs", "analytics-performance"]
    for name in pages:
        page = owner_client.get(f"{reverse(f'execution:{name}')}?{period}")
        assert 'value="test"' in page.text and "counting Live, Paper runs" in page.text, name
    timing = owner_client.get(f"{reverse('execution:analytics-timing')}?{period}")
    assert "NIFTYTESTONLY" not in timing.text
    included = owner_client.get(
        f"{reverse('execution:analytics-timing')}?{period}&kinds=test&submitted=1"
    )
    assert "NIFTYTESTONLY" in included.text and "kinds=test" in included.text
    none = owner_client.get(f"{reverse('execution:analytics-timing')}?{period}&submitted=1")
    assert "Choose at least one" in none.text
