"""Live runs take prices from the trading account's broker, not from the simulator (items 1-3).

The Kite emulator's NIFTY stands at 21,000 while the platform's simulated market says about
26,000: the strategy's ATM legs must resolve around 21,000 with the Kite symbols and tokens of
the emulator's instrument master; a quote older than the bound holds the run; MTM and a
stop-loss exit follow the emulator's prices.
"""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal

import pytest
import time_machine

from brokers.emulator import start_in_thread
from brokers.emulator.core import Clock
from brokers.emulator.pricing import MarketQuote, SimulatedQuotes
from brokers.models import Broker
from execution.dispatch import boundary_dispatch
from execution.market import default_market
from execution.market.simulated import UnderlyingParams
from execution.markettime import IST
from execution.models import (
    BrokerSymbol,
    ExecutionEvent,
    OrderIntent,
    Position,
    RunState,
    ScheduledRun,
)
from execution.planning.plan import day_plan
from execution.protection.watch import runs_watch
from execution.reference.masters import master_refresh
from tests.execution.engine_factories import strategy_with_accounts

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 12, 3)  # a Thursday session
T = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)
SPOT = Decimal("21000")
API_KEY = "livepricesapp"


class KiteMarket:
    """The Kite emulator's market: NIFTY 50 at exactly 21,000, options from a simulated market
    around that level, prices the test sets, and quote times the test can age."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sim = SimulatedQuotes(
            seed=3,
            clock=clock,
            params={"NIFTY": UnderlyingParams(spot=SPOT, annual_vol=0.0001, atm_iv=0.12)},
        )
        self.prices: dict[str, Decimal] = {}
        self.age = datetime.timedelta(0)

    def quote(self, exchange: str, tradingsymbol: str) -> MarketQuote | None:
        at = self.clock() - self.age
        if (exchange, tradingsymbol) == ("NSE", "NIFTY 50"):
            return MarketQuote(SPOT, SPOT, SPOT, timestamp=at)
        if tradingsymbol in self.prices:
            price = self.prices[tradingsymbol]
            return MarketQuote(
                price, price - Decimal("0.05"), price + Decimal("0.05"), timestamp=at
            )
        found = self.sim.quote(exchange, tradingsymbol)
        return None if found is None else dataclasses.replace(found, timestamp=at)


@pytest.fixture
def kite(settings):
    clock = Clock(start=T - datetime.timedelta(seconds=4), frozen=True)
    market = KiteMarket(clock)
    emulator = start_in_thread("kite", quotes=market, clock=clock, listed_only=True)
    emulator.add_account(api_key=API_KEY, api_secret="livesecret", user_id="ZL0001")
    emulator.market = market
    settings.BROKER_BASE_URLS = {**settings.BROKER_BASE_URLS, "kite": emulator.base_url}
    settings.BROKER_MASTER_URLS = {
        **settings.BROKER_MASTER_URLS, "kite": [emulator.base_url + "/instruments"]
    }  # fmt: skip
    yield emulator
    emulator.stop()


@pytest.fixture
def live_strategy(kite):
    """An iron condor (ATM±2 short, ATM±6 long) on one logged-in Kite account, planned for
    DAY, with Kite's master loaded from the emulator."""
    with time_machine.travel(T - datetime.timedelta(hours=1), tick=False):
        strategy, _version, [account] = strategy_with_accounts(brokers=(Broker.KITE,))
        account.api_key = API_KEY
        account.access_token = kite.issue_token(API_KEY)
        account.token_issued_at = T - datetime.timedelta(hours=1)
        account.token_expires_at = T + datetime.timedelta(hours=12)
        account.static_ip_primary = "127.0.0.1"
        account.save()
        assert master_refresh(broker="kite", day=DAY).ok
        day_plan(day=DAY)
    return strategy, account


def dispatch():
    with time_machine.travel(T - datetime.timedelta(seconds=4), tick=False):
        return boundary_dispatch(fire_at=T, wait=False, start_sends=False)


def test_atm_legs_resolve_from_the_kite_spot_with_the_masters_symbols_and_tokens(
    kite, live_strategy
):
    simulated = default_market().spot("NIFTY", at=T)
    assert simulated > 24_000  # the platform's own market is nowhere near Kite's 21,000
    result = dispatch()
    assert not result.skipped and result.intents == 4
    intents = {(i.side, i.tradingsymbol): i for i in OrderIntent.objects.all()}
    strikes = {21100: "CE", 21300: "CE", 20900: "PE", 20700: "PE"}
    expected = {f"NIFTY26D08{k}{v}" for k, v in strikes.items()}
    assert {symbol for _, symbol in intents} == expected
    listed = {c["exchange_token"] * 256 + 2 for c in kite.master()}
    for intent in intents.values():
        row = BrokerSymbol.objects.get(broker="kite", tradingsymbol=intent.tradingsymbol)
        assert intent.instrument_token == row.token and int(row.token) in listed
        assert intent.reference_price is not None and intent.reference_price > 0
    run = ScheduledRun.objects.get(boundary="entry")
    assert run.state == RunState.DISPATCHED
    assert run.price_source.startswith("Zerodha") or "Kite" in run.price_source


def test_a_stale_kite_quote_holds_the_run_with_its_reason(kite, live_strategy):
    kite.market.age = datetime.timedelta(seconds=30)
    result = dispatch()
    [reason] = result.skipped.values()
    assert reason.startswith("no fresh price: NIFTY spot from") and "30 s old" in reason
    assert reason.endswith("not sent.")
    assert not OrderIntent.objects.exists()
    run = ScheduledRun.objects.get(boundary="entry")
    assert run.state == RunState.SKIPPED and run.note == reason
    assert ExecutionEvent.objects.filter(kind="run.skipped", run_id=run.pk).exists()


def test_a_live_run_without_a_quoting_account_is_held_never_priced_by_the_simulator(
    kite, live_strategy
):
    _, account = live_strategy
    account.status = "expired"
    account.save(update_fields=["status"])
    [reason] = dispatch().skipped.values()
    assert reason.startswith("No fresh price") and not OrderIntent.objects.exists()


def _open_positions(account):
    """The condor's shorts and longs as filled at the emulator's prices now."""
    run = ScheduledRun.objects.get(boundary="entry")
    positions = []
    for intent in OrderIntent.objects.filter(run=run):
        quantity = intent.quantity if intent.side == "BUY" else -intent.quantity
        price = intent.reference_price
        positions.append(
            Position.objects.create(
                run=run, account=account, owner=run.owner, leg=intent.leg, exchange="NFO",
                tradingsymbol=intent.tradingsymbol, instrument_token=intent.instrument_token,
                lot_size=intent.lot_size, net_quantity=quantity,
                buy_quantity=max(quantity, 0), sell_quantity=max(-quantity, 0),
                buy_value=price * max(quantity, 0), sell_value=price * max(-quantity, 0),
            )
        )  # fmt: skip
    return run, positions


def test_mtm_and_the_stop_loss_follow_the_emulators_prices(kite, live_strategy):
    _, account = live_strategy
    dispatch()
    run, positions = _open_positions(account)
    version = run.strategy_version
    version.stop_loss_mtm = Decimal("3000")
    version.save(update_fields=["stop_loss_mtm"])
    entry = {p.tradingsymbol: p.average_entry for p in positions}
    kite.market.prices = {symbol: price for symbol, price in entry.items()}
    short_ce = next(p for p in positions if p.net_quantity < 0 and p.tradingsymbol.endswith("CE"))
    noon = T + datetime.timedelta(hours=2)
    kite.set_clock(noon)
    with time_machine.travel(noon, tick=False):
        # The short call rises by 20: MTM -20 x lot, inside the stop.
        kite.market.prices[short_ce.tradingsymbol] = entry[short_ce.tradingsymbol] + 20
        runs_watch(now=noon, send=False)
        run.refresh_from_db()
        assert run.mtm == -20 * short_ce.lot_size and not run.exit_reason
        short_ce.refresh_from_db()
        assert short_ce.last_price == entry[short_ce.tradingsymbol] + 20

        # A stale quote (60 s old) marks nothing and fires nothing, even past the stop.
        kite.market.prices[short_ce.tradingsymbol] = entry[short_ce.tradingsymbol] + 100
        kite.market.age = datetime.timedelta(seconds=60)
        runs_watch(now=noon, send=False)
        run.refresh_from_db()
        assert not run.exit_reason and not OrderIntent.objects.filter(purpose="stop").exists()
        assert ExecutionEvent.objects.filter(kind="price.stale", run_id=run.pk).exists()

        # Fresh again at +100: MTM -100 x lot breaches the 3,000 stop; closing orders follow.
        kite.market.age = datetime.timedelta(0)
        runs_watch(now=noon, send=False)
        run.refresh_from_db()
        assert run.mtm == -100 * short_ce.lot_size
        assert run.exit_reason.startswith("combined stop-loss")
        closing = OrderIntent.objects.filter(purpose="stop")
        assert closing.count() == 4
        assert set(closing.values_list("tradingsymbol", flat=True)) == set(entry)


def test_live_positions_are_never_marked_by_the_simulator(kite, live_strategy):
    _, account = live_strategy
    dispatch()
    run, _positions = _open_positions(account)
    with time_machine.travel(T + datetime.timedelta(days=2), tick=False):  # token long dead
        runs_watch(send=False)
    run.refresh_from_db()
    assert run.mtm == 0 and not Position.objects.filter(last_price__isnull=False).exists()
    event = ExecutionEvent.objects.get(kind="price.stale", run_id=run.pk)
    assert "no connected account gives quotes" in event.message


def test_the_run_page_shows_what_priced_the_run(kite, live_strategy, client):
    from django.urls import reverse

    strategy, _account = live_strategy
    dispatch()
    run = ScheduledRun.objects.get(boundary="entry")
    client.force_login(strategy.owner)
    page = client.get(reverse("execution:run-detail", args=[run.pk])).content.decode()
    assert f"priced by {run.price_source}" in page and "Kite" in page


def _kite_owner(kite, index, *, token=None):
    """Another trader with an iron condor on a connected Kite account of their own."""
    api_key = f"livepricesapp{index}"
    kite.add_account(api_key=api_key, api_secret="livesecret", user_id=f"ZL{index:04d}")
    _strategy, _version, [account] = strategy_with_accounts(brokers=(Broker.KITE,))
    account.api_key = api_key
    account.access_token = token or kite.issue_token(api_key)
    account.token_issued_at = T - datetime.timedelta(hours=1)
    account.token_expires_at = T + datetime.timedelta(hours=12)
    account.static_ip_primary = "127.0.0.1"
    account.label = f"kite of trader {index}"
    account.save()
    return account


@pytest.fixture
def quote_calls(monkeypatch):
    """Every quote call a BrokerMarket makes: (account label, keys asked)."""
    from execution.market.broker import BrokerMarket

    calls = []
    read = BrokerMarket._read

    def counted(self, keys):
        calls.append((self.account.label, list(keys)))
        return read(self, keys)

    monkeypatch.setattr(BrokerMarket, "_read", counted)
    return calls


def _plan_more(kite, count, *, bad_first=False):
    with time_machine.travel(T - datetime.timedelta(hours=1), tick=False):
        accounts = [
            _kite_owner(kite, i, token="not-a-token" if bad_first and i == 1 else None)
            for i in range(1, count + 1)
        ]
        day_plan(day=DAY)
    return accounts


def test_many_kite_accounts_share_one_spot_read_and_one_option_batch(
    kite, live_strategy, quote_calls
):
    _plan_more(kite, 5)
    result = dispatch()
    assert not result.skipped and result.runs == 6 and result.intents == 6 * 4
    # Two calls for six accounts at Kite: the spot before any order is written (it places the
    # band of strikes), then at T - ε the spot and the band around every leg in one call.
    assert len(quote_calls) == 2
    assert all("NSE:NIFTY 50" in keys for _, keys in quote_calls)
    assert quote_calls[0][1] == ["NSE:NIFTY 50"] and len(quote_calls[1][1]) > 4
    sources = set(
        ScheduledRun.objects.filter(boundary="entry").values_list("price_source", flat=True)
    )
    assert len(sources) == 1 and "Kite" in sources.pop()
    assert OrderIntent.objects.filter(reference_price__isnull=True).count() == 0


def test_a_failing_account_hands_the_boundarys_quotes_to_the_next_kite_account(
    kite, live_strategy, quote_calls
):
    _, first = live_strategy
    first.access_token = "not-a-token"  # its calls are refused: the next account reads
    first.save(update_fields=["access_token"])
    others = _plan_more(kite, 2)
    result = dispatch()
    assert not result.skipped and result.runs == 3
    labels = [label for label, _ in quote_calls]
    assert labels[0] == first.label and set(labels[1:]) == {others[0].label}
    entries = ScheduledRun.objects.filter(boundary="entry")
    assert set(entries.values_list("price_source", flat=True)) == {
        f"Zerodha Kite quotes ({others[0].label})"
    }


def test_when_no_kite_account_can_quote_every_run_is_held_after_one_try_each(
    kite, live_strategy, quote_calls
):
    _, first = live_strategy
    first.access_token = "not-a-token"
    first.save(update_fields=["access_token"])
    others = _plan_more(kite, 2)
    for account in others:
        account.access_token = "not-a-token"
        account.save(update_fields=["access_token"])
    result = dispatch()
    entries = ScheduledRun.objects.filter(boundary="entry")
    assert set(result.skipped) == set(entries.values_list("pk", flat=True))
    assert all(r.startswith("no price from") for r in result.skipped.values())
    assert len(quote_calls) == 3  # one try per account, not one per run
    assert not OrderIntent.objects.exists()
