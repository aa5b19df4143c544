"""Upstox emulator: v2 auth, v3 order placement (shared/reference/broker-apis.md §2, §7).

Reproduced: the authorization dialog (`UDAPI100068` for an unknown client or a redirect URI
that is not the registered one) redirecting with a single-use `code` and the caller's
`state`; `POST /v2/login/authorization/token` checking code, client secret and redirect URI
and answering the flat token JSON; `Bearer` tokens dying at 03:30 IST; order writes only on
the second ("hft") host; `POST /v3/order/place` (JSON, documented required fields) answering
`data.order_ids[]` + `metadata.latency`; modify/cancel; order book, details, history by
`order_id` and/or non-unique `tag`; positions; funds; LTP quotes; lower-case statuses;
`errors[]` carrying camel- and snake-case keys; 429 + `UDAPI10005`; market price protection
by default for MARKET orders.

Instrument keys (`NSE_FO|43919`) must be registered first (EmulatorHandle.add_instruments),
as the real API only knows the keys of its instrument master. Assumed where the reference is
silent: a write from an unregistered IP is HTTP 403 whose message names the static-IP rule,
with errorCode `IP_NOT_REGISTERED` (Upstox documents no code for it); an unknown order id is
400 `UDAPI100010`. Served too: the deprecated v2 place/modify/cancel on the HFT host
(`data.order_id`), v3 LTP, the trade book (`get-trades-for-day`, `trades?order_id=`) and the
daily instrument JSON (`/market-quote/instruments/exchange/complete.json.gz`, gzip). Not
emulated: multi-order, slicing, extended tokens. The v2 LTP takes `instrument_key` as the docs
say (the SDK's `ltp()` sends `symbol`, which is refused).
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from aiohttp import web

from brokers.emulator.core import (
    ARRIVAL_NS,
    BrokerEmulator,
    EmulatorError,
    ErrorKind,
    Fill,
    Order,
    OrderSpec,
    OrderState,
    PositionRow,
    Session,
    algo_id_checked,
    consent_page,
    decimal_or_error,
    int_or_error,
    ist_text,
    json_object,
    number,
    with_query,
)
from brokers.emulator.master import INDICES, Contract, IndexRow
from execution.markettime import IST

ERRORS = {
    ErrorKind.AUTH: (401, "UDAPI100050", "Invalid token used to access API"),
    ErrorKind.LOGIN: (401, "UDAPI100016", "Invalid Credentials"),
    ErrorKind.IP: (403, "IP_NOT_REGISTERED", ""),
    ErrorKind.INPUT: (400, "UDAPI100036", ""),
    ErrorKind.ORDER: (400, "UDAPI100040", ""),
    ErrorKind.MARGIN: (400, "UDAPI100036", ""),
    ErrorKind.NOT_FOUND: (400, "UDAPI100010", "Order not found"),
    ErrorKind.RATE: (429, "UDAPI10005", "Too Many Request Sent"),
    ErrorKind.SERVER: (503, "UDAPI100500", "Something went wrong... please contact us"),
}
STATUS = {
    OrderState.RECEIVED: "open pending",
    OrderState.OPEN: "open",
    OrderState.COMPLETE: "complete",
    OrderState.CANCELLED: "cancelled",
    OrderState.REJECTED: "rejected",
}
RECEIVED_WALK = ("put order req received", "validation pending", "open pending")
PLACE_REQUIRED = (
    "quantity",
    "product",
    "validity",
    "price",
    "instrument_token",
    "order_type",
    "transaction_type",
    "disclosed_quantity",
    "trigger_price",
    "is_amo",
)
TAG_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
SEGMENT_EXCHANGE = {"NSE_FO": "NFO", "BSE_FO": "BFO"}


class UpstoxEmulator(BrokerEmulator):
    name = "upstox"
    token_cutoff = dtime(3, 30)
    rate_windows = ((1.0, 10), (60.0, 500), (1800.0, 2000))
    hosts = ("api", "hft")
    login_path = "/v2/login/authorization/dialog"

    def routes(self, host: str) -> Iterable[web.RouteDef]:
        if host == "hft":
            # Upstox takes order writes on its HFT host only.
            return [
                web.post("/v3/order/place", self.place_order),
                web.put("/v3/order/modify", self.modify_order),
                web.delete("/v3/order/cancel", self.cancel_order),
                web.post("/v2/order/place", self.place_order_v2),
                web.put("/v2/order/modify", self.modify_order),
                web.delete("/v2/order/cancel", self.cancel_order),
            ]
        return [
            web.get(self.login_path, self.login_page),
            web.post(self.login_path, self.login_submit),
            web.post("/v2/login/authorization/token", self.token),
            web.delete("/v2/logout", self.logout),
            web.get("/v2/user/profile", self.profile),
            web.get("/v2/user/get-funds-and-margin", self.funds),
            web.post("/v2/charges/margin", self.margin),
            web.get("/v2/order/retrieve-all", self.orders),
            web.get("/v2/order/details", self.order_details),
            web.get("/v2/order/history", self.order_history),
            web.get("/v2/portfolio/short-term-positions", self.positions),
            web.get("/v2/market-quote/ltp", self.ltp),
            web.get("/v3/market-quote/ltp", self.ltp_v3),
            web.get("/v2/order/trades/get-trades-for-day", self.trades),
            web.get("/v2/order/trades", self.order_trades),
            web.get(MASTER_PATH, self.instruments),
        ]

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        return [(instrument_key(contract), upstox_symbol(contract))]

    def index_keys(self, index: IndexRow) -> Iterable[tuple[str, str]]:
        return [(INDEX_KEYS[index.name], index.name)]

    def error_response(self, err: EmulatorError) -> web.Response:
        status, code, default = ERRORS[err.kind]
        message = default or err.message
        error = {
            "errorCode": err.code or code,
            "message": message,
            "propertyPath": None,
            "invalidValue": None,
            "error_code": err.code or code,
            "property_path": None,
            "invalid_value": None,
        }
        return web.json_response(
            {"status": "error", "errors": [error]}, status=err.status or status
        )

    def authenticate(self, request: web.Request) -> Session:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        return self.state.session_for_token(token)

    @classmethod
    def load_request(
        cls, *, api_key: str, n: int, symbol: str
    ) -> tuple[str, str, dict[str, str], dict[str, str] | None, Any]:
        body = {
            "quantity": 75,
            "product": "D",
            "validity": "DAY",
            "price": 0,
            "tag": f"load{n}",
            "instrument_token": LOAD_KEY,
            "order_type": "MARKET",
            "transaction_type": "BUY" if n % 2 else "SELL",
            "disclosed_quantity": 0,
            "trigger_price": 0,
            "is_amo": False,
        }
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        return "hft", "/v3/order/place", headers, None, body

    @classmethod
    def load_instruments(cls, symbol: str) -> list[dict[str, str]]:
        return [{"key": LOAD_KEY, "exchange": "NFO", "tradingsymbol": symbol}]

    # --- login ------------------------------------------------------------------------------
    def _client(self, client_id: str, redirect_uri: str) -> Any:
        account = self.state.accounts.get(client_id)
        if account is None or not redirect_uri or redirect_uri != account.redirect_uri:
            raise EmulatorError(
                ErrorKind.INPUT, "Check your 'client_id' and 'redirect_uri'", code="UDAPI100068"
            )
        return account

    async def login_page(self, request: web.Request) -> web.Response:
        query = request.query
        account = self._client(query.get("client_id", ""), query.get("redirect_uri", ""))
        if query.get("response_type") != "code":
            raise EmulatorError(ErrorKind.INPUT, "response_type must be code")
        fields = {
            "client_id": account.api_key,
            "redirect_uri": account.redirect_uri,
            "state": query.get("state", ""),
        }
        return consent_page(
            broker="Upstox", action=self.login_path, user_id=account.user_id, fields=fields
        )

    async def login_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        account = self._client(str(form.get("client_id", "")), str(form.get("redirect_uri", "")))
        code = self.state.issue_login_code(account, redirect_uri=account.redirect_uri)
        params = {"code": code}
        if form.get("state"):
            params["state"] = str(form["state"])
        raise web.HTTPFound(with_query(account.redirect_uri, params))

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "authorization_code":
            raise EmulatorError(ErrorKind.INPUT, "grant_type must be authorization_code")
        # The code is single-use even if this exchange fails (reference §2.1).
        grant = self.state.consume_login_code(str(form.get("code", "")))
        if grant is None:
            raise EmulatorError(ErrorKind.LOGIN, "invalid code")
        account, data = grant
        if (
            form.get("client_id") != account.api_key
            or form.get("client_secret") != account.api_secret
            or form.get("redirect_uri") != data["redirect_uri"]
        ):
            raise EmulatorError(ErrorKind.LOGIN, "invalid credentials")
        session = self.state.issue_token(account)
        return web.json_response({**self._user(session), "access_token": session.token})

    async def logout(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        self.state.revoke(session.token)
        return web.json_response({"status": "success", "data": True})

    def _user(self, session: Session) -> dict[str, Any]:
        account = session.account
        return {
            "email": account.email,
            "exchanges": ["NSE", "NFO", "BSE", "BFO"],
            "products": ["D", "I"],
            "broker": "UPSTOX",
            "user_id": account.user_id,
            "user_name": account.user_name,
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "user_type": "individual",
            "poa": False,
            "is_active": True,
        }

    async def profile(self, request: web.Request) -> web.Response:
        return ok(self._user(self.authenticate(request)))

    async def funds(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        self.state.settle_all(account)
        premium = self.state.premium_paid(account)
        equity = {
            "used_margin": number(max(premium, Decimal(0))),
            "payin_amount": 0,
            "span_margin": 0,
            "adhoc_margin": 0,
            "notional_cash": 0,
            "available_margin": number(account.cash),
            "exposure_margin": 0,
        }
        return ok({"equity": equity, "commodity": {k: 0 for k in equity}})

    # --- orders -----------------------------------------------------------------------------
    async def place_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await _json(request)
        order = await self.place(
            request, session, lambda: self.parse_order(body, request.headers.get("X-Algo-Name"))
        )
        latency = (time.time_ns() - request[ARRIVAL_NS]) // 1_000_000
        return web.json_response(
            {
                "status": "success",
                "data": {"order_ids": [order.order_id]},
                "metadata": {"latency": latency},
            }
        )

    async def place_order_v2(self, request: web.Request) -> web.Response:
        """Deprecated v2 place: no `slice`, `is_amo` not required; `data.order_id`."""
        session = self.authenticate(request)
        body = await _json(request)
        body.setdefault("is_amo", False)
        algo_name = request.headers.get("X-Algo-Name")
        order = await self.place(request, session, lambda: self.parse_order(body, algo_name))
        return ok({"order_id": order.order_id})

    async def margin(self, request: web.Request) -> web.Response:
        """`POST /v2/charges/margin`: `required_margin` and `final_margin` of the basket."""
        self.authenticate(request)
        body = await json_object(request)
        rows = body.get("instruments")
        if not isinstance(rows, list) or not rows:
            raise EmulatorError(ErrorKind.INPUT, "Invalid instruments", code="UDAPI100036")
        legs = []
        for row in rows:
            if not isinstance(row, dict):
                raise EmulatorError(ErrorKind.INPUT, "Invalid instruments", code="UDAPI100036")
            known = self.state.instrument_keys.get(str(row.get("instrument_key")))
            if known is None:
                raise EmulatorError(ErrorKind.INPUT, "Invalid instrument_key", code="UDAPI100038")
            exchange, symbol, _ = known
            side = str(row.get("transaction_type", ""))
            legs.append((exchange, symbol, side, int_or_error(row.get("quantity"), "quantity")))
        initial, final = self.state.basket_margin(legs)
        return ok(
            {
                "margins": [{"total_margin": 0} for _ in legs],
                "required_margin": number(initial),
                "final_margin": number(final),
            }
        )

    def parse_order(self, body: dict[str, Any], algo_name: str | None = None) -> OrderSpec:
        missing = [f for f in PLACE_REQUIRED if f not in body]
        if missing:
            raise EmulatorError(ErrorKind.INPUT, f"{missing[0]} is required")
        key = str(body["instrument_token"])
        known = self.state.instrument_keys.get(key)
        if known is None:
            raise EmulatorError(ErrorKind.INPUT, "Invalid instrument_token", code="UDAPI100038")
        quantity = body["quantity"]
        if not isinstance(quantity, int) or quantity <= 0:
            raise EmulatorError(ErrorKind.INPUT, "Invalid quantity")
        order_type = body["order_type"]
        if order_type not in ("MARKET", "LIMIT"):
            raise EmulatorError(ErrorKind.INPUT, "Invalid order_type")
        side = body["transaction_type"]
        if side not in ("BUY", "SELL") or body["product"] not in ("I", "D"):
            raise EmulatorError(ErrorKind.INPUT, "Invalid transaction_type or product")
        tag = str(body.get("tag") or "")
        if tag and not TAG_RE.match(tag):
            raise EmulatorError(ErrorKind.INPUT, "Invalid tag")
        price = decimal_or_error(body["price"], "price")
        if order_type == "LIMIT" and price <= 0:
            raise EmulatorError(ErrorKind.INPUT, "Invalid price")
        exchange, symbol, _ = known
        return OrderSpec(
            exchange=exchange,
            tradingsymbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            product=body["product"],
            price=price,
            # Upstox applies market price protection to every MARKET order by default.
            market_protection=Decimal(-1),
            tag=tag,
            validity=str(body["validity"]),
            instrument_token=key,
            # Registered algos name themselves in this header (broker-apis.md §2.6).
            algo_id=algo_id_checked(algo_name, "X-Algo-Name"),
        )

    async def modify_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="modify")
        body = await _json(request)
        order = self.state.find_order(session.account, str(body.get("order_id", "")))
        quantity = body.get("quantity")
        price = decimal_or_error(body["price"], "price") if body.get("price") else None
        self.state.modify(
            order,
            quantity=int(quantity) if quantity else None,
            price=price,
            max_modifications=self.max_modifications,
        )
        return self._write_ack(request, order)

    async def cancel_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="cancel")
        order = self.state.find_order(session.account, request.query.get("order_id", ""))
        self.state.cancel(order)
        return self._write_ack(request, order)

    def _write_ack(self, request: web.Request, order: Order) -> web.Response:
        latency = (time.time_ns() - request[ARRIVAL_NS]) // 1_000_000
        return web.json_response(
            {
                "status": "success",
                "data": {"order_id": order.order_id},
                "metadata": {"latency": latency},
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        return ok([self.render_order(o) for o in self.state.book(account)])

    async def order_details(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        order = self.state.find_order(account, request.query.get("order_id", ""))
        return ok(self.render_order(order))

    async def order_history(self, request: web.Request) -> web.Response:
        """By order_id: that order's statuses, oldest first; by tag alone: every status row of
        every order carrying the tag (tags are not unique)."""
        account = self.authenticate(request).account
        order_id, tag = request.query.get("order_id"), request.query.get("tag")
        if order_id:
            orders = [self.state.find_order(account, order_id)]
            if tag and orders[0].spec.tag != tag:
                raise EmulatorError(ErrorKind.NOT_FOUND, "order not found")
        elif tag:
            orders = [o for o in self.state.book(account) if o.spec.tag == tag]
        else:
            raise EmulatorError(ErrorKind.INPUT, "order_id or tag is required")
        rows: list[dict[str, Any]] = []
        for order in orders:
            for state, at, message in order.history:
                words = RECEIVED_WALK if state == OrderState.RECEIVED else (STATUS[state],)
                rows.extend(
                    self.render_order(order, status=w, at=at, message=message) for w in words
                )
        return ok(rows)

    async def positions(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        return ok([self.render_position(p) for p in self.state.positions(account)])

    async def ltp(self, request: web.Request) -> web.Response:
        """Keys of the answer are `<segment>:<trading symbol>`; `instrument_token` carries the
        key that was asked for."""
        self.authenticate(request)
        data = {}
        if "instrument_key" not in request.query:
            raise EmulatorError(ErrorKind.INPUT, "instrument_key is required")
        keys = filter(None, request.query["instrument_key"].split(","))
        for key, broker_symbol, quote in self._quotes(keys):
            data[f"{key.partition('|')[0]}:{broker_symbol}"] = {
                "last_price": number(quote.last_price),
                "instrument_token": key,
            }
        return ok(data)

    async def ltp_v3(self, request: web.Request) -> web.Response:
        """v3 LTP: up to 500 keys, answer keyed `<segment>:<trading symbol>`."""
        self.authenticate(request)
        keys = [k for k in request.query.get("instrument_key", "").split(",") if k]
        if not keys:
            raise EmulatorError(ErrorKind.INPUT, "instrument_key is required")
        if len(keys) > 500:
            raise EmulatorError(ErrorKind.INPUT, "at most 500 instrument keys per call")
        data = {}
        for key, broker_symbol, quote in self._quotes(keys):
            data[f"{key.partition('|')[0]}:{broker_symbol}"] = {
                "last_price": number(quote.last_price),
                "instrument_token": key,
                "ltq": 0,
                "volume": 0,
                "cp": number(quote.last_price),
            }
        return ok(data)

    def _quotes(self, keys: Iterable[str]) -> Iterable[tuple[str, str, Any]]:
        for key in keys:
            known = self.state.instrument_keys.get(key)
            if known is None:
                continue
            exchange, symbol, broker_symbol = known
            quote = self.state.quotes.quote(exchange, symbol)
            if quote is not None:
                yield key, broker_symbol, quote

    async def trades(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        return ok([self.render_trade(o, f) for o, f in self.state.trades(account)])

    async def order_trades(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        order = self.state.find_order(account, request.query.get("order_id", ""))
        return ok([self.render_trade(order, fill) for fill in order.fills])

    async def instruments(self, request: web.Request) -> web.StreamResponse:
        """The daily instrument file: a gzip'd JSON array (public, no token)."""
        broken = self.master_response()
        if broken is not None:
            return broken
        rows: list[dict[str, Any]] = []
        if self.state.master.mode != "empty":
            rows.extend(
                {"segment": INDEX_KEYS[i.name].partition("|")[0],
                 "instrument_key": INDEX_KEYS[i.name], "exchange_token": str(i.exchange_token),
                 "trading_symbol": i.name, "name": i.name, "instrument_type": "INDEX",
                 "exchange": i.exchange}
                for i in INDICES
            )  # fmt: skip
            rows.extend(render_instrument(c) for c in self.state.master_contracts())
        body = gzip.compress(json.dumps(rows).encode())
        return web.Response(body=body, content_type="application/gzip")

    # --- rendering --------------------------------------------------------------------------
    def render_trade(self, order: Order, fill: Fill) -> dict[str, Any]:
        spec = order.spec
        symbol = self._broker_symbol(spec.instrument_token, spec.tradingsymbol)
        return {
            "exchange": spec.exchange,
            "product": spec.product,
            "trading_symbol": symbol,
            "tradingsymbol": symbol,
            "instrument_token": spec.instrument_token,
            "order_type": spec.order_type,
            "transaction_type": spec.side,
            "quantity": fill.quantity,
            "exchange_order_id": f"1{order.order_id[-15:]}",
            "order_id": order.order_id,
            "exchange_timestamp": ist_text(fill.at),
            "average_price": number(fill.price),
            "trade_id": fill.trade_id,
            "order_ref_id": f"ref{order.order_id}",
            "order_timestamp": ist_text(order.placed_at),
        }

    def _broker_symbol(self, key: str, symbol: str) -> str:
        known = self.state.instrument_keys.get(key)
        return known[2] if known else symbol

    def render_order(
        self, order: Order, *, status: str | None = None, at: Any = None, message: str = ""
    ) -> dict[str, Any]:
        spec = order.spec
        symbol = self._broker_symbol(spec.instrument_token, spec.tradingsymbol)
        received = order.state == OrderState.RECEIVED
        return {
            "exchange": spec.exchange,
            "product": spec.product,
            "price": number(order.limit_price if spec.order_type == "LIMIT" else 0),
            "quantity": spec.quantity,
            "status": status or STATUS[order.state],
            "tag": spec.tag or None,
            "instrument_token": spec.instrument_token,
            "placed_by": order.account.user_id,
            "trading_symbol": symbol,
            "tradingsymbol": symbol,
            "order_type": spec.order_type,
            "validity": spec.validity,
            "trigger_price": 0,
            "disclosed_quantity": 0,
            "transaction_type": spec.side,
            "average_price": number(order.average_price),
            "filled_quantity": order.filled_quantity,
            "pending_quantity": order.pending_quantity,
            "status_message": (message if status else order.status_message) or None,
            "status_message_raw": (message if status else order.status_message) or None,
            "exchange_order_id": None if received else f"1{order.order_id[-15:]}",
            "parent_order_id": None,
            "order_id": order.order_id,
            "variety": "SIMPLE",
            "order_timestamp": ist_text(at or order.updated_at),
            "exchange_timestamp": None if received else ist_text(order.placed_at),
            "is_amo": False,
            "order_request_id": str(len(order.history)),
            "order_ref_id": f"ref{order.order_id}",
        }

    def render_position(self, row: PositionRow) -> dict[str, Any]:
        return {
            "exchange": row.exchange,
            "multiplier": 1,
            "value": number(row.sell_value - row.buy_value),
            "pnl": number(row.pnl),
            "product": row.product,
            "instrument_token": row.instrument_token,
            "average_price": number(row.average_price),
            "buy_value": number(row.buy_value),
            "overnight_quantity": 0,
            "day_buy_value": number(row.buy_value),
            "day_buy_price": number(row.buy_price),
            "overnight_buy_amount": 0,
            "overnight_buy_quantity": 0,
            "day_buy_quantity": row.buy_quantity,
            "day_sell_value": number(row.sell_value),
            "day_sell_price": number(row.sell_price),
            "overnight_sell_amount": 0,
            "overnight_sell_quantity": 0,
            "day_sell_quantity": row.sell_quantity,
            "quantity": row.quantity,
            "last_price": number(row.last_price),
            "unrealised": number(row.unrealised),
            "realised": number(row.realised),
            "sell_value": number(row.sell_value),
            "tradingsymbol": self._broker_symbol(row.instrument_token, row.tradingsymbol),
            "close_price": 0,
            "buy_price": number(row.buy_price),
            "sell_price": number(row.sell_price),
        }


# The instrument key the load test registers and orders.
LOAD_KEY = "NSE_FO|0"
MASTER_PATH = "/market-quote/instruments/exchange/complete.json.gz"
INDEX_KEYS = {
    "NIFTY 50": "NSE_INDEX|Nifty 50",
    "NIFTY BANK": "NSE_INDEX|Nifty Bank",
    "SENSEX": "BSE_INDEX|SENSEX",
}
FO_SEGMENTS = {"NFO": "NSE_FO", "BFO": "BSE_FO"}


def instrument_key(contract: Contract) -> str:
    return f"{FO_SEGMENTS[contract.exchange]}|{contract.exchange_token}"


def upstox_symbol(contract: Contract) -> str:
    from execution.reference.symbols import upstox_tradingsymbol

    return upstox_tradingsymbol(
        contract.underlying, contract.expiry, contract.strike, contract.option_type
    )


def render_instrument(contract: Contract) -> dict[str, Any]:
    """One row of the JSON master (reference §2.5); expiry in epoch milliseconds (end of the
    expiry day's session is not documented: midnight IST is used)."""
    expiry = datetime.combine(contract.expiry, dtime(0), tzinfo=IST)
    index_name = next(i.name for i in INDICES if i.underlying == contract.underlying)
    return {
        "segment": FO_SEGMENTS[contract.exchange],
        "name": contract.underlying,
        "exchange": contract.index_exchange,
        "expiry": int(expiry.timestamp() * 1000),
        "weekly": not contract.monthly,
        "instrument_key": instrument_key(contract),
        "exchange_token": str(contract.exchange_token),
        "trading_symbol": upstox_symbol(contract),
        # Upstox's documented example gives NIFTY's ₹0.05 tick as 5 (reference §2.5).
        "tick_size": number(contract.tick_size * 100),
        "lot_size": contract.lot_size,
        "instrument_type": contract.option_type,
        "freeze_quantity": 1800,
        "underlying_key": INDEX_KEYS[index_name],
        "underlying_type": "INDEX",
        "underlying_symbol": contract.underlying,
        "strike_price": number(contract.strike),
        "minimum_lot": contract.lot_size,
    }


def ok(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as err:
        raise EmulatorError(ErrorKind.INPUT, "Invalid JSON body") from err
    if not isinstance(body, dict):
        raise EmulatorError(ErrorKind.INPUT, "Invalid JSON body")
    return body
