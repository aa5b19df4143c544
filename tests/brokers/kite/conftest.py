"""A Kite emulator on 127.0.0.1 with one registered app, and adapters pointed at it."""

from __future__ import annotations

import pytest

from brokers.base import Credentials
from brokers.emulator import start_in_thread
from brokers.httpclient import HttpClient
from brokers.kite import KiteAdapter
from brokers.kite.client import KiteClient
from tests.brokers.emulator.conftest import FixedQuotes

API_KEY = "kiteapp01"
API_SECRET = "kitesecret01"
REDIRECT = "http://127.0.0.1:8000/brokers/callback/kite/"


@pytest.fixture
def emulator():
    running = start_in_thread("kite", quotes=FixedQuotes(), hang_seconds=1.0)
    running.add_account(
        api_key=API_KEY, api_secret=API_SECRET, user_id="ZK4321", redirect_uri=REDIRECT
    )
    yield running
    running.stop()


def make_adapter(emulator, *, token: str = "", secret: str = API_SECRET, read_timeout=2.0):
    credentials = Credentials(api_key=API_KEY, api_secret=secret, access_token=token)
    client = KiteClient(
        base_url=emulator.base_url,
        api_key=API_KEY,
        access_token=token,
        http=HttpClient(connect_timeout=1.0, read_timeout=read_timeout),
    )
    return KiteAdapter(
        credentials, base_url=emulator.base_url, login_url=emulator.login_url, client=client
    )


@pytest.fixture
def adapter(emulator):
    return make_adapter(emulator, token=emulator.issue_token(API_KEY))
