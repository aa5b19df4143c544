"""Dhan (DhanHQ v2) behind our BrokerAdapter interface (reference: broker-apis.md §5)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
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
)
from brokers.dhan import client as api
from brokers.dhan import parsing
from brokers.httpclient import json_value, prepare, raise_on_failure, to_decimal
from brokers.trades import Trade, dhan_trade, read_trades

# Tokens last at most 24 hours since the SEBI change (reference §5.1).
TOKEN_LIFETIME = timedelta(hours=24)


# The day's trade book (reference broker-apis.md; read by execution/orders/fills.py).
TRADE_BOOK = "/v2/trades"


class DhanAdapter(BrokerAdapter):
    """`credentials.client_id` is the dhanClientId; `api_key`/`api_secret` the app id and
    secret of the consent login. Orders carry our tag as `correlationId`."""

    name: ClassVar[str] = "dhan"
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup_by_tag=True,  # GET /v2/orders/external/{correlationId}
        market_protection_required=False,  # Dhan converts MARKET to a protected LIMIT itself
        postback=True,
        max_tag_length=20,
    )
    # The JSON body of order_request: the security id and the price; no symbol.
    order_template: ClassVar[OrderTemplate | None] = OrderTemplate(
        tradingsymbol=UNWRITTEN,
        instrument_token=lambda token, exchange: json_value(token),
        price=lambda price, exchange: json_value(parsing.limit_price(price)),
    )

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str | None = None,
        auth_url: str | None = None,
        login_url: str | None = None,
        instruments_url: str | None = None,
    ) -> None:
        super().__init__(credentials, base_url=base_url or api.DEFAULT_BASE_URL)
        base_urls = getattr(settings, "BROKER_BASE_URLS", {})
        login_urls = getattr(settings, "BROKER_LOGIN_URLS", {})
        self.login_page = login_url or login_urls.get(self.name) or api.DEFAULT_LOGIN_URL
        self.instruments_url = instruments_url or api.DEFAULT_INSTRUMENTS_URL
        self.api = api.DhanClient(
            base_url=self.base_url or api.DEFAULT_BASE_URL,
            auth_url=auth_url or base_urls.get("dhan_auth") or api.DEFAULT_AUTH_URL,
            client_id=credentials.client_id,
            access_token=credentials.access_token,
        )

    # --- login ---------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        """Asks Dhan for a consent id (app id and secret in headers), then points the trader at
        Dhan's login with it. Dhan returns to the redirect URL registered with the app, adding
        only `tokenId`: it does not echo `state`, so the caller must keep it (session)."""
        response = self.api.auth(
            "POST",
            api.GENERATE_CONSENT,
            params={"client_id": self.credentials.client_id},
            app_id=self.credentials.api_key,
            app_secret=self.credentials.api_secret,
        )
        body = parsing.check(response, write=False, login=True)
        consent_id = str(body.get("consentAppId") or "")
        if not consent_id:
            raise PermanentError("Dhan did not start the login (no consent id).")
        return f"{self.login_page}?{urlencode({'consentAppId': consent_id})}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """`tokenId` from the consent callback, or `pin` and `totp` (Dhan's TOTP login).
        Refusals raise AuthError."""
        if params.get("tokenId"):
            response = self.api.auth(
                "GET",
                api.CONSUME_CONSENT,
                params={"tokenId": params["tokenId"]},
                app_id=self.credentials.api_key,
                app_secret=self.credentials.api_secret,
            )
        elif params.get("pin") and params.get("totp"):
            response = self.api.auth(
                "POST",
                api.TOTP_LOGIN,
                params={
                    "dhanClientId": self.credentials.client_id,
                    "pin": params["pin"],
                    "totp": params["totp"],
                },
            )
        else:
            raise PermanentError("Dhan did not complete the login; please try again.")
        body = parsing.check(response, write=False, login=True)
        token = str(body.get("accessToken") or "")
        if not token:
            raise PermanentError("Dhan did not return an access token.")
        now = datetime.now(UTC)
        expires = parsing.token_expiry(body.get("expiryTime")) or now + TOKEN_LIFETIME
        return TokenGrant(
            access_token=token,
            issued_at=now,
            expires_at=min(expires, now + TOKEN_LIFETIME),
            broker_user_id=str(body.get("dhanClientId") or self.credentials.client_id),
            raw={"dhanClientName": body.get("dhanClientName", "")},
        )

    # --- orders --------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """POST /v2/orders once. An order without Dhan's securityId is refused locally."""
        return self.order_answer(self.api.http.exchange(self.order_request(order)))

    def order_request(self, order: OrderRequest) -> WireRequest:
        if not order.instrument_token:
            raise InputRejectedError("Dhan needs the contract's security id.")
        payload = parsing.order_payload(order, client_id=self.credentials.client_id)
        return prepare(
            "POST", self.api.base_url + api.ORDERS, headers=self.api.headers, json=payload
        )

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        raise_on_failure(answer)
        body = parsing.check(answer, write=True)  # type: ignore[arg-type]
        order_id = str(body.get("orderId") or "") if isinstance(body, dict) else ""
        if not order_id:
            raise AmbiguousError(
                "Dhan acknowledged the order without an id: look it up by tag.", raw=body
            )
        return OrderAck(broker_order_id=order_id, received_at=datetime.now(UTC), raw=body)

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        path = api.ORDER.format(order_id=broker_order_id)
        body = parsing.check(self.api.request("GET", path, write=False), write=False)
        return parsing.order_from_row(_single(body))

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        path = api.ORDER_BY_CORRELATION.format(correlation_id=tag)
        try:
            body = parsing.check(self.api.request("GET", path, write=False), write=False)
        except InputRejectedError:
            return None  # Dhan answers an unknown correlation id with an error
        if not body:
            return None
        return parsing.order_from_row(_single(body))

    def cancel_order(self, broker_order_id: str) -> None:
        path = api.ORDER.format(order_id=broker_order_id)
        parsing.check(self.api.request("DELETE", path, write=True), write=True)

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        row = self.order_status(broker_order_id).raw
        payload = {
            "dhanClientId": self.credentials.client_id,
            "orderId": broker_order_id,
            "orderType": "LIMIT" if price is not None else row.get("orderType"),
            "legName": row.get("legName") or "",
            "quantity": quantity if quantity is not None else row.get("quantity"),
            "price": float(price) if price is not None else row.get("price"),
            "disclosedQuantity": row.get("disclosedQuantity") or 0,
            "triggerPrice": row.get("triggerPrice") or 0,
            "validity": row.get("validity") or "DAY",
        }
        path = api.ORDER.format(order_id=broker_order_id)
        parsing.check(self.api.request("PUT", path, write=True, payload=payload), write=True)

    def order_book(self) -> list[BrokerOrder]:
        body = parsing.check(self.api.request("GET", api.ORDERS, write=False), write=False)
        return [parsing.order_from_row(row) for row in body or []]

    def trade_book(self, broker_order_id: str | None = None) -> list[Trade]:
        """The day's trades (`/v2/trades`), or one order's (`/v2/trades/{order-id}`)."""
        path = f"{TRADE_BOOK}/{broker_order_id}" if broker_order_id else TRADE_BOOK
        body = parsing.check(self.api.request("GET", path, write=False), write=False)
        return read_trades(body, dhan_trade)

    # --- portfolio and data --------------------------------------------------------------
    def positions(self) -> list[Position]:
        body = parsing.check(self.api.request("GET", api.POSITIONS, write=False), write=False)
        return parsing.positions_from(body)

    def funds(self) -> Funds:
        body = parsing.check(self.api.request("GET", api.FUNDS, write=False), write=False)
        return parsing.funds_from(body)

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """`instruments` as `SEGMENT:securityId` (e.g. `NSE_FNO:52175`, `IDX_I:13`)."""
        request: dict[str, list[int]] = {}
        for key in instruments:
            segment, _, security_id = key.partition(":")
            request.setdefault(segment, []).append(int(security_id))
        response = self.api.request("POST", api.LTP, write=False, payload=request)
        body = parsing.check(response, write=False)
        quotes = {}
        for segment, rows in (body.get("data") or {}).items():
            for security_id, values in (rows or {}).items():
                key = f"{segment}:{security_id}"
                quotes[key] = Quote(
                    tradingsymbol=key, last_price=to_decimal(values.get("last_price"))
                )
        return quotes

    def instruments(self) -> list[dict[str, Any]]:
        """F&O rows (NSE and BSE derivatives, segment `D`) of Dhan's compact scrip master."""
        response = self.api.get_url(self.instruments_url)
        if not response.ok:
            raise RetryableError(
                f"Dhan's scrip master is unavailable (HTTP {response.status_code})."
            )
        rows = csv.DictReader(io.StringIO(response.text))
        return [
            dict(row)
            for row in rows
            if row.get("SEM_SEGMENT") == "D" and row.get("SEM_EXM_EXCH_ID") in ("NSE", "BSE")
        ]


def _single(body: Any) -> dict[str, Any]:
    # Dhan documents one order per id, but some deployments answer a one-element list.
    if isinstance(body, list):
        return body[-1] if body else {}
    return body or {}
