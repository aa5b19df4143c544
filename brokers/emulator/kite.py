"""Zerodha Kite Connect v3 emulator (shared/reference/broker-apis.md §1, §7).

Reproduced: the login redirect with a single-use `request_token`, `POST /session/token` with
the sha256(api_key + request_token + api_secret) checksum, `token <api_key>:<access_token>`
plus `X-Kite-Version: 3` on every call, 403 TokenException after 06:00 IST or logout,
form-encoded orders on `/orders/{variety}` answering `data.order_id`, the `tag` ≤ 20 rule, the
market-protection rule (MARKET needs a non-zero `market_protection` and then rests as a LIMIT
at the protection price), order book, history oldest first, modify (25 per order) and cancel,
positions (`net`/`day`), margins, quotes, and the `{"status":"error", "error_type"}` envelope.

Assumed where the reference is silent (§6): a 429 carries `error_type` NetworkException; a
write from an unregistered IP is a 403 PermissionException whose message names the IP rule;
a missing `X-Kite-Version` header is a 400 InputException; an unknown instrument in an order
is an InputException; instrument tokens are the exchange token * 256 + a segment number (2
NFO, 4 BFO, 9 indices: the index numbers match Kite's NIFTY 50 256265 and NIFTY BANK 260105).
Served too: the trade book (`GET /trades`, `GET /orders/{id}/trades`) and the instrument dump
(`GET /instruments[/{exchange}]`, CSV with the documented columns). Varieties other than
`regular` and `amo`, and autoslice, are not emulated.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import zlib
from collections.abc import Iterable
from datetime import time as dtime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from brokers.emulator.core import (
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
    number,
    with_query,
)
from brokers.emulator.master import INDICES, Contract, IndexRow
from brokers.emulator.pricing import MarketQuote

ERROR_TYPES = {
    ErrorKind.AUTH: (403, "TokenException"),
    ErrorKind.LOGIN: (403, "TokenException"),
    ErrorKind.IP: (403, "PermissionException"),
    ErrorKind.INPUT: (400, "InputException"),
    ErrorKind.ORDER: (400, "OrderException"),
    ErrorKind.MARGIN: (400, "MarginException"),
    ErrorKind.NOT_FOUND: (404, "GeneralException"),
    ErrorKind.RATE: (429, "NetworkException"),
    ErrorKind.SERVER: (503, "NetworkException"),
}
MESSAGES = {
    ErrorKind.AUTH: "Incorrect `api_key` or `access_token`.",
    ErrorKind.RATE: "Too many requests",
}
MARKET_PROTECTION_MESSAGE = (
    "Market orders without market protection are not allowed via API. "
    "Please set market protection or use a limit order."
)
EXCHANGES = {"NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"}
PRODUCTS = {"CNC", "NRML", "MIS", "MTF"}
ORDER_TYPES = {"MARKET", "LIMIT", "SL", "SL-M"}
VARIETIES = {"regular", "amo"}
TAG_RE = re.compile(r"^[A-Za-z0-9]{1,20}$")
# The documented status walk up to the order's current state (history is oldest first).
RECEIVED_WALK = ("PUT ORDER REQ RECEIVED", "VALIDATION PENDING", "OPEN PENDING")
STATUS = {
    OrderState.RECEIVED: "OPEN PENDING",
    OrderState.OPEN: "OPEN",
    OrderState.COMPLETE: "COMPLETE",
    OrderState.CANCELLED: "CANCELLED",
    OrderState.REJECTED: "REJECTED",
}


SEGMENT_NUMBERS = {"NFO": 2, "BFO": 4}
INDEX_SEGMENT = 9
INSTRUMENT_COLUMNS = (
    "instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry",
    "strike", "tick_size", "lot_size", "instrument_type", "segment", "exchange",
)  # fmt: skip
# Set when the module's emulator builds its master: symbol → Kite instrument token.
_TOKENS: dict[str, int] = {}


def contract_token(contract: Contract) -> int:
    return contract.exchange_token * 256 + SEGMENT_NUMBERS.get(contract.exchange, 2)


def instrument_token(spec_token: str, symbol: str) -> int:
    """The contract's numeric token: the one the caller sent, the master's, else a stable id
    of the symbol (a contract the master does not list)."""
    if spec_token.isdigit():
        return int(spec_token)
    known = _TOKENS.get(symbol)
    if known is not None:
        return known
    return zlib.crc32(symbol.encode()) & 0x7FFFFFFF


class KiteEmulator(BrokerEmulator):
    name = "kite"
    token_cutoff = dtime(6, 0)
    rate_windows = ((1.0, 10), (60.0, 400), (86400.0, 5000))
    login_path = "/connect/login"
    refused_status = 502  # "OMS down": not accepted (broker-apis.md §1.3)

    def routes(self, host: str) -> Iterable[web.RouteDef]:
        return [
            web.get("/connect/login", self.login_page),
            web.post("/connect/login", self.login_submit),
            web.post("/session/token", self.session_token),
            web.delete("/session/token", self.session_logout),
            web.get("/user/profile", self.profile),
            web.get("/user/margins", self.margins),
            web.get("/user/margins/{segment}", self.margins),
            web.post("/margins/basket", self.basket_margins),
            web.post("/orders/{variety}", self.place_order),
            web.put("/orders/{variety}/{order_id}", self.modify_order),
            web.delete("/orders/{variety}/{order_id}", self.cancel_order),
            web.get("/orders", self.orders),
            web.get("/orders/{order_id}", self.order_history),
            web.get("/orders/{order_id}/trades", self.order_trades),
            web.get("/trades", self.trades),
            web.get("/instruments", self.instruments),
            web.get("/instruments/{exchange}", self.instruments),
            web.get("/portfolio/positions", self.positions),
            web.get("/quote", self.quote),
            web.get("/quote/ltp", self.quote_ltp),
        ]

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        token = contract_token(contract)
        _TOKENS[contract.kite_symbol] = token
        return [(str(token), contract.kite_symbol)]

    def index_keys(self, index: IndexRow) -> Iterable[tuple[str, str]]:
        token = index.exchange_token * 256 + INDEX_SEGMENT
        _TOKENS[index.name] = token
        return [(str(token), index.name)]

    def error_response(self, err: EmulatorError) -> web.Response:
        status, error_type = ERROR_TYPES[err.kind]
        message = MESSAGES.get(err.kind, err.message)
        return web.json_response(
            {"status": "error", "message": message, "data": None, "error_type": error_type},
            status=err.status or status,
        )

    def authenticate(self, request: web.Request) -> Session:
        if request.headers.get("X-Kite-Version") != "3":
            raise EmulatorError(ErrorKind.INPUT, "Invalid or missing `X-Kite-Version` header.")
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        api_key, _, token = credentials.partition(":")
        if scheme != "token" or not token:
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        session = self.state.session_for_token(token)
        if session.account.api_key != api_key:
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        return session

    @classmethod
    def load_request(
        cls, *, api_key: str, n: int, symbol: str
    ) -> tuple[str, str, dict[str, str], dict[str, str] | None, Any]:
        headers = {"X-Kite-Version": "3", "Authorization": f"token {api_key}:{api_key}"}
        form = {
            "tradingsymbol": symbol,
            "exchange": "NFO",
            "transaction_type": "BUY" if n % 2 else "SELL",
            "order_type": "MARKET",
            "market_protection": "-1",
            "quantity": "75",
            "product": "NRML",
            "tag": f"load{n}",
        }
        return "api", "/orders/regular", headers, form, None

    # --- login ------------------------------------------------------------------------------
    async def login_page(self, request: web.Request) -> web.Response:
        account = self.state.accounts.get(request.query.get("api_key", ""))
        if account is None or request.query.get("v") != "3":
            raise EmulatorError(ErrorKind.INPUT, "Invalid `api_key`.")
        fields = {"api_key": account.api_key}
        if "redirect_params" in request.query:
            fields["redirect_params"] = request.query["redirect_params"]
        return consent_page(
            broker="Kite", action=self.login_path, user_id=account.user_id, fields=fields
        )

    async def login_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        account = self.state.accounts.get(str(form.get("api_key", "")))
        if account is None or not account.redirect_uri:
            raise EmulatorError(ErrorKind.INPUT, "Invalid `api_key` or no redirect URL.")
        request_token = self.state.issue_login_code(account)
        params = dict(parse_qsl(str(form.get("redirect_params", ""))))
        params.update(action="login", type="login", status="success", request_token=request_token)
        raise web.HTTPFound(with_query(account.redirect_uri, params))

    async def session_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        api_key = str(form.get("api_key", ""))
        request_token = str(form.get("request_token", ""))
        checksum = str(form.get("checksum", ""))
        if not (api_key and request_token and checksum):
            raise EmulatorError(
                ErrorKind.INPUT, "Missing `api_key`, `request_token` or `checksum`."
            )
        # Single use: consumed by this attempt whatever its outcome.
        grant = self.state.consume_login_code(request_token)
        if grant is None or grant[0].api_key != api_key:
            raise EmulatorError(ErrorKind.LOGIN, "Token is invalid or has expired.")
        account = grant[0]
        expected = hashlib.sha256(
            (api_key + request_token + account.api_secret).encode()
        ).hexdigest()
        if not hmac.compare_digest(expected, checksum):
            raise EmulatorError(ErrorKind.LOGIN, "Invalid `checksum`.")
        session = self.state.issue_token(account)
        return ok(
            {
                **self._user(session),
                "access_token": session.token,
                "public_token": session.token[:16],
                "refresh_token": "",
                "enctoken": "",
                "login_time": ist_text(session.issued_at),
                "api_key": api_key,
                "avatar_url": None,
                "meta": {"demat_consent": "consent"},
            }
        )

    async def session_logout(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        session = self.state.sessions.get(token)
        if session is None or session.account.api_key != request.query.get("api_key"):
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        self.state.revoke(token)
        return ok(True)

    def _user(self, session: Session) -> dict[str, Any]:
        account = session.account
        return {
            "user_id": account.user_id,
            "user_name": account.user_name,
            "user_shortname": account.user_name.split()[0],
            "email": account.email,
            "user_type": "individual",
            "broker": "ZERODHA",
            "exchanges": ["NSE", "BSE", "NFO", "BFO"],
            "products": ["CNC", "NRML", "MIS"],
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
        }

    async def profile(self, request: web.Request) -> web.Response:
        return ok(self._user(self.authenticate(request)))

    async def basket_margins(self, request: web.Request) -> web.Response:
        """`POST /margins/basket` (JSON list of orders; `consider_positions` is accepted,
        open positions are not netted here): `initial` and `final` totals and per order."""
        self.authenticate(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, list) or not body:
            raise EmulatorError(ErrorKind.INPUT, "Invalid `orders`: a JSON list is required.")
        legs = []
        for row in body:
            if not isinstance(row, dict):
                raise EmulatorError(ErrorKind.INPUT, "Invalid order in the basket.")
            legs.append(
                (
                    str(row.get("exchange", "")),
                    str(row.get("tradingsymbol", "")),
                    str(row.get("transaction_type", "")),
                    int_or_error(row.get("quantity"), "quantity"),
                )
            )
        initial, final = self.state.basket_margin(legs)
        return ok(
            {
                "initial": {"type": "", "total": number(initial)},
                "final": {"type": "", "total": number(final)},
                "orders": [
                    {"tradingsymbol": symbol, "exchange": exchange, "total": 0}
                    for exchange, symbol, _side, _qty in legs
                ],
            }
        )

    async def margins(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        account = session.account
        self.state.settle_all(account)
        premium = self.state.premium_paid(account)
        equity: dict[str, Any] = {
            "enabled": True,
            "net": number(account.cash),
            "available": {
                "adhoc_margin": 0,
                "cash": number(account.opening_cash),
                "opening_balance": number(account.opening_cash),
                "live_balance": number(account.cash),
                "collateral": 0,
                "intraday_payin": 0,
            },
            "utilised": {
                "debits": number(max(premium, Decimal(0))),
                "exposure": 0,
                "m2m_realised": 0,
                "m2m_unrealised": 0,
                "option_premium": number(premium),
                "payout": 0,
                "span": 0,
                "holding_sales": 0,
                "turnover": 0,
                "liquid_collateral": 0,
                "stock_collateral": 0,
                "delivery": 0,
            },
        }
        commodity = {
            "enabled": False,
            "net": 0,
            "available": {k: 0 for k in equity["available"]},
            "utilised": {k: 0 for k in equity["utilised"]},
        }
        segment = request.match_info.get("segment")
        if segment == "equity":
            return ok(equity)
        if segment == "commodity":
            return ok(commodity)
        if segment is not None:
            raise EmulatorError(ErrorKind.INPUT, "Invalid segment.")
        return ok({"equity": equity, "commodity": commodity})

    # --- orders -----------------------------------------------------------------------------
    async def place_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        variety = request.match_info["variety"]
        form = await request.post()
        order = await self.place(request, session, lambda: parse_order(variety, form))
        return ok({"order_id": order.order_id})

    async def modify_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="modify")
        form = await request.post()
        order = self.state.find_order(session.account, request.match_info["order_id"])
        quantity = int_or_error(form["quantity"], "quantity") if form.get("quantity") else None
        price = decimal_or_error(form["price"], "price") if form.get("price") else None
        if form.get("order_type") in ("MARKET", "SL-M") and not form.get("market_protection"):
            raise EmulatorError(ErrorKind.INPUT, MARKET_PROTECTION_MESSAGE)
        self.state.modify(
            order, quantity=quantity, price=price, max_modifications=self.max_modifications
        )
        return ok({"order_id": order.order_id})

    async def cancel_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="cancel")
        order = self.state.find_order(session.account, request.match_info["order_id"])
        self.state.cancel(order)
        return ok({"order_id": order.order_id})

    async def orders(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        return ok([render_order(o) for o in self.state.book(session.account)])

    async def order_history(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        order = self.state.find_order(session.account, request.match_info["order_id"])
        return ok(render_history(order))

    async def trades(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        return ok([render_trade(o, f) for o, f in self.state.trades(session.account)])

    async def order_trades(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        order = self.state.find_order(session.account, request.match_info["order_id"])
        return ok([render_trade(order, fill) for fill in order.fills])

    async def instruments(self, request: web.Request) -> web.StreamResponse:
        """The day's dump as CSV (served gzip-encoded when the client accepts it, as Kite's
        is); `last_price` is 0, as the dump is built before the open."""
        self.authenticate(request)
        broken = self.master_response()
        if broken is not None:
            return broken
        exchange = request.match_info.get("exchange")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(INSTRUMENT_COLUMNS)
        if self.state.master.mode != "empty":
            for index in INDICES:
                if exchange in (None, index.exchange):
                    writer.writerow(
                        [index.exchange_token * 256 + INDEX_SEGMENT, index.exchange_token,
                         index.name, index.name, 0, "", 0, 0, 0, "EQ", "INDICES", index.exchange]
                    )  # fmt: skip
            for c in self.state.master_contracts():
                if exchange in (None, c.exchange):
                    writer.writerow(
                        [contract_token(c), c.exchange_token, c.kite_symbol, c.underlying, 0,
                         c.expiry.isoformat(), c.strike, c.tick_size, c.lot_size, c.option_type,
                         f"{c.exchange}-OPT", c.exchange]
                    )  # fmt: skip
        response = web.Response(text=out.getvalue(), content_type="text/csv")
        response.enable_compression()
        return response

    async def positions(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        rows = [render_position(p) for p in self.state.positions(session.account)]
        # Every emulated position was opened today, so the day book equals the net book.
        return ok({"net": rows, "day": rows})

    # --- quotes -----------------------------------------------------------------------------
    def _quotes(self, request: web.Request) -> dict[str, tuple[str, MarketQuote]]:
        self.authenticate(request)
        found = {}
        for key in request.query.getall("i", []):
            exchange, _, symbol = key.partition(":")
            quote = self.state.quotes.quote(exchange, symbol)
            if quote is not None:
                found[key] = (symbol, quote)
        return found

    async def quote(self, request: web.Request) -> web.Response:
        data = {}
        for key, (symbol, q) in self._quotes(request).items():
            data[key] = {
                "instrument_token": instrument_token("", symbol),
                "timestamp": ist_text(q.timestamp or self.clock()),
                "last_price": number(q.last_price),
                "depth": {
                    "buy": [{"price": number(q.bid), "quantity": 0, "orders": 0}],
                    "sell": [{"price": number(q.ask), "quantity": 0, "orders": 0}],
                },
            }
        return ok(data)

    async def quote_ltp(self, request: web.Request) -> web.Response:
        data = {
            key: {"instrument_token": instrument_token("", s), "last_price": number(q.last_price)}
            for key, (s, q) in self._quotes(request).items()
        }
        return ok(data)


def ok(data: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data})


def _required(form: Any, field: str) -> str:
    value = str(form.get(field, "")).strip()
    if not value:
        raise EmulatorError(ErrorKind.INPUT, f"Missing or empty field `{field}`.")
    return value


def _choice(form: Any, field: str, allowed: set[str]) -> str:
    value = _required(form, field)
    if value not in allowed:
        raise EmulatorError(ErrorKind.INPUT, f"Invalid `{field}`.")
    return value


def parse_order(variety: str, form: Any) -> OrderSpec:
    """Kite's documented place-order fields → OrderSpec, refusing what Kite refuses."""
    if variety not in VARIETIES:
        raise EmulatorError(ErrorKind.INPUT, "Invalid `variety`.")
    order_type = _choice(form, "order_type", ORDER_TYPES)
    if order_type not in ("MARKET", "LIMIT"):
        raise EmulatorError(ErrorKind.INPUT, "Stop-loss orders are not emulated.")
    quantity = int_or_error(_required(form, "quantity"), "quantity")
    if quantity <= 0:
        raise EmulatorError(ErrorKind.INPUT, "Invalid `quantity`.")
    tag = str(form.get("tag", ""))
    if tag and not TAG_RE.match(tag):
        raise EmulatorError(ErrorKind.INPUT, "Invalid `tag`: alphanumeric, at most 20 characters.")
    price = decimal_or_error(form.get("price") or "0", "price")
    protection = decimal_or_error(form.get("market_protection") or "0", "market_protection")
    if order_type == "LIMIT" and price <= 0:
        raise EmulatorError(ErrorKind.INPUT, "Invalid `price`.")
    if order_type == "MARKET" and protection == 0:
        # From 1-Apr-2026 (SEBI retail-algo framework): unprotected market orders are refused.
        raise EmulatorError(ErrorKind.INPUT, MARKET_PROTECTION_MESSAGE)
    if protection != -1 and not 0 <= protection <= 100:
        raise EmulatorError(ErrorKind.INPUT, "Invalid `market_protection`.")
    return OrderSpec(
        exchange=_choice(form, "exchange", EXCHANGES),
        tradingsymbol=_required(form, "tradingsymbol"),
        side=_choice(form, "transaction_type", {"BUY", "SELL"}),
        quantity=quantity,
        order_type=order_type,
        product=_choice(form, "product", PRODUCTS),
        price=price,
        market_protection=protection,
        tag=tag,
        validity=str(form.get("validity") or "DAY"),
        variety=variety,
        # Optional since mid-2026 (broker-apis.md, "Changes found in December 2026").
        algo_id=algo_id_checked(form.get("algo_id"), "algo_id"),
    )


def render_order(
    order: Order, *, status: str | None = None, at: Any = None, message: str | None = None
) -> dict[str, Any]:
    spec = order.spec
    # A protected MARKET order rests at the exchange as a LIMIT at the protection price.
    return {
        "placed_by": order.account.user_id,
        "order_id": order.order_id,
        "exchange_order_id": None
        if order.state == OrderState.RECEIVED
        else f"1{order.order_id[-15:]}",
        "parent_order_id": None,
        "status": status or STATUS[order.state],
        "status_message": message if message is not None else (order.status_message or None),
        "status_message_raw": message if message is not None else (order.status_message or None),
        "order_timestamp": ist_text(at or order.updated_at),
        "exchange_update_timestamp": ist_text(at or order.updated_at),
        "exchange_timestamp": None
        if order.state == OrderState.RECEIVED
        else ist_text(order.placed_at),
        "variety": spec.variety,
        "modified": order.modifications > 0,
        "exchange": spec.exchange,
        "tradingsymbol": spec.tradingsymbol,
        "instrument_token": instrument_token(spec.instrument_token, spec.tradingsymbol),
        "order_type": spec.order_type,
        "transaction_type": spec.side,
        "validity": spec.validity,
        "validity_ttl": 0,
        "product": spec.product,
        "quantity": spec.quantity,
        "disclosed_quantity": 0,
        "price": number(order.limit_price),
        "trigger_price": 0,
        "average_price": number(order.average_price),
        "filled_quantity": order.filled_quantity,
        "pending_quantity": order.pending_quantity,
        "cancelled_quantity": order.cancelled_quantity,
        "market_protection": number(spec.market_protection),
        "meta": {},
        "tag": spec.tag or None,
        "tags": [spec.tag] if spec.tag else [],
        "guid": f"{order.order_id}x",
    }


def render_history(order: Order) -> list[dict[str, Any]]:
    """Every status the order went through, oldest first, as `GET /orders/{id}` lists them."""
    rows: list[dict[str, Any]] = []
    for state, at, message in order.history:
        words = RECEIVED_WALK if state == OrderState.RECEIVED else (STATUS[state],)
        rows.extend(render_order(order, status=w, at=at, message=message) for w in words)
    return rows


def render_trade(order: Order, fill: Fill) -> dict[str, Any]:
    spec = order.spec
    return {
        "trade_id": fill.trade_id,
        "order_id": order.order_id,
        "exchange_order_id": f"1{order.order_id[-15:]}",
        "exchange": spec.exchange,
        "tradingsymbol": spec.tradingsymbol,
        "instrument_token": instrument_token(spec.instrument_token, spec.tradingsymbol),
        "product": spec.product,
        "average_price": number(fill.price),
        "quantity": fill.quantity,
        "transaction_type": spec.side,
        "fill_timestamp": ist_text(fill.at),
        "order_timestamp": ist_text(fill.at),
        "exchange_timestamp": ist_text(fill.at),
    }


def render_position(row: PositionRow) -> dict[str, Any]:
    return {
        "tradingsymbol": row.tradingsymbol,
        "exchange": row.exchange,
        "instrument_token": instrument_token(row.instrument_token, row.tradingsymbol),
        "product": row.product,
        "quantity": row.quantity,
        "overnight_quantity": 0,
        "multiplier": 1,
        "average_price": number(row.average_price),
        "close_price": 0,
        "last_price": number(row.last_price),
        "value": number(row.sell_value - row.buy_value),
        "pnl": number(row.pnl),
        "m2m": number(row.pnl),
        "unrealised": number(row.unrealised),
        "realised": number(row.realised),
        "buy_quantity": row.buy_quantity,
        "buy_price": number(row.buy_price),
        "buy_value": number(row.buy_value),
        "sell_quantity": row.sell_quantity,
        "sell_price": number(row.sell_price),
        "sell_value": number(row.sell_value),
        "day_buy_quantity": row.buy_quantity,
        "day_buy_price": number(row.buy_price),
        "day_buy_value": number(row.buy_value),
        "day_sell_quantity": row.sell_quantity,
        "day_sell_price": number(row.sell_price),
        "day_sell_value": number(row.sell_value),
    }
