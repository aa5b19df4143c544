"""Fyers API v3 behind our BrokerAdapter interface (reference: broker-apis.md §4)."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings

from brokers.base import (
    UNWRITTEN,
    AmbiguousError,
    BrokerAdapter,
    BrokerOrder,
    Capabilities,
    Credentials,
    Funds,
    InputRejectedError,
    OrderAck,
    OrderRequest,
    OrderTemplate,
    PermanentError,
    Position,
    Quote,
    RetryableError,
    TokenGrant,
    WireAnswer,
    WireRequest,
    next_ist_cutoff,
)
from brokers.fyers import client as api
from brokers.fyers import parsing
from brokers.httpclient import json_value, jwt_expiry, prepare, raise_on_failure, to_decimal, to_int
from brokers.trades import Trade, fyers_trade, read_trades

# Columns of Fyers' headerless symbol-master CSV (reference §4.5); three reserved at the end.
INSTRUMENT_COLUMNS = (
    "fytoken",
    "symbol_details",
    "exchange_instrument_type",
    "minimum_lot_size",
    "tick_size",
    "isin",
    "trading_session",
    "last_update_date",
    "expiry_date",
    "symbol_ticker",
    "exchange",
    "segment",
    "scrip_code",
    "underlying_symbol",
    "underlying_scrip_code",
    "strike_price",
    "option_type",
    "underlying_fytoken",
)
INSTRUMENT_FILES = ("NSE_FO", "BSE_FO")


def app_id_hash(app_id: str, app_secret: str) -> str:
    """Fyers' `appIdHash`: hex sha256 of `APP_ID:APP_SECRET`."""
    return hashlib.sha256(f"{app_id}:{app_secret}".encode()).hexdigest()


MIDNIGHT = dtime(0, 0)


# The day's trade book (reference broker-apis.md; read by execution/orders/fills.py).
TRADE_BOOK = "/api/v3/tradebook"


class FyersAdapter(BrokerAdapter):
    """`credentials.api_key` is the Fyers app id (`XXXX-100`), `api_secret` its secret."""

    name: ClassVar[str] = "fyers"
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup_by_tag=True,  # GET /api/v3/orders?order_tag=1:<tag>
        market_protection_required=False,  # Fyers converts MARKET to a protected LIMIT itself
        max_tag_length=30,
    )
    # The JSON body of order_request: the symbol with its exchange prefix, the limit price; no
    # token.
    order_template: ClassVar[OrderTemplate | None] = OrderTemplate(
        tradingsymbol=lambda symbol, exchange: json_value(parsing.symbol_text(symbol, exchange)),
        instrument_token=UNWRITTEN,
        price=lambda price, exchange: json_value(parsing.limit_price(price)),
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        login_url: str | None = None,
        instruments_url: str | None = None,
    ) -> None:
        super().__init__(credentials, base_url=base_url or api.DEFAULT_BASE_URL)
        login_urls = getattr(settings, "BROKER_LOGIN_URLS", {})
        self.login_page = login_url or login_urls.get(self.name) or api.DEFAULT_LOGIN_URL
        self.instruments_url = instruments_url or api.DEFAULT_INSTRUMENTS_URL
        self.api = api.FyersClient(
            base_url=self.base_url or api.DEFAULT_BASE_URL,
            app_id=credentials.api_key,
            access_token=credentials.access_token,
        )

    # --- login ---------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "client_id": self.credentials.api_key,
                "redirect_uri": redirect_uri,
                "response_type": "code",
                "state": state,
            }
        )
        return f"{self.login_page}?{query}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """Validate the callback's `auth_code` with appIdHash. A wrong secret (Fyers -371) or
        a used code raises AuthError."""
        if params.get("s", "ok") != "ok" or not params.get("auth_code"):
            raise PermanentError("Fyers did not complete the login; please try again.")
        payload = {
            "grant_type": "authorization_code",
            "appIdHash": app_id_hash(self.credentials.api_key, self.credentials.api_secret),
            "code": params["auth_code"],
        }
        response = self.api.request("POST", api.VALIDATE_AUTHCODE, write=False, payload=payload)
        body = parsing.check(response, write=False, login=True)
        token = str(body.get("access_token") or "")
        if not token:
            raise PermanentError("Fyers did not return an access token.")
        now = datetime.now(UTC)
        # The exact expiry is unconfirmed (reference §6): the JWT's `exp`, capped at midnight
        # IST since Fyers requires a fresh 2FA login every trading day.
        expires = min(filter(None, [jwt_expiry(token), next_ist_cutoff(now, MIDNIGHT)]))
        return TokenGrant(
            access_token=token,
            refresh_token=str(body.get("refresh_token") or ""),
            issued_at=now,
            expires_at=expires,
            broker_user_id=self.credentials.client_id,
        )

    # --- orders --------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """POST /orders/sync once. `code: 201` (sent, not acknowledged) raises AmbiguousError."""
        return self.order_answer(self.api.http.exchange(self.order_request(order)))

    def order_request(self, order: OrderRequest) -> WireRequest:
        url = self.api.base_url + api.ORDER_SYNC
        return prepare("POST", url, headers=self.api.headers, json=parsing.order_payload(order))

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        raise_on_failure(answer)
        body = parsing.check(answer, write=True)  # type: ignore[arg-type]
        order_id = str(body.get("id") or "")
        if to_int(body.get("code")) == parsing.CODE_ORDER_SENT_NO_ACK or not order_id:
            raise AmbiguousError(
                "Fyers sent the order without an acknowledgement: look it up by tag.",
                code=str(body.get("code")),
                raw=body,
            )
        return OrderAck(broker_order_id=order_id, received_at=datetime.now(UTC), raw=body)

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        orders = self._orders({"id": broker_order_id})
        if not orders:
            raise InputRejectedError(f"Fyers has no order {broker_order_id}.")
        return orders[0]

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        matches = [order for order in self._orders({"order_tag": f"1:{tag}"}) if order.tag == tag]
        return matches[-1] if matches else None

    def _orders(self, params: dict[str, str] | None = None) -> list[BrokerOrder]:
        response = self.api.request("GET", api.ORDERS, write=False, params=params)
        return parsing.orders_from_book(parsing.check(response, write=False))

    def cancel_order(self, broker_order_id: str) -> None:
        # Fyers cancels with DELETE and a JSON body.
        response = self.api.request(
            "DELETE", api.ORDER_SYNC, write=True, payload={"id": broker_order_id}
        )
        parsing.check(response, write=True)

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        payload: dict[str, Any] = {"id": broker_order_id}
        if price is not None:
            payload.update(type=parsing.TYPE_LIMIT, limitPrice=float(price))
        else:
            # `type` is required; omitted fields stay unchanged.
            payload["type"] = to_int(self.order_status(broker_order_id).raw.get("type"))
        if quantity is not None:
            payload["qty"] = quantity
        response = self.api.request("PATCH", api.ORDER_SYNC, write=True, payload=payload)
        parsing.check(response, write=True)

    def order_book(self) -> list[BrokerOrder]:
        return self._orders()

    def trade_book(self, broker_order_id: str | None = None) -> list[Trade]:
        """The day's trades; Fyers has no per-order call, so one order's trades are the book
        filtered by order number."""
        response = self.api.request("GET", TRADE_BOOK, write=False)
        trades = read_trades(parsing.check(response, write=False).get("tradeBook"), fyers_trade)
        if broker_order_id:
            trades = [t for t in trades if t.broker_order_id == broker_order_id]
        return trades

    # --- portfolio and data --------------------------------------------------------------
    def positions(self) -> list[Position]:
        response = self.api.request("GET", api.POSITIONS, write=False)
        return parsing.positions_from(parsing.check(response, write=False))

    def funds(self) -> Funds:
        response = self.api.request("GET", api.FUNDS, write=False)
        return parsing.funds_from(parsing.check(response, write=False))

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """`instruments` in Fyers notation: `NSE:NIFTY50-INDEX`, `NSE:NIFTY25JUN24000CE`."""
        response = self.api.request(
            "GET", api.QUOTES, write=False, params={"symbols": ",".join(instruments)}
        )
        body = parsing.check(response, write=False)
        quotes = {}
        for row in body.get("d") or []:
            if row.get("s") != "ok":
                continue
            values = row.get("v") or {}
            bid, ask = to_decimal(values.get("bid")), to_decimal(values.get("ask"))
            name = str(row.get("n") or "")
            quotes[name] = Quote(
                tradingsymbol=name.partition(":")[2] or name,
                last_price=to_decimal(values.get("lp")),
                bid=bid if bid > 0 else None,
                ask=ask if ask > 0 else None,
            )
        return quotes

    def instruments(self) -> list[dict[str, Any]]:
        """NSE and BSE F&O rows of Fyers' headerless symbol-master CSVs."""
        rows: list[dict[str, Any]] = []
        for segment in INSTRUMENT_FILES:
            response = self.api.get_url(self.instruments_url.format(segment=segment))
            if not response.ok:
                raise RetryableError(
                    f"Fyers' {segment} symbol file is unavailable (HTTP {response.status_code})."
                )
            for values in csv.reader(io.StringIO(response.text)):
                if values:
                    rows.append(dict(zip(INSTRUMENT_COLUMNS, values, strict=False)))
        return rows
