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
from execution.reference.masters import master_refresh
from tests.brokers.factories import BrokerAccountFactory
from tests.brokers.fixed_market import FixedQuotes
from tests.execution.engine_factories import IST

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
