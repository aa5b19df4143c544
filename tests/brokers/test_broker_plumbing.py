"""Plumbing under every adapter: which adapter a broker code gets (and why none), encryption
keys that are missing or malformed, the paper market's refusals of contracts it does not list,
Fyers' symbol master and Kite's timed quotes at their emulators, and the demo seed."""

from __future__ import annotations

import importlib
from datetime import date
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from brokers import crypto, registry
from brokers.base import Credentials
from brokers.paper import market as paper_market
from brokers.paper.market import UnknownContractError
from tests.brokers.contract.venues import broker_symbol, make_venue

pytestmark = pytest.mark.django_db


# --- registry --------------------------------------------------------------------------------
@pytest.fixture
def fresh_registry():
    registry.adapter_class.cache_clear()
    yield
    registry.adapter_class.cache_clear()


def test_an_unknown_broker_code_has_no_adapter(fresh_registry):
    with pytest.raises(registry.AdapterUnavailableError, match="Unknown broker"):
        registry.adapter_class("zerodha2")
    assert not registry.is_available("zerodha2")
    assert registry.is_available("kite") and registry.adapter_class("kite").name == "kite"


def test_a_broker_whose_package_is_missing_is_unavailable_in_words(fresh_registry, monkeypatch):
    real = importlib.import_module

    def missing(name, *args):
        if name.startswith("brokers.dhan"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(registry.AdapterUnavailableError, match="No adapter is installed for Dhan"):
        registry.adapter_class("dhan")


def test_a_broken_import_inside_an_adapter_surfaces(fresh_registry, monkeypatch):
    real = importlib.import_module

    def broken(name, *args):
        if name.startswith("brokers.fyers"):
            raise ModuleNotFoundError("No module named 'fyerslib'", name="fyerslib")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="fyerslib"):
        registry.adapter_class("fyers")


# --- encryption keys -------------------------------------------------------------------------
def test_missing_or_malformed_encryption_keys_fail_loudly_without_echoing_them(settings):
    settings.FIELD_ENCRYPTION_KEYS = []
    with pytest.raises(ImproperlyConfigured, match="empty"):
        crypto.encrypt("secret")
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-fernet-key-at-all"]
    with pytest.raises(ImproperlyConfigured) as bad:
        crypto.encrypt("secret")
    assert "not-a-fernet-key-at-all" not in str(bad.value)


def test_rotation_moves_a_value_to_the_new_key_and_refuses_foreign_ciphertext(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    stored = crypto.encrypt("api-secret")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    rotated = crypto.rotate(stored)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert crypto.decrypt(rotated) == "api-secret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(stored)  # the old key is gone
    with pytest.raises(crypto.DecryptionError):
        crypto.rotate(stored)
    assert crypto.rotate("") == "" and crypto.decrypt("") == ""


def test_fixtures_carry_ciphertext_and_load_back_to_plaintext(settings):
    field = crypto.EncryptedTextField()
    token = crypto.encrypt("token-123")
    assert field.to_python(token) == "token-123"
    assert field.to_python("gAAAAAnot-really-a-token") == "gAAAAAnot-really-a-token"
    assert field.to_python("plain") == "plain" and field.get_prep_value(None) is None


# --- the paper market's refusals -------------------------------------------------------------
@pytest.mark.parametrize(
    "symbol",
    ["FOOBAR25D1625750CE", "NIFTY 50", "NIFTY25DECFUT"],
)
def test_the_paper_market_refuses_what_it_does_not_list(symbol):
    with pytest.raises(UnknownContractError):
        paper_market.exchange_of(symbol)


def test_a_monthly_symbol_of_an_index_not_traded_or_a_month_without_expiry_is_refused():
    class Parsed:
        expiry = None
        underlying = "FOOBAR"
        year, month = 2026, 12

    with pytest.raises(UnknownContractError, match="not an index we trade"):
        paper_market.resolve_expiry(Parsed())


@pytest.mark.usefixtures("calendar_loaded_today")
def test_a_contract_on_the_wrong_exchange_or_an_unlisted_expiry_is_refused():
    with pytest.raises(UnknownContractError, match="trade on NFO, not BFO"):
        paper_market.check_listed("NIFTY", exchange="BFO", expiry=date(2026, 12, 29))
    with pytest.raises(UnknownContractError, match="not an index we trade"):
        paper_market.check_listed("FOOBAR", exchange="NFO", expiry=date(2026, 12, 29))
    with pytest.raises(UnknownContractError, match="listed today"):
        paper_market.check_listed("NIFTY", exchange="NFO", expiry=date(2020, 1, 2))


# --- at the emulators -------------------------------------------------------------------------
@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today")
def test_fyers_symbol_master_lists_the_fo_contracts_of_both_exchanges(settings):
    from brokers.fyers.adapter import FyersAdapter

    venue = make_venue("fyers", settings)
    try:
        venue.login()
        good = venue.adapter()
        adapter = FyersAdapter(
            good.credentials,
            base_url=good.base_url,
            instruments_url=venue.emulator.base_urls["api"].split("/api")[0]
            + "/sym_details/{segment}.csv",
        )
        rows = adapter.instruments()
        listed = [c for c in venue.emulator.master() if c["exchange"] in ("NFO", "BFO")]
        assert listed and len(rows) == len(listed)  # one row per contract, both files read
        venue.emulator.set_master(mode="missing")
        from brokers.base import BrokerError

        with pytest.raises(BrokerError):
            adapter.instruments()
    finally:
        venue.stop()


@pytest.mark.network
@pytest.mark.usefixtures("calendar_loaded_today")
def test_kite_quotes_carry_the_brokers_own_time(settings):
    from brokers.kite.market import quotes_with_time

    venue = make_venue("kite", settings)
    try:
        venue.login()
        symbol = broker_symbol("kite", 25000)
        found = quotes_with_time(venue.adapter(), [f"NFO:{symbol}", "NSE:NIFTY 50"])
        quote, at = found[f"NFO:{symbol}"]
        assert quote.last_price > 0 and at is not None and at.tzinfo is not None
        assert found["NSE:NIFTY 50"][0].last_price > Decimal("1000")
    finally:
        venue.stop()


def test_the_demo_trader_gets_one_logged_in_paper_account_however_often_it_is_seeded():
    from brokers import demo
    from brokers.models import AccountStatus, BrokerAccount
    from tests.trader.factories import ProfileFactory

    class Users:
        trader = ProfileFactory().user

    demo.seed(Users)
    demo.seed(Users)
    (account,) = BrokerAccount.objects.filter(owner=Users.trader)
    assert account.broker == "paper" and account.status == AccountStatus.CONNECTED


def test_the_paper_adapter_needs_no_app_credentials():
    adapter_class = registry.adapter_class("paper")
    assert not adapter_class.capabilities.needs_app_credentials
    assert adapter_class(Credentials(extra={"account_id": "1"})).account_id == 1
