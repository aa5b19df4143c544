"""Angel One SmartAPI behind our BrokerAdapter interface (reference: broker-apis.md §3)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.conf import settings

from brokers.angelone import client as api
from brokers.angelone import parsing
from brokers.base import (
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
    OrderType,
    PermanentError,
    Position,
    Quote,
    RetryableError,
    TokenGrant,
    WireAnswer,
    WireRequest,
    next_ist_cutoff,
)
from brokers.httpclient import (
    json_body,
    json_value,
    jwt_expiry,
    prepare,
    raise_on_failure,
    to_decimal,
)
from brokers.trades import Trade, angelone_trade, read_trades

MIDNIGHT = dtime(0, 0)


# The day's trade book (reference broker-apis.md; read by execution/orders/fills.py).
TRADE_BOOK = "/rest/secure/angelbroking/order/v1/getTradeBook"


class AngelOneAdapter(BrokerAdapter):
    """Orders are identified by Angel's `uniqueorderid` (the key its details endpoint takes).

    Since 1-Apr-2026 Angel One refuses MARKET (and IOC) orders from algos, so a MARKET order
    is refused here, before it costs an order slot: send a LIMIT instead.
    """

    name: ClassVar[str] = "angelone"
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup_by_tag=False,  # the order book is scanned for `ordertag`
        market_protection_required=False,  # MARKET is refused outright, see the class docstring
        max_tag_length=20,
        market_orders_allowed=False,
    )
    # The JSON body of order_request: symbol, symbol token and price, all strings.
    order_template: ClassVar[OrderTemplate | None] = OrderTemplate(
        tradingsymbol=lambda symbol, exchange: json_value(symbol),
        instrument_token=lambda token, exchange: json_value(token),
        price=lambda price, exchange: json_value(parsing.price_text(price)),
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
        self.api = self._client(credentials.access_token)

    def _client(self, jwt_token: str) -> api.AngelOneClient:
        extra = self.credentials.extra
        return api.AngelOneClient(
            base_url=self.base_url or api.DEFAULT_BASE_URL,
            api_key=self.credentials.api_key,
            jwt_token=jwt_token,
            client_public_ip=extra.get("static_ip", ""),
        )

    # --- login ---------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        """Angel's publisher login; it returns to the redirect URL registered with the app
        (not `redirect_uri`) with `auth_token`, `feed_token`, `refresh_token` and `state`."""
        query = urlencode({"api_key": self.credentials.api_key, "state": state})
        return f"{self.login_page}?{query}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """Either the publisher-login callback (`auth_token`…) or a direct login with the
        trader's `pin` and current `totp` (and `clientcode`, default: the account's client id).
        Wrong credentials raise AuthError; nothing is stored here."""
        now = datetime.now(UTC)
        if params.get("auth_token"):
            return self._grant(
                params["auth_token"], params.get("refresh_token", ""), issued_at=now, raw={}
            )
        if not (params.get("pin") and params.get("totp")):
            raise PermanentError("Angel One login needs your PIN and the current TOTP code.")
        payload = {
            "clientcode": params.get("clientcode") or self.credentials.client_id,
            "password": params["pin"],
            "totp": params["totp"],
        }
        body = parsing.check(
            self.api.post(api.LOGIN_PATH, payload, write=False), write=False, login=True
        )
        data = body.get("data") or {}
        return self._grant(
            str(data.get("jwtToken") or ""),
            str(data.get("refreshToken") or ""),
            issued_at=now,
            raw={"feed_token_received": bool(data.get("feedToken"))},
            user_id=str(payload["clientcode"]),
        )

    def _grant(
        self, jwt: str, refresh: str, *, issued_at: datetime, raw: dict[str, Any], user_id: str = ""
    ) -> TokenGrant:
        if not jwt:
            raise PermanentError("Angel One did not return a session token.")
        # Angel documents only "daily" expiry: trust the JWT's own `exp`, and never past
        # midnight IST, since every session is logged out before the next trading day.
        expires = min(filter(None, [jwt_expiry(jwt), next_ist_cutoff(issued_at, MIDNIGHT)]))
        return TokenGrant(
            access_token=jwt,
            refresh_token=refresh,
            issued_at=issued_at,
            expires_at=expires,
            broker_user_id=user_id or self.credentials.client_id,
            raw=raw,
        )

    # --- orders --------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """POST placeOrder once. A MARKET order or one without the Angel symbol token is
        refused locally (InputRejectedError) without sending anything."""
        return self.order_answer(self.api.http.exchange(self.order_request(order)))

    def order_request(self, order: OrderRequest) -> WireRequest:
        if order.order_type is OrderType.MARKET:
            raise InputRejectedError(
                "Angel One does not accept market orders from algos (since 1-Apr-2026); "
                "send a limit order instead."
            )
        if not order.instrument_token:
            raise InputRejectedError("Angel One needs the contract's symbol token.")
        url = self.api.base_url + api.PLACE_ORDER
        return prepare("POST", url, headers=self.api.headers, json=parsing.order_payload(order))

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        raise_on_failure(answer)
        body = parsing.check(answer, write=True)  # type: ignore[arg-type]
        data = body.get("data") or {}
        order_id = str(data.get("uniqueorderid") or data.get("orderid") or "")
        if not order_id:
            raise AmbiguousError(
                "Angel One acknowledged the order without an id: look it up by tag.", raw=body
            )
        return OrderAck(broker_order_id=order_id, received_at=datetime.now(UTC), raw=body)

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        path = api.ORDER_DETAILS.format(unique_order_id=broker_order_id)
        body = parsing.check(self.api.get(path), write=False)
        return parsing.order_from_row(body.get("data") or {})

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        matches = [order for order in self.order_book() if order.tag == tag]
        return matches[-1] if matches else None

    def cancel_order(self, broker_order_id: str) -> None:
        row = self.order_status(broker_order_id).raw
        payload = {"variety": row.get("variety") or "NORMAL", "orderid": row.get("orderid")}
        parsing.check(self.api.post(api.CANCEL_ORDER, payload, write=True), write=True)

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        row = self.order_status(broker_order_id).raw
        payload = {
            "variety": row.get("variety") or "NORMAL",
            "orderid": row.get("orderid"),
            "ordertype": "LIMIT" if price is not None else row.get("ordertype"),
            "producttype": row.get("producttype"),
            "duration": row.get("duration") or "DAY",
            "price": format(price, "f") if price is not None else str(row.get("price")),
            "quantity": str(quantity if quantity is not None else row.get("quantity")),
            "tradingsymbol": row.get("tradingsymbol"),
            "symboltoken": row.get("symboltoken"),
            "exchange": row.get("exchange"),
        }
        parsing.check(self.api.post(api.MODIFY_ORDER, payload, write=True), write=True)

    def order_book(self) -> list[BrokerOrder]:
        return parsing.orders_from_book(parsing.check(self.api.get(api.ORDER_BOOK), write=False))

    def trade_book(self, broker_order_id: str | None = None) -> list[Trade]:
        """The day's trades (`data: null` when none); Angel has no per-order call, so one
        order's trades are the book filtered by order id. The book names orders by their
        numeric `orderid`; ours is the `uniqueorderid`, taken from the order book."""
        body = parsing.check(self.api.get(TRADE_BOOK), write=False)
        trades = read_trades(body.get("data"), angelone_trade)
        if trades:
            unique = {o.raw.get("orderid"): o.broker_order_id for o in self.order_book()}
            trades = [
                dataclasses.replace(t, broker_order_id=unique.get(t.broker_order_id) or "")
                for t in trades
            ]
        if broker_order_id:
            trades = [t for t in trades if t.broker_order_id == broker_order_id]
        return trades

    # --- portfolio and data --------------------------------------------------------------
    def positions(self) -> list[Position]:
        return parsing.positions_from(parsing.check(self.api.get(api.POSITIONS), write=False))

    def funds(self) -> Funds:
        return parsing.funds_from(parsing.check(self.api.get(api.RMS), write=False))

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """`instruments` as `EXCHANGE:symboltoken` (e.g. `NFO:43650`, `NSE:99926000`)."""
        tokens: dict[str, list[str]] = {}
        for key in instruments:
            exchange, _, token = key.partition(":")
            tokens.setdefault(exchange, []).append(token)
        payload = {"mode": "FULL", "exchangeTokens": tokens}
        body = parsing.check(self.api.post(api.QUOTE, payload, write=False), write=False)
        quotes = {}
        for row in (body.get("data") or {}).get("fetched") or []:
            key = f"{row.get('exchange')}:{row.get('symbolToken')}"
            depth = row.get("depth") or {}
            quotes[key] = Quote(
                tradingsymbol=str(row.get("tradingSymbol") or ""),
                last_price=to_decimal(row.get("ltp")),
                bid=_best(depth.get("buy")),
                ask=_best(depth.get("sell")),
            )
        return quotes

    def instruments(self) -> list[dict[str, Any]]:
        """Angel's scrip master, F&O rows only (`exch_seg` NFO or BFO)."""
        response = self.api.get_url(self.instruments_url)
        rows = json_body(response)
        if not response.ok or not isinstance(rows, list):
            raise RetryableError(
                f"Angel One's instrument file is unavailable (HTTP {response.status_code})."
            )
        return [row for row in rows if row.get("exch_seg") in ("NFO", "BFO")]


def _best(levels: Any) -> Decimal | None:
    if not levels:
        return None
    price = to_decimal(levels[0].get("price"))
    return price if price > 0 else None
