"""Zerodha Kite Connect v3 behind our BrokerAdapter (shared/reference/broker-apis.md §1)."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.conf import settings

from brokers.base import (
    UNWRITTEN,
    AmbiguousError,
    AuthError,
    BrokerAdapter,
    BrokerOrder,
    Capabilities,
    Credentials,
    Funds,
    InputRejectedError,
    MarginEstimate,
    OrderAck,
    OrderRequest,
    OrderTemplate,
    OrderType,
    PermanentError,
    Position,
    Quote,
    TokenGrant,
    WireAnswer,
    WireRequest,
    next_ist_cutoff,
)
from brokers.httpclient import form_value, prepare
from brokers.kite import parsing
from brokers.kite.client import KiteClient
from brokers.trades import Trade, kite_trade, read_trades

# Kite flushes every access token at 06:00 IST (reference §1.1).
TOKEN_CUTOFF_IST = dtime(6, 0)


class KiteAdapter(BrokerAdapter):
    name = "kite"
    capabilities = Capabilities(
        lookup_by_tag=False,  # no tag filter: the day's order book is scanned
        market_protection_required=True,  # MARKET without market_protection is refused
        modify=True,
        postback=False,
        needs_app_credentials=True,
        max_tag_length=20,
        algo_id_field="algo_id",
        basket_margin=True,  # POST /margins/basket
    )
    # The form of order_request: the symbol and the price are form values; no token.
    order_template = OrderTemplate(
        tradingsymbol=lambda symbol, exchange: form_value(symbol),
        instrument_token=UNWRITTEN,
        price=lambda price, exchange: form_value(_text(price)),
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        login_url: str | None = None,
        client: KiteClient | None = None,
    ) -> None:
        super().__init__(credentials, base_url=base_url or settings.BROKER_BASE_URLS["kite"])
        self.login_base_url = login_url or settings.BROKER_LOGIN_URLS["kite"]
        self.client = client or KiteClient(
            base_url=self.base_url or "",
            api_key=credentials.api_key,
            access_token=credentials.access_token,
        )

    # --- login -----------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        """Kite sends the browser to the redirect URL registered with the app (redirect_uri
        cannot be chosen per login); `state` travels in `redirect_params` and comes back."""
        query = urlencode(
            {
                "v": "3",
                "api_key": self.credentials.api_key,
                "redirect_params": urlencode({"state": state}),
            }
        )
        return f"{self.login_base_url}?{query}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """POST /session/token with checksum = sha256(api_key + request_token + api_secret).
        AuthError when the login failed or Kite refuses the token or checksum."""
        request_token = params.get("request_token", "")
        if params.get("status", "success") != "success" or not request_token:
            raise AuthError("Kite login was not completed.")
        api_key, secret = self.credentials.api_key, self.credentials.api_secret
        checksum = hashlib.sha256((api_key + request_token + secret).encode()).hexdigest()
        data = self.client.send(
            "POST",
            "/session/token",
            data={"api_key": api_key, "request_token": request_token, "checksum": checksum},
        )
        issued = parsing.parse_timestamp(data.get("login_time")) or datetime.now(UTC)
        return TokenGrant(
            access_token=data["access_token"],
            issued_at=issued,
            expires_at=next_ist_cutoff(issued, TOKEN_CUTOFF_IST),
            refresh_token=data.get("refresh_token") or "",
            broker_user_id=data.get("user_id") or "",
            raw={
                k: v
                for k, v in data.items()
                if k not in {"access_token", "refresh_token", "public_token", "enctoken"}
            },
        )

    # --- orders ----------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """POST /orders/regular (form). Not retried: AmbiguousError if the answer was lost
        after sending (look the tag up), RetryableError if it certainly did not arrive."""
        return self.order_answer(self.client.http.exchange(self.order_request(order)))

    def order_request(self, order: OrderRequest) -> WireRequest:
        form = {
            "tradingsymbol": order.tradingsymbol,
            "exchange": order.exchange,
            "transaction_type": order.side.value,
            "order_type": order.order_type.value,
            "quantity": str(order.quantity),
            "product": order.product.value,
            "validity": "DAY",
            "tag": order.tag,
        }
        if order.algo_id:
            # Kite's optional place-order field since mid-2026 (broker-apis.md, December 2026).
            form["algo_id"] = order.algo_id
        if order.order_type == OrderType.LIMIT:
            if order.price is None:
                raise InputRejectedError("A LIMIT order needs a price.")
            form["price"] = _text(order.price)
        else:
            if order.market_protection is None:
                raise InputRejectedError("Kite refuses MARKET orders without market protection.")
            form["market_protection"] = _text(order.market_protection)
        return prepare(
            "POST",
            self.client.base_url + "/orders/regular",
            headers=self.client.headers(),
            data=form,
        )

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        data = self.client.read(answer, write=True)
        if not isinstance(data, dict) or not data.get("order_id"):
            raise AmbiguousError("Kite's answer has no order id; the order may exist.", raw=data)
        return OrderAck(
            broker_order_id=str(data["order_id"]), received_at=datetime.now(UTC), raw=data
        )

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        """The latest entry of GET /orders/{id} (history, oldest first)."""
        history = self.client.send("GET", f"/orders/{broker_order_id}")
        if not history:
            raise PermanentError(f"Kite has no order {broker_order_id}.")
        return parsing.to_broker_order(history[-1])

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        """Kite has no lookup by tag: scan today's order book (reference §1.4)."""
        matches = [o for o in self.order_book() if o.tag == tag]
        return matches[-1] if matches else None

    def cancel_order(self, broker_order_id: str) -> None:
        self.client.send("DELETE", f"/orders/regular/{broker_order_id}", write=True)

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        form = {}
        if quantity is not None:
            form["quantity"] = str(quantity)
        if price is not None:
            form["price"] = _text(price)
        self.client.send("PUT", f"/orders/regular/{broker_order_id}", write=True, data=form)

    def order_book(self) -> list[BrokerOrder]:
        return [parsing.to_broker_order(row) for row in self.client.send("GET", "/orders") or []]

    def trade_book(self, broker_order_id: str | None = None) -> list[Trade]:
        """The day's trades (`GET /trades`), or one order's (`GET /orders/{id}/trades`)."""
        path = f"/orders/{broker_order_id}/trades" if broker_order_id else "/trades"
        return read_trades(self.client.send("GET", path), kite_trade)

    # --- portfolio and data ----------------------------------------------------------------
    def positions(self) -> list[Position]:
        data = self.client.send("GET", "/portfolio/positions") or {}
        rows = (parsing.to_position(row) for row in data.get("net") or [])
        return [p for p in rows if p is not None]

    def funds(self) -> Funds:
        return parsing.to_funds(self.client.send("GET", "/user/margins/equity") or {})

    def basket_margin(self, orders: list[OrderRequest]) -> MarginEstimate:
        """`POST /margins/basket?consider_positions=true` with the orders as a JSON list
        (the hedge benefit of open positions counts): `initial.total` and `final.total`."""
        body = [
            {
                "exchange": o.exchange,
                "tradingsymbol": o.tradingsymbol,
                "transaction_type": o.side.value,
                "variety": "regular",
                "product": o.product.value,
                "order_type": o.order_type.value,
                "quantity": o.quantity,
                "price": float(o.price or 0),
                "trigger_price": 0,
            }
            for o in orders
        ]
        data = self.client.send(
            "POST", "/margins/basket", params={"consider_positions": "true"}, json=body
        )
        if not isinstance(data, dict):
            raise PermanentError("Kite's basket margin answer has no data.")
        try:
            return MarginEstimate(
                initial=Decimal(str(data["initial"]["total"])),
                final=Decimal(str(data["final"]["total"])),
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise PermanentError("Kite's basket margin answer could not be read.") from exc

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """`instruments` as Kite writes them: "NFO:NIFTY25D1624000CE", "NSE:NIFTY 50"."""
        data = self.client.send("GET", "/quote", params=[("i", i) for i in instruments]) or {}
        return {key: parsing.to_quote(key, row) for key, row in data.items()}

    def instruments(self) -> list[dict[str, Any]]:
        """NFO and BFO rows of the daily instrument dump (CSV, gzip on the wire)."""
        rows: list[dict[str, Any]] = []
        for exchange in ("NFO", "BFO"):
            text = self.client.send_raw("GET", f"/instruments/{exchange}").text
            rows.extend(csv.DictReader(io.StringIO(text)))
        return rows

    def warm(self) -> None:
        """Open the pooled connection before a timed burst."""
        self.client.warm()


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)
