"""The option chain page (issue 13, item 8): from the simulator or the trader's broker,
labelled with its source and time, through HTTP as a trader uses it."""

from __future__ import annotations

import datetime
import itertools
import re

import pytest
import time_machine
from django.urls import reverse

from tests.brokers.factories import BrokerAccountFactory
from tests.execution.test_live_prices import T, kite, live_strategy  # noqa: F401
from tests.trader.factories import UserFactory

pytestmark = pytest.mark.django_db
URL = reverse("execution:option-chain")


def strikes(page: str) -> list[int]:
    return [int(s) for s in re.findall(r'data-strike="(\d+)"', page)]


def test_the_simulators_chain_around_its_spot(client, calendar_loaded_today):
    client.force_login(UserFactory())
    response = client.get(URL, {"underlying": "NIFTY", "strikes": "3"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Source: <strong>Simulated market</strong>" in page
    found = strikes(page)
    assert len(found) == 7 and found == sorted(found)
    assert {b - a for a, b in itertools.pairwise(found)} == {50}
    spot = re.search(r"spot ([\d,]+\.\d\d)", page)
    assert spot is not None
    assert abs(found[3] - float(spot.group(1).replace(",", ""))) <= 25  # ATM in the middle
    # Strikes in Indian grouping (25,950 style), IV in percent on every row.
    assert re.search(r'class="num strike">\d{2},\d{3}<', page)
    assert 'href="' + URL + '"' in page  # linked from the navigation


def test_the_brokers_chain_is_around_the_brokers_spot_not_the_simulators(
    client,
    kite,  # noqa: F811
    live_strategy,  # noqa: F811
):
    strategy, account = live_strategy
    client.force_login(strategy.owner)
    with time_machine.travel(T - datetime.timedelta(seconds=4), tick=False):
        response = client.get(
            URL, {"underlying": "NIFTY", "source": str(account.pk), "strikes": "2"}
        )
    page = response.content.decode()
    assert response.status_code == 200, page
    assert f"Zerodha Kite quotes ({account.label})" in page
    assert strikes(page) == [20900, 20950, 21000, 21050, 21100]  # Kite's NIFTY is 21,000
    assert "spot 21,000.00" in page and "(oldest quote)" in page
    # A quote older than the bound: the page says so instead of showing stale prices.
    kite.market.age = datetime.timedelta(seconds=30)
    with time_machine.travel(T - datetime.timedelta(seconds=4), tick=False):
        stale = client.get(URL, {"underlying": "NIFTY", "source": str(account.pk)})
    assert stale.status_code == 200
    assert "30 s old" in stale.content.decode() and not strikes(stale.content.decode())


def test_another_traders_account_or_a_bad_expiry_is_refused(client, calendar_loaded_today):
    other = BrokerAccountFactory()
    client.force_login(UserFactory())
    response = client.get(URL, {"underlying": "NIFTY", "source": str(other.pk)})
    assert response.status_code == 400 and not strikes(response.content.decode())
    response = client.get(URL, {"underlying": "NIFTY", "expiry": "2020-01-02"})
    assert response.status_code == 400
    assert "has no contracts expiring on 2020-01-02" in response.content.decode()
    assert client.get(URL, {"underlying": "NOPE"}).status_code == 400
    assert client.get(URL, {"underlying": "NIFTY", "strikes": "x"}).status_code == 400
