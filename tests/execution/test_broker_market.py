"""BrokerMarket over the five brokers' quote APIs (their emulators on loopback)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
import time_machine

from brokers.emulator import start_in_thread
from brokers.emulator.core import Clock
from brokers.models import Broker
from brokers.registry import credentials_for
from execution.market.broker import BrokerMarket, StalePriceError
from execution.markettime import IST
from execution.reference.masters import master_refresh
from tests.brokers.factories import BrokerAccountFactory
from tests.brokers.fixed_market import FixedQuotes

pytestmark = pytest.mark.django_db

NOW = datetime.datetime(2026, 12, 3, 10, 30, tzinfo=IST)
MASTER_PATHS = {
    "kite": ["/instruments"],
    "upstox": ["/market-quote/instruments/exchange/complete.json.gz"],
    "angelone": ["/OpenAPI_File/files/OpenAPIScripMaster.json"],
    "fyers": ["/sym_details/NSE_FO.csv", "/sym_details/BSE_FO.csv"],
    "dhan": ["/api-data/api-scrip-master.csv"],
}


@pytest.mark.parametrize("broker", list(MASTER_PATHS))
def test_spot_and_a_batch_of_option_quotes_from_each_broker(broker, settings):
    from brokers.registry import adapter_class

    clock = Clock(start=NOW, frozen=True)
    emulator = start_in_thread(broker, quotes=FixedQuotes(), clock=clock)
    try:
        emulator.add_account(api_key="mkt", api_secret="s", user_id="MK0001", client_id="MK0001")
        account = BrokerAccountFactory(
            broker=broker, api_key="mkt", access_token=emulator.issue_token("mkt"),
            broker_user_id="MK0001",
        )  # fmt: skip
        settings.MASTER_EXPECTED_UNDERLYINGS = ["NIFTY"]  # the fixed market lists NIFTY only
        settings.BROKER_MASTER_URLS = {
            **settings.BROKER_MASTER_URLS,
            broker: [emulator.base_url + p for p in MASTER_PATHS[broker]],
        }
        with time_machine.travel(NOW, tick=False):
            assert master_refresh(broker=broker, day=NOW.date()).ok
            cls = adapter_class(broker)
            urls = emulator.base_urls
            extra = {"order_base_url": urls["hft"]} if broker == "upstox" else {}
            adapter = cls(credentials_for(account), base_url=urls["api"], **extra)
            market = BrokerMarket(account, adapter)
            assert market.spot("NIFTY") == Decimal("24012.35")
            expiry = datetime.date(2026, 12, 8)
            keys = [
                market.key_for("NIFTY", expiry, Decimal(strike), "CE")
                for strike in (23900, 24000, 24100)
            ]
            quotes = market.fetch(keys)
            assert len(quotes) == 3 and all(q.ltp == Decimal("100") for q in quotes.values())
            quote = market.option_quote("NIFTY", expiry, Decimal("24000"), "CE")
            assert quote.ltp == Decimal("100")
            with pytest.raises(StalePriceError, match="not in"):
                market.option_quote("NIFTY", expiry, Decimal("99950"), "CE")
        with time_machine.travel(NOW + datetime.timedelta(minutes=1), tick=False):
            if broker == Broker.KITE:  # Kite's quotes carry the exchange's own time
                with pytest.raises(StalePriceError, match="60 s old"):
                    BrokerMarket(account, adapter).spot("NIFTY")
    finally:
        emulator.stop()


@pytest.fixture
def quoting(request, settings):
    """(BrokerMarket, emulator) of one broker's emulator with its master loaded, at NOW."""
    from brokers.registry import adapter_class

    broker = request.param
    clock = Clock(start=NOW, frozen=True)
    emulator = start_in_thread(broker, quotes=FixedQuotes(), clock=clock)
    emulator.add_account(api_key="mkt", api_secret="s", user_id="MK0001", client_id="MK0001")
    account = BrokerAccountFactory(
        broker=broker, api_key="mkt", access_token=emulator.issue_token("mkt"),
        broker_user_id="MK0001",
    )  # fmt: skip
    settings.MASTER_EXPECTED_UNDERLYINGS = ["NIFTY"]
    settings.BROKER_MASTER_URLS = {
        **settings.BROKER_MASTER_URLS,
        broker: [emulator.base_url + p for p in MASTER_PATHS[broker]],
    }
    try:
        with time_machine.travel(NOW, tick=False):
            assert master_refresh(broker=broker, day=NOW.date()).ok
            urls = emulator.base_urls
            extra = {"order_base_url": urls["hft"]} if broker == "upstox" else {}
            adapter = adapter_class(broker)(credentials_for(account), base_url=urls["api"], **extra)
            yield BrokerMarket(account, adapter), emulator
    finally:
        emulator.stop()


@pytest.mark.parametrize("quoting", list(MASTER_PATHS), indirect=True)
def test_an_option_chain_from_each_brokers_quotes_in_batches(quoting, monkeypatch):
    from execution.market import broker as broker_market

    market, _emulator = quoting
    calls: list[int] = []
    read = market._read
    monkeypatch.setattr(market, "_read", lambda keys: calls.append(len(keys)) or read(keys))
    monkeypatch.setitem(broker_market.QUOTE_BATCH, market.broker, 7)
    expiry = datetime.date(2026, 12, 8)
    chain = market.chain("NIFTY", expiry, strike_step=Decimal(50), strikes_each_side=4)
    # Spot 24,012.35: ATM 24,000, four strikes of 50 each side, both sides quoted.
    assert [row.strike for row in chain] == [Decimal(24000 + 50 * n) for n in range(-4, 5)]
    assert calls[0] == 1 and calls[1:] == [7, 7, 4]  # the spot, then 18 options by 7
    atm = chain[4]
    assert atm.ce.ltp == Decimal("100") and atm.ce.bid in (None, Decimal("99.9"))
    if market.broker == "kite":  # Kite's full quote carries the depth; LTP calls do not
        assert atm.ce.bid == Decimal("99.9") and atm.ce.ask == Decimal("100.1")
    # LTP 100 over an intrinsic value of 12.35 on the CE: an IV, and a call delta in (0, 1).
    assert atm.ce.iv is not None and 0.05 < atm.ce.iv < 1.5 and 0 < atm.ce.delta < 1
    assert -1 < atm.pe.delta < 0
    # 23,800 CE is worth 212 intrinsic: 100 cannot be its price, so no IV; payoff delta 1.
    deep = chain[0]
    assert deep.ce.iv is None and deep.ce.delta == 1.0


@pytest.mark.parametrize("quoting", ["kite"], indirect=True)
def test_a_chain_with_no_fresh_quote_is_refused(quoting):
    market, _emulator = quoting
    later = NOW + datetime.timedelta(minutes=1)
    with time_machine.travel(later, tick=False), pytest.raises(StalePriceError, match="60 s old"):
        market.chain("NIFTY", datetime.date(2026, 12, 8), strike_step=Decimal(50))
    with pytest.raises(ValueError):
        market.chain("NIFTY", datetime.date(2026, 12, 8), strike_step=Decimal(0))


@pytest.mark.parametrize("quoting", ["kite", "upstox"], indirect=True)
def test_basket_margin_estimate_from_the_brokers_emulator(quoting):
    from brokers.base import OrderRequest, OrderType, Product, Side
    from execution.models import BrokerSymbol

    market, _emulator = quoting

    def order(strike: int, side: Side) -> OrderRequest:
        row = BrokerSymbol.objects.get(
            broker=market.broker, instrument__underlying__symbol="NIFTY",
            instrument__expiry=datetime.date(2026, 12, 8), instrument__strike=strike,
            instrument__option_type="CE",
        )  # fmt: skip
        return OrderRequest(
            exchange="NFO", tradingsymbol=row.tradingsymbol, side=side, quantity=75,
            order_type=OrderType.MARKET, product=Product.NRML, tag="m",
            instrument_token=row.token,
        )  # fmt: skip

    assert market.adapter.capabilities.basket_margin
    with time_machine.travel(NOW, tick=False):
        estimate = market.adapter.basket_margin([order(24000, Side.SELL), order(24200, Side.BUY)])
    # The emulator's model: the long pays 100.1 x 75; the short blocks 12% of 24,000 x 75
    # less 99.9 x 75 alone, at most the 200-point width x 75 with its wing.
    assert estimate.initial == Decimal("7507.50") + Decimal("208507.50")
    assert estimate.final == Decimal("7507.50") + Decimal("15000")


# --- no price is a refusal in words, never an old or made-up price ---------------------------
@pytest.mark.parametrize("quoting", ["kite"], indirect=True)
def test_an_index_the_broker_does_not_quote_is_refused_in_words(quoting):
    market, _emulator = quoting
    with pytest.raises(StalePriceError, match="has no index quote for NOSUCHINDEX"):
        market.spot("NOSUCHINDEX")


@pytest.mark.parametrize("quoting", ["kite"], indirect=True)
def test_a_contract_outside_the_master_is_refused_and_skipped_by_the_prefetch(quoting):
    market, _emulator = quoting
    expiry = datetime.date(2026, 12, 8)
    missing = ("NIFTY", expiry, Decimal("99950"), "CE")
    known = ("NIFTY", expiry, Decimal("24000"), "CE")
    with time_machine.travel(NOW, tick=False):
        market.prefetch_options([missing, known])  # the known one is quoted, nothing raised
        calls = market.calls
        assert market.option_quote(*known).ltp == Decimal("100")
        assert market.calls == calls  # prefetched: no further call
        with pytest.raises(StalePriceError, match=r"is not in .* instrument master"):
            market.option_quote(*missing)


@pytest.mark.parametrize("quoting", ["kite"], indirect=True)
def test_a_quote_the_broker_leaves_out_is_refused_in_words(quoting, monkeypatch):
    market, _emulator = quoting
    monkeypatch.setattr(market, "_read", lambda keys: {})
    with pytest.raises(StalePriceError, match="has no quote for NIFTY spot"):
        market.spot("NIFTY")


@pytest.mark.parametrize("quoting", ["kite"], indirect=True)
def test_no_request_slot_for_quotes_is_a_refusal_not_a_wait(quoting, monkeypatch):
    """Quotes share the account's requests per second with its orders: with no slot free and
    no other account to read through, there is no fresh price (and the same answer again
    without another call)."""
    market, _emulator = quoting
    monkeypatch.setattr("brokers.ratelimit.quote_slot_take", lambda **kwargs: False)
    with pytest.raises(StalePriceError, match="no request slot came free"):
        market.spot("NIFTY")
    calls = market.calls
    with pytest.raises(StalePriceError, match="no request slot came free"):
        market.spot("NIFTY")
    assert market.calls == calls
