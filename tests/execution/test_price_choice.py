"""One way to choose a run's prices, at dispatch and in the watch: a live run by its broker's
own quotes through a connected account of that broker (`boundary_markets`), a paper run on
live prices by exactly the account its owner chose (`price_account_market`)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.utils import timezone

from brokers.models import AccountStatus
from execution.market.broker import boundary_markets, live_prices, price_account_market
from tests.brokers.factories import BrokerAccountFactory

pytestmark = pytest.mark.django_db


def _position(account):
    run = SimpleNamespace(pk=account.pk, price_account_id=None, price_account=None)
    return SimpleNamespace(
        account_id=account.pk, account=account, tradingsymbol="NOT-IN-THE-MASTER", run=run
    )


def test_the_watch_chooses_a_live_runs_market_as_dispatch_does():
    expired = BrokerAccountFactory(broker="kite", status=AccountStatus.EXPIRED)
    other_kite = BrokerAccountFactory(broker="kite")
    upstox = BrokerAccountFactory(broker="upstox", owner=expired.owner)
    accounts = [expired, other_kite, upstox]
    prices = live_prices([_position(a) for a in accounts], simulated=None, now=timezone.now())
    # Kite's quotes through the connected Kite account, never the owner's Upstox account.
    assert {b: m.account for b, m in prices.markets.items()} == {
        "kite": other_kite,
        "upstox": upstox,
    }
    assert {b: m.account for b, m in prices.markets.items()} == {
        b: m.account for b, m in boundary_markets(accounts).items()
    }


def test_a_broker_without_a_connected_account_gives_no_market_in_the_watch():
    expired = BrokerAccountFactory(broker="kite", status=AccountStatus.EXPIRED)
    upstox = BrokerAccountFactory(broker="upstox", owner=expired.owner)
    prices = live_prices(
        [_position(expired), _position(upstox)], simulated=None, now=timezone.now()
    )
    assert set(prices.markets) == {"upstox"}
    assert prices.quote(broker="kite", tradingsymbol="NOT-IN-THE-MASTER") is None
    assert prices.stale[("kite", "NOT-IN-THE-MASTER")] == "no connected account gives quotes"


def test_a_chosen_price_account_is_that_account_or_none():
    chosen = BrokerAccountFactory(broker="upstox")
    assert price_account_market(chosen).account == chosen
    chosen.status = AccountStatus.EXPIRED
    # Not another account of the owner's, even a connected one: the run is held.
    BrokerAccountFactory(broker="kite", owner=chosen.owner)
    assert price_account_market(chosen) is None
