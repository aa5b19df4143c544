"""One venue per adapter for the contract suite: how to start it, log in, inject a fault and
end a session. Paper runs in-process; the five brokers run as their emulators on 127.0.0.1
(an ephemeral port, in a background thread) and are skipped, with the reason, until both
the adapter package and the emulator exist."""

from __future__ import annotations

import importlib
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from brokers.base import BrokerAdapter, OrderRequest, OrderType, Product, Side
from brokers.models import AccountStatus, BrokerAccount, PaperAccount
from brokers.registry import AdapterUnavailableError, adapter_class, get_adapter
from brokers.services import login_complete, login_start
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.brokers.paper_market import today_ist

BROKERS = ["paper", "kite", "upstox", "angelone", "fyers", "dhan"]
MARKET_REFUSED = {"angelone"}
REDIRECT_URI = "http://testserver/brokers/callback/{broker}/"


def _contract() -> tuple[str, Any, int]:
    from execution.reference.contracts import expiries, lot_size

    expiry = expiries("NIFTY", today_ist())[0]
    return "NIFTY", expiry, lot_size("NIFTY", expiry)


def atm_strike() -> int:
    """The NIFTY strike nearest the simulated spot now. A fixed strike would drift far out of
    the money as the simulated walk moves with the date, and a protected MARKET order on a
    ₹1 option cannot meet its spread (the test would then depend on the day it runs)."""
    from execution.market import default_market

    spot = default_market().spot("NIFTY")
    return int((spot / 100).quantize(Decimal(1)) * 100)


def _is_monthly(expiry: Any) -> bool:
    from execution.reference.contracts import monthly_expiry

    return monthly_expiry("NIFTY", expiry.year, expiry.month) == expiry


# Every symbol this module made, with the contract it stands for: brokers' formats differ
# (Angel One's `NIFTY28NOV2625000CE` runs the year into the strike), so never parse them back.
_CONTRACT_OF_SYMBOL: dict[str, tuple[int, str]] = {}


def broker_symbol(broker: str, strike: int, option_type: str = "CE") -> str:
    from execution.reference import symbols

    und, expiry, _ = _contract()
    monthly = _is_monthly(expiry)
    if broker in ("paper", "kite"):
        symbol = symbols.kite_tradingsymbol(und, expiry, strike, option_type, monthly=monthly)
    elif broker == "fyers":
        symbol = symbols.fyers_tradingsymbol(
            und, "NSE", expiry, strike, option_type, monthly=monthly
        )
    elif broker == "dhan":
        symbol = symbols.dhan_tradingsymbol(und, expiry, strike, option_type, monthly=monthly)
    else:
        maker = getattr(symbols, f"{broker}_tradingsymbol")
        symbol = str(maker(und, expiry, strike, option_type))
    _CONTRACT_OF_SYMBOL[symbol] = (strike, option_type)
    return symbol


class Venue:
    broker: str
    account: BrokerAccount
    supports_5xx = True

    def adapter(self) -> BrokerAdapter:
        self.account.refresh_from_db()
        return get_adapter(self.account)

    def login(self) -> BrokerAccount:
        """The whole login: start (signed state), the broker's page, the token exchange."""
        redirect_uri = REDIRECT_URI.format(broker=self.broker)
        start = login_start(
            account=self.account, actor=self.account.owner, redirect_uri=redirect_uri
        )
        params = self.approve(start.url)
        params.setdefault("state", start.state)  # brokers that do not echo it (session copy)
        result = login_complete(
            broker=self.broker, user=self.account.owner, params=params, redirect_uri=redirect_uri
        )
        assert not result.error, result.error
        self.account.refresh_from_db()
        assert self.account.status == AccountStatus.CONNECTED
        return self.account

    def approve(self, login_url: str) -> dict[str, str]:
        raise NotImplementedError

    def order(
        self,
        *,
        tag: str,
        order_type: OrderType = OrderType.MARKET,
        side: Side = Side.BUY,
        price: Decimal | None = None,
        strike: int | None = None,
    ) -> OrderRequest:
        _, _, lot = _contract()
        symbol = broker_symbol(self.broker, atm_strike() if strike is None else strike)
        if order_type == OrderType.MARKET and self.broker in MARKET_REFUSED:
            # Angel One refuses market orders from algos (1-Apr-2026): a marketable limit.
            order_type, price = OrderType.LIMIT, Decimal("5000")
        return OrderRequest(
            exchange="NFO",
            tradingsymbol=symbol,
            side=side,
            quantity=lot,
            order_type=order_type,
            product=Product.NRML,
            tag=tag,
            price=price,
            market_protection=Decimal("5")
            if order_type == OrderType.MARKET and self._needs_protection()
            else None,
            instrument_token=self.instrument_token(symbol),
        )

    def _needs_protection(self) -> bool:
        return adapter_class(self.broker).capabilities.market_protection_required

    def instrument_token(self, symbol: str) -> str:
        return ""

    def bad_login_adapter(self) -> tuple[BrokerAdapter, dict[str, str]]:
        """An adapter holding a wrong secret, and callback params of a genuine login."""
        raise NotImplementedError

    def fault(self, kind: str) -> None:
        """Make the next order meet `kind`: reject, reject-later, 5xx or drop."""
        raise NotImplementedError

    def end_session(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        pass


class PaperVenue(Venue):
    broker = "paper"
    supports_5xx = False  # the paper broker has no server to fail; its retryable is the 429

    def __init__(self) -> None:
        self.book = PaperBookFactory()
        self.account = self.book.account

    def approve(self, login_url: str) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(urlsplit(login_url).query).items()}

    def bad_login_adapter(self) -> tuple[BrokerAdapter, dict[str, str]]:
        adapter = get_adapter(self.account)
        params = self.approve(
            adapter.login_url(state="s", redirect_uri=REDIRECT_URI.format(broker="paper"))
        )
        token = params["request_token"]
        params["request_token"] = token[:-1] + ("A" if token[-1] != "A" else "B")
        return adapter, params

    def fault(self, kind: str) -> None:
        if kind == "reject":
            return  # the paper broker refuses the bad symbol the test sends instead
        field = {"reject-later": "reject_rate", "drop": "drop_rate"}[kind]
        PaperAccount.objects.filter(pk=self.book.pk).update(**{field: Decimal("1")})

    def clear_faults(self) -> None:
        PaperAccount.objects.filter(pk=self.book.pk).update(reject_rate=0, drop_rate=0)

    def end_session(self) -> None:
        PaperAccount.objects.filter(pk=self.book.pk).update(
            token_expires_at=timezone.now() - timedelta(seconds=1)
        )


class EmulatorVenue(Venue):
    def __init__(self, broker: str, settings: Any) -> None:
        self.broker = broker
        try:
            adapter_class(broker)
        except AdapterUnavailableError:
            pytest.skip(f"the {broker} adapter (brokers/{broker}/) is not installed yet")
        try:
            from brokers.emulator import start_in_thread
            from brokers.emulator.registry import emulator_class

            emulator_class(broker)
        except (ImportError, ValueError) as exc:
            pytest.skip(f"the {broker} emulator is not available yet: {exc}")
        self.emulator = start_in_thread(broker)
        urls = self.emulator.base_urls
        settings.BROKER_BASE_URLS = {
            **settings.BROKER_BASE_URLS,
            broker: urls["api"],
            **({"upstox_hft": urls["hft"]} if "hft" in urls else {}),
            # One emulator port serves both of Dhan's hosts.
            **({"dhan_auth": urls.get("auth", urls["api"])} if broker == "dhan" else {}),
        }
        settings.BROKER_LOGIN_URLS = {**settings.BROKER_LOGIN_URLS, broker: self.emulator.login_url}
        self.secret = f"{broker}-app-secret"
        self.emulator.add_account(
            api_key=f"{broker}key",
            api_secret=self.secret,
            user_id="AB1234",
            client_id="AB1234",
            redirect_uri=REDIRECT_URI.format(broker=broker),
        )
        self.account = BrokerAccountFactory(
            broker=broker,
            api_key=f"{broker}key",
            api_secret=self.secret,
            broker_user_id="AB1234",
            access_token="",
            token_issued_at=None,
            token_expires_at=None,
            status=AccountStatus.EXPIRED,
        )
        self._tokens: dict[str, str] = {}

    def approve(self, login_url: str) -> dict[str, str]:
        location = self.emulator.approve_login(login_url)
        return {k: v[-1] for k, v in parse_qs(urlsplit(location).query).items()}

    def bad_login_adapter(self) -> tuple[BrokerAdapter, dict[str, str]]:
        good = get_adapter(self.account)
        if self.broker == "angelone":
            # Angel One's publisher redirect carries the token itself (no checksum to get
            # wrong); what it verifies is the PIN + TOTP login.
            return good, {"pin": "0000", "totp": "000000"}
        params = self.approve(
            good.login_url(state="s", redirect_uri=REDIRECT_URI.format(broker=self.broker))
        )
        cls = adapter_class(self.broker)
        creds = good.credentials
        wrong = type(creds)(
            api_key=creds.api_key,
            api_secret=creds.api_secret + "-wrong",
            client_id=creds.client_id,
            extra=creds.extra,
        )
        return cls(wrong, base_url=good.base_url), params

    def instrument_token(self, symbol: str) -> str:
        """Brokers whose orders name a contract by id get one registered with the emulator
        (as their instrument master would list it); Kite and Fyers take the symbol."""
        if self.broker in ("kite", "fyers"):
            return ""
        if symbol not in self._tokens:
            number = 40000 + len(self._tokens)
            key = f"NSE_FO|{number}" if self.broker == "upstox" else str(number)
            kite = broker_symbol("kite", *_CONTRACT_OF_SYMBOL[symbol])
            row = {"key": key, "exchange": "NFO", "tradingsymbol": kite, "broker_symbol": symbol}
            # Angel One's emulator takes its own scrip-master column names.
            row.update(token=key, exch_seg="NFO", symbol=symbol, canonical=kite)
            self.emulator.add_instruments([row])
            self._tokens[symbol] = key
        return self._tokens[symbol]

    def fault(self, kind: str) -> None:
        self.emulator.queue_faults(kind)

    def clear_faults(self) -> None:
        self.emulator.queue_faults("none")

    def end_session(self) -> None:
        self.emulator.advance_clock(24 * 3600)

    def stop(self) -> None:
        self.emulator.stop()


def make_venue(broker: str, settings: Any) -> Venue:
    importlib.import_module("brokers.paper.adapter")
    return PaperVenue() if broker == "paper" else EmulatorVenue(broker, settings)
