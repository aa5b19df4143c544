"""Upstox behind our BrokerAdapter: v2 auth, v3 order APIs (shared/reference/broker-apis.md §2)."""

from __future__ import annotations

import gzip
import json
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
from brokers.httpclient import json_value, prepare
from brokers.trades import Trade, read_trades, upstox_trade
from brokers.upstox import parsing
from brokers.upstox.client import UpstoxClient

# Upstox access tokens die at 03:30 IST whatever the issue time (reference §2.1).
TOKEN_CUTOFF_IST = dtime(3, 30)
ASSETS_URL = "https://assets.upstox.com"
FO_SEGMENTS = {"NSE_FO", "BSE_FO"}


class UpstoxAdapter(BrokerAdapter):
    name = "upstox"
    capabilities = Capabilities(
        lookup_by_tag=True,  # GET /v2/order/history?tag=
        market_protection_required=False,  # Upstox protects MARKET orders by default
        modify=True,
        postback=False,
        needs_app_credentials=True,
        max_tag_length=20,
        algo_id_field="X-Algo-Name",
        basket_margin=True,  # POST /v2/charges/margin
    )
    # The JSON body of order_request: the instrument key and the price; no symbol.
    order_template = OrderTemplate(
        tradingsymbol=UNWRITTEN,
        instrument_token=lambda token, exchange: json_value(token),
        price=lambda price, exchange: json_value(parsing.price_text(price)),
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        order_base_url: str | None = None,
        login_url: str | None = None,
        assets_url: str = ASSETS_URL,
        client: UpstoxClient | None = None,
    ) -> None:
        super().__init__(credentials, base_url=base_url or settings.BROKER_BASE_URLS["upstox"])
        self.order_base_url = order_base_url or settings.BROKER_BASE_URLS["upstox_hft"]
        self.login_base_url = login_url or settings.BROKER_LOGIN_URLS["upstox"]
        self.assets_url = assets_url.rstrip("/")
        self.client = client or UpstoxClient(
            base_url=self.base_url or "",
            order_base_url=self.order_base_url,
            access_token=credentials.access_token,
        )

    # --- login -----------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.credentials.api_key,
                "redirect_uri": redirect_uri,
                "state": state,
            }
        )
        return f"{self.login_base_url}?{query}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """POST /v2/login/authorization/token with the single-use code and the client secret.
        AuthError when the code, secret or redirect URI is refused (the code is spent)."""
        code = params.get("code", "")
        if not code:
            raise AuthError("Upstox login was not completed.")
        data = self.client.send(
            "POST",
            "/v2/login/authorization/token",
            data={
                "code": code,
                "client_id": self.credentials.api_key,
                "client_secret": self.credentials.api_secret,
                "redirect_uri": redirect_uri,
                "grant_type": "authorization_code",
            },
        )
        issued = datetime.now(UTC)
        return TokenGrant(
            access_token=data["access_token"],
            issued_at=issued,
            expires_at=next_ist_cutoff(issued, TOKEN_CUTOFF_IST),
            broker_user_id=data.get("user_id") or "",
            raw={k: v for k, v in data.items() if k not in {"access_token", "extended_token"}},
        )

    # --- orders ----------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """POST /v3/order/place on the HFT host. Not retried: AmbiguousError if the answer was
        lost after sending (look the tag up), RetryableError if it certainly did not arrive."""
        return self.order_answer(self.client.http.exchange(self.order_request(order)))

    def order_request(self, order: OrderRequest) -> WireRequest:
        if not order.instrument_token:
            raise InputRejectedError("Upstox orders need the instrument key (NSE_FO|…).")
        if order.order_type == OrderType.LIMIT and order.price is None:
            raise InputRejectedError("A LIMIT order needs a price.")
        body = {
            "quantity": order.quantity,
            "product": parsing.PRODUCT_CODES[order.product],
            "validity": "DAY",
            "price": parsing.price_text(
                order.price if order.order_type == OrderType.LIMIT else None
            ),
            "tag": order.tag,
            "instrument_token": order.instrument_token,
            "order_type": order.order_type.value,
            "transaction_type": order.side.value,
            "disclosed_quantity": 0,
            "trigger_price": 0,
            "is_amo": False,
            "slice": False,
        }
        headers = self.client.headers()
        if order.algo_id:
            # Registered algos name themselves in X-Algo-Name (broker-apis.md §2.6 and §7).
            headers["X-Algo-Name"] = order.algo_id
        url = self.client.order_base_url + "/v3/order/place"
        return prepare("POST", url, headers=headers, json=body)

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        data = self.client.read(answer, write=True)
        ids = data.get("order_ids") if isinstance(data, dict) else None
        if not ids:
            raise AmbiguousError("Upstox's answer has no order id; the order may exist.", raw=data)
        return OrderAck(broker_order_id=str(ids[0]), received_at=datetime.now(UTC), raw=data)

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        data = self.client.send("GET", "/v2/order/details", params={"order_id": broker_order_id})
        return parsing.to_broker_order(data)

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        """GET /v2/order/history?tag=: status rows of every order with the tag, oldest first;
        the latest row of the most recent order wins (tags are not unique at Upstox)."""
        try:
            rows = self.client.send("GET", "/v2/order/history", params={"tag": tag}) or []
        except InputRejectedError as err:
            if err.code == parsing.NOT_FOUND:
                return None
            raise
        return parsing.to_broker_order(rows[-1]) if rows else None

    def cancel_order(self, broker_order_id: str) -> None:
        self.client.send(
            "DELETE",
            "/v3/order/cancel",
            write=True,
            order_host=True,
            params={"order_id": broker_order_id},
        )

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        """PUT /v3/order/modify; order_type, validity and price are required there, so the
        current values are read first."""
        current = self.order_status(broker_order_id).raw
        body = {
            "order_id": broker_order_id,
            "order_type": current.get("order_type"),
            "validity": current.get("validity") or "DAY",
            "price": parsing.price_text(price) if price is not None else current.get("price"),
            "trigger_price": 0,
        }
        if quantity is not None:
            body["quantity"] = quantity
        self.client.send("PUT", "/v3/order/modify", write=True, order_host=True, json=body)

    def order_book(self) -> list[BrokerOrder]:
        rows = self.client.send("GET", "/v2/order/retrieve-all") or []
        return [parsing.to_broker_order(row) for row in rows]

    def trade_book(self, broker_order_id: str | None = None) -> list[Trade]:
        """The day's trades, or one order's (`/v2/order/trades?order_id=`)."""
        if broker_order_id:
            rows = self.client.send("GET", "/v2/order/trades", params={"order_id": broker_order_id})
        else:
            rows = self.client.send("GET", "/v2/order/trades/get-trades-for-day")
        return read_trades(rows, upstox_trade)

    # --- portfolio and data ----------------------------------------------------------------
    def positions(self) -> list[Position]:
        rows = self.client.send("GET", "/v2/portfolio/short-term-positions") or []
        return [p for p in (parsing.to_position(row) for row in rows) if p is not None]

    def funds(self) -> Funds:
        data = self.client.send("GET", "/v2/user/get-funds-and-margin") or {}
        return parsing.to_funds(data.get("equity") or {})

    def basket_margin(self, orders: list[OrderRequest]) -> MarginEstimate:
        """`POST /v2/charges/margin` with each order's instrument key: `required_margin`
        (each order alone) and `final_margin` (after the basket's hedge benefit)."""
        body = {
            "instruments": [
                {
                    "instrument_key": o.instrument_token,
                    "quantity": o.quantity,
                    "product": parsing.PRODUCT_CODES[o.product],
                    "transaction_type": o.side.value,
                    "price": float(o.price or 0),
                }
                for o in orders
            ]
        }
        data = self.client.send("POST", "/v2/charges/margin", json=body)
        try:
            return MarginEstimate(
                initial=Decimal(str(data["required_margin"])),
                final=Decimal(str(data["final_margin"])),
            )
        except (KeyError, TypeError, ArithmeticError) as exc:
            raise PermanentError("Upstox's margin answer could not be read.") from exc

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """Last prices keyed by the instrument keys passed in (`NSE_FO|43919`,
        `NSE_INDEX|Nifty 50`)."""
        data = self.client.send(
            "GET", "/v2/market-quote/ltp", params={"instrument_key": ",".join(instruments)}
        )
        return parsing.to_quotes(data or {}, instruments)

    def instruments(self) -> list[dict[str, Any]]:
        """NSE_FO and BSE_FO rows of the daily JSON instrument files (gzip)."""
        rows: list[dict[str, Any]] = []
        for exchange in ("NSE", "BSE"):
            url = f"{self.assets_url}/market-quote/instruments/exchange/{exchange}.json.gz"
            content = self.client.get_raw(url).content
            raw = gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content
            rows.extend(r for r in json.loads(raw) if r.get("segment") in FO_SEGMENTS)
        return rows

    def warm(self) -> None:
        """Open the pooled connection to the order host before a timed burst."""
        self.client.warm()
