"""An Upstox emulator (API and HFT hosts) on 127.0.0.1 with one app and one instrument key."""

from __future__ import annotations

import pytest

from brokers.base import Credentials
from brokers.emulator import start_in_thread
from brokers.httpclient import HttpClient
from brokers.upstox import UpstoxAdapter
from brokers.upstox.client import UpstoxClient
from tests.brokers.emulator.conftest import FixedQuotes

CLIENT_ID = "upstoxapp01"
CLIENT_SECRET = "upstoxsecret01"
REDIRECT = "http://127.0.0.1:8000/brokers/callback/upstox/"
KEY = "NSE_FO|43919"
BROKER_SYMBOL = "NIFTY 24000 CE 16 DEC 25"


@pytest.fixture
def emulator():
    running = start_in_thread("upstox", quotes=FixedQuotes(), hang_seconds=1.0)
    running.add_account(
        api_key=CLIENT_ID, api_secret=CLIENT_SECRET, user_id="7UPX01", redirect_uri=REDIRECT
    )
    running.add_instruments(
        [
            {
                "key": KEY,
                "exchange": "NFO",
                "tradingsymbol": "NIFTY25D1624000CE",
                "broker_symbol": BROKER_SYMBOL,
            }
        ]
    )
    yield running
    running.stop()


def make_adapter(emulator, *, token: str = "", secret: str = CLIENT_SECRET, read_timeout=2.0):
    client = UpstoxClient(
        base_url=emulator.base_urls["api"],
        order_base_url=emulator.base_urls["hft"],
        access_token=token,
        http=HttpClient(connect_timeout=1.0, read_timeout=read_timeout),
    )
    return UpstoxAdapter(
        Credentials(api_key=CLIENT_ID, api_secret=secret, access_token=token),
        base_url=emulator.base_urls["api"],
        order_base_url=emulator.base_urls["hft"],
        login_url=emulator.login_url,
        client=client,
    )


@pytest.fixture
def adapter(emulator):
    return make_adapter(emulator, token=emulator.issue_token(CLIENT_ID))
