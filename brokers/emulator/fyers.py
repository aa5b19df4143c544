"""Fyers API v3 emulator (shared/reference/broker-apis.md §4, §7).

Reproduced: `GET /api/v3/generate-authcode` (consent page, then redirect with `s=ok`,
`code=200`, a single-use `auth_code` and `state`), `POST /api/v3/validate-authcode` checking
`appIdHash` = sha256("APP_ID:APP_SECRET") (-371 otherwise), `Authorization: <APP_ID>:<token>`
on every call (-15 invalid, -8 expired), `POST /api/v3/orders/sync` with the documented fields
and type/side codes answering `{"s","code":1101,"message","id"}`, `orderTag` rules (1-30
alphanumeric, not "Untagged"), books showing `1:<tag>`, `GET /api/v3/orders` with `?id=` and
`?order_tag=1:<tag>`, statuses 1-7, PATCH modify (1101), DELETE-with-body cancel (1103),
positions, funds (`fund_limit[]`), quotes (`/data/quotes`), profile, logout, the trade book
(`/api/v3/tradebook`), the headerless symbol CSVs (`/sym_details/NSE_FO.csv`, `BSE_FO.csv`)
from the emulator's master, MARKET turned into a protected LIMIT
(since 1-Apr-2026), 10 orders/s and 200/min per account answered with HTTP 429 / -429.

Assumed where the reference is silent (§6): the token dies at midnight IST; a write from an
unregistered IP is HTTP 403 with code -99 and a message naming the static-IP rule; a 5xx
carries code -99 too. Not emulated: `code: 201` answers, slicing, the day-long block after
repeated minute breaches, refresh tokens.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
from collections.abc import Iterable
from datetime import datetime
from datetime import time as dtime
from decimal import Decimal
from typing import Any

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
    consent_page,
    decimal_or_error,
    int_or_error,
    ist,
    json_object,
    number,
    with_query,
)
from brokers.emulator.master import Contract
from execution.markettime import IST

ERRORS = {
    ErrorKind.AUTH: (401, -15),
    ErrorKind.LOGIN: (400, -371),
    ErrorKind.IP: (403, -99),
    ErrorKind.INPUT: (400, -50),
    ErrorKind.ORDER: (400, -99),
    ErrorKind.MARGIN: (400, -99),
    ErrorKind.NOT_FOUND: (400, -51),
    ErrorKind.RATE: (429, -429),
    ErrorKind.SERVER: (500, -99),
}
TOKEN_EXPIRED = -8
HASH_MESSAGE = "Please provide sha256 hash of appId and app secret"
TAG_RE = re.compile(r"^[A-Za-z0-9]{1,30}$")
TYPES = {1: "LIMIT", 2: "MARKET"}
PRODUCTS = {"CNC", "INTRADAY", "MARGIN", "CO", "BO", "MTF"}
DERIVATIVE_EXCHANGE = {"NSE": ("NFO", 10), "BSE": ("BFO", 12)}
EXCHANGE_CODE = {"NFO": 10, "BFO": 12, "NSE": 10, "BSE": 12}
FNO_SEGMENT = 11
# Fyers index tickers → the simulated market's index names.
INDICES = {
    "NSE:NIFTY50-INDEX": ("NSE", "NIFTY 50"),
    "NSE:NIFTYBANK-INDEX": ("NSE", "NIFTY BANK"),
    "NSE:FINNIFTY-INDEX": ("NSE", "NIFTY FIN SERVICE"),
    "NSE:MIDCPNIFTY-INDEX": ("NSE", "NIFTY MID SELECT"),
    "BSE:SENSEX-INDEX": ("BSE", "SENSEX"),
    "BSE:BANKEX-INDEX": ("BSE", "BANKEX"),
}
STATUS = {
    OrderState.RECEIVED: 4,  # transit
    OrderState.OPEN: 6,  # pending
    OrderState.COMPLETE: 2,  # traded
    OrderState.CANCELLED: 1,
    OrderState.REJECTED: 5,
}


def app_id_hash(app_id: str, app_secret: str) -> str:
    return hashlib.sha256(f"{app_id}:{app_secret}".encode()).hexdigest()


class FyersEmulator(BrokerEmulator):
    name = "fyers"
    token_cutoff = dtime(0, 0)
    rate_windows = ((1.0, 10), (60.0, 200))
    login_path = "/api/v3/generate-authcode"

    def routes(self, host: str) -> Iterable[web.RouteDef]:
        return [
            web.get("/api/v3/generate-authcode", self.login_page),
            web.post("/api/v3/generate-authcode", self.login_submit),
            web.post("/api/v3/validate-authcode", self.validate_authcode),
            web.post("/api/v3/orders/sync", self.place_order),
            web.patch("/api/v3/orders/sync", self.modify_order),
            web.delete("/api/v3/orders/sync", self.cancel_order),
            web.get("/api/v3/orders", self.orders),
            web.get("/api/v3/positions", self.positions),
            web.get("/api/v3/funds", self.funds),
            web.get("/data/quotes", self.quotes),
            web.get("/api/v3/profile", self.profile),
            web.get("/api/v3/tradebook", self.tradebook),
            web.post("/api/v3/logout", self.logout),
            web.get("/sym_details/{file}", self.symbol_master),
        ]

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        return [(fy_token(contract), fyers_symbol(contract))]

    def error_response(self, err: EmulatorError) -> web.Response:
        status, code = ERRORS[err.kind]
        if err.kind is ErrorKind.AUTH and "expired" in err.message:
            code = TOKEN_EXPIRED
        if err.code:
            code = int(err.code)
        return web.json_response(
            {"s": "error", "code": code, "message": err.message}, status=err.status or status
        )

    def authenticate(self, request: web.Request) -> Session:
        app_id, _, token = request.headers.get("Authorization", "").partition(":")
        if not token:
            raise EmulatorError(ErrorKind.AUTH, "Could not authenticate the user", code="-16")
        try:
            session = self.state.session_for_token(token)
        except EmulatorError as err:
            if "expired" in err.message:
                raise EmulatorError(
                    ErrorKind.AUTH, "Your token has expired. Please generate a token"
                ) from err
            raise EmulatorError(ErrorKind.AUTH, "Your token is invalid") from err
        if session.account.api_key != app_id:
            raise EmulatorError(ErrorKind.AUTH, "Your token is invalid")
        return session

    # --- login ------------------------------------------------------------------------------
    async def login_page(self, request: web.Request) -> web.Response:
        query = request.query
        account = self.state.accounts.get(query.get("client_id", ""))
        if account is None or query.get("response_type") != "code":
            raise EmulatorError(ErrorKind.INPUT, "Invalid app id", code="-352")
        if account.redirect_uri and query.get("redirect_uri") != account.redirect_uri:
            raise EmulatorError(ErrorKind.INPUT, "Redirect URL mismatch")
        return consent_page(
            broker="Fyers",
            action=self.login_path,
            user_id=account.user_id,
            fields={
                "client_id": account.api_key,
                "redirect_uri": query.get("redirect_uri", account.redirect_uri),
                "state": query.get("state", ""),
            },
        )

    async def login_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        account = self.state.accounts.get(str(form.get("client_id", "")))
        redirect = str(form.get("redirect_uri", ""))
        if account is None or not redirect:
            raise EmulatorError(ErrorKind.INPUT, "Invalid app id", code="-352")
        auth_code = self.state.issue_login_code(account)
        params = {"s": "ok", "code": "200", "auth_code": auth_code, "state": form.get("state")}
        raise web.HTTPFound(with_query(redirect, {k: str(v) for k, v in params.items()}))

    async def validate_authcode(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        if body.get("grant_type") != "authorization_code" or not body.get("code"):
            raise EmulatorError(ErrorKind.INPUT, "Invalid grant type or code")
        grant = self.state.consume_login_code(str(body["code"]))  # single use
        if grant is None:
            raise EmulatorError(ErrorKind.LOGIN, "Could not authenticate the auth code", code="-16")
        account = grant[0]
        expected = app_id_hash(account.api_key, account.api_secret)
        if not hmac.compare_digest(expected, str(body.get("appIdHash", ""))):
            raise EmulatorError(ErrorKind.LOGIN, HASH_MESSAGE)
        session = self.state.issue_token(account)
        return web.json_response(
            {
                "s": "ok",
                "code": 200,
                "message": "",
                "access_token": session.token,
                "refresh_token": hashlib.sha256(session.token.encode()).hexdigest(),
            }
        )

    # --- orders -----------------------------------------------------------------------------
    async def place_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await json_object(request)
        order = await self.place(
            request, session, lambda: parse_order(body, session, self.state.contract_by_symbol)
        )
        return web.json_response(
            {
                "s": "ok",
                "code": 1101,
                "message": "Order submitted successfully. Your Order Ref. No." + order.order_id,
                "id": order.order_id,
            }
        )

    async def modify_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="modify")
        body = await json_object(request)
        order = self.state.find_order(session.account, str(body.get("id", "")))
        if "type" not in body:
            raise EmulatorError(ErrorKind.INPUT, "Missing order type")
        quantity = int_or_error(body["qty"], "qty") if body.get("qty") else None
        price = (
            decimal_or_error(body["limitPrice"], "limitPrice") if body.get("limitPrice") else None
        )
        self.state.modify(
            order, quantity=quantity, price=price, max_modifications=self.max_modifications
        )
        return web.json_response(
            {
                "s": "ok",
                "code": 1101,
                "message": "Successfully modified order",
                "id": order.order_id,
            }
        )

    async def cancel_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="cancel")
        body = await json_object(request)
        order = self.state.find_order(session.account, str(body.get("id", "")))
        self.state.cancel(order)
        return web.json_response(
            {
                "s": "ok",
                "code": 1103,
                "message": "Successfully cancelled order",
                "id": order.order_id,
            }
        )

    async def orders(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        orders = self.state.book(session.account)
        if "id" in request.query:
            orders = [o for o in orders if o.order_id == request.query["id"]]
        if "order_tag" in request.query:
            orders = [o for o in orders if _book_tag(o) == request.query["order_tag"]]
        return web.json_response(
            {"s": "ok", "code": 200, "message": "", "orderBook": [render_order(o) for o in orders]}
        )

    async def positions(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        rows = [render_position(p) for p in self.state.positions(session.account)]
        realised = sum((p.realised for p in self.state.positions(session.account)), Decimal(0))
        unrealised = sum((p.unrealised for p in self.state.positions(session.account)), Decimal(0))
        overall = {
            "count_total": len(rows),
            "count_open": sum(1 for r in rows if r["netQty"]),
            "pl_total": number(realised + unrealised),
            "pl_realized": number(realised),
            "pl_unrealized": number(unrealised),
        }
        return web.json_response(
            {"s": "ok", "code": 200, "message": "", "netPositions": rows, "overall": overall}
        )

    async def funds(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        account = session.account
        self.state.settle_all(account)
        used = max(self.state.premium_paid(account), Decimal(0))
        amounts = {
            1: ("Total Balance", account.opening_cash),
            2: ("Utilized Amount", used),
            3: ("Clear Balance", account.cash),
            4: ("Realized Profit and Loss", Decimal(0)),
            5: ("Collaterals", Decimal(0)),
            6: ("Fund Transfer", Decimal(0)),
            7: ("Receivables", Decimal(0)),
            8: ("Adhoc Limit", Decimal(0)),
            9: ("Limit at start of the day", account.opening_cash),
            10: ("Available Balance", account.cash),
        }
        rows = [
            {"id": i, "title": title, "equityAmount": number(v), "commodityAmount": 0}
            for i, (title, v) in amounts.items()
        ]
        return web.json_response({"s": "ok", "code": 200, "message": "", "fund_limit": rows})

    async def profile(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        data = {
            "fy_id": account.user_id, "name": account.user_name, "display_name": None,
            "email_id": account.email, "mobile_number": "", "PAN": "", "image": None,
            "pin_change_date": "", "pwd_change_date": None, "pwd_to_expire": 90,
            "ddpi_enabled": False, "mtf_enabled": False, "totp": True,
        }  # fmt: skip
        return web.json_response({"s": "ok", "code": 200, "message": "", "data": data})

    async def logout(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        self.state.revoke(session.token)
        return web.json_response({"s": "ok", "code": 200, "message": "User logged out"})

    async def tradebook(self, request: web.Request) -> web.Response:
        """The day's fills; `?order_tag=1:<tag>` filters like the order book. Fyers has no
        per-order trade call: a client filters by `orderNumber`."""
        session = self.authenticate(request)
        rows = [render_trade(o, f) for o, f in self.state.trades(session.account)]
        if "order_tag" in request.query:
            rows = [r for r in rows if r["orderTag"] == request.query["order_tag"]]
        return web.json_response({"s": "ok", "code": 200, "message": "", "tradeBook": rows})

    async def symbol_master(self, request: web.Request) -> web.StreamResponse:
        """The headerless symbol CSV of one exchange segment (NSE_FO.csv, BSE_FO.csv)."""
        wanted = {"NSE_FO.csv": "NFO", "BSE_FO.csv": "BFO"}.get(request.match_info["file"])
        if wanted is None:
            return web.Response(status=404, text="Not Found")
        broken = self.master_response()
        if broken is not None:
            return broken
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if self.state.master.mode != "empty":
            for contract in self.state.master_contracts():
                if contract.exchange == wanted:
                    writer.writerow(symbol_row(contract, self.clock()))
        return web.Response(text=out.getvalue(), content_type="text/csv")

    async def quotes(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        rows = []
        for name in filter(None, request.query.get("symbols", "").split(",")):
            exchange, symbol = market_name(name)
            quote = self.state.quotes.quote(exchange, symbol)
            if quote is None:
                rows.append({"n": name, "s": "error", "v": {"errmsg": "invalid symbol"}})
                continue
            rows.append(
                {
                    "n": name,
                    "s": "ok",
                    "v": {
                        "symbol": name,
                        "lp": number(quote.last_price),
                        "bid": number(quote.bid),
                        "ask": number(quote.ask),
                        "spread": number(quote.ask - quote.bid),
                        "tt": int((quote.timestamp or self.clock()).timestamp()),
                    },
                }
            )
        return web.json_response({"s": "ok", "code": 200, "message": "", "d": rows})


def fy_token(contract: Contract) -> str:
    """Exchange code, segment code and the exchange token (an emulator convention with the
    shape of Fyers' 14-digit tokens)."""
    return f"{EXCHANGE_CODE[contract.exchange]}{FNO_SEGMENT}{contract.exchange_token:010d}"


def fyers_symbol(contract: Contract) -> str:
    return f"{contract.index_exchange}:{contract.kite_symbol}"


UNDERLYING_TICKERS = {"NIFTY": "NIFTY50", "BANKNIFTY": "NIFTYBANK", "SENSEX": "SENSEX"}


def symbol_row(contract: Contract, now: datetime) -> list[Any]:
    """One row of Fyers' headerless symbol CSV (reference §4.5), 21 columns."""
    from execution.reference.symbols import strike_text

    expiry = datetime.combine(contract.expiry, dtime(15, 30), tzinfo=IST)
    strike = strike_text(contract.strike)
    details = (
        f"{contract.underlying} {contract.expiry:%y %b %d} {strike} {contract.option_type}"
    ).upper()
    return [
        fy_token(contract), details, 14, contract.lot_size, number(contract.tick_size), "",
        "0915-1530|1815-1915:", now.astimezone(IST).strftime("%Y-%m-%d"),
        int(expiry.timestamp()), fyers_symbol(contract), EXCHANGE_CODE[contract.exchange],
        FNO_SEGMENT, contract.exchange_token, contract.underlying,
        UNDERLYING_TICKERS.get(contract.underlying, contract.underlying), number(contract.strike),
        contract.option_type, "", "None", "0", "0.0",
    ]  # fmt: skip


def render_trade(order: Order, fill: Fill) -> dict[str, Any]:
    spec = order.spec
    return {
        "clientId": order.account.user_id,
        "orderDateTime": ist(fill.at).strftime("%d-%b-%Y %H:%M:%S"),
        "orderNumber": order.order_id,
        "exchangeOrderNo": f"1{order.order_id[-15:]}",
        "exchange": EXCHANGE_CODE.get(spec.exchange, 10),
        "side": 1 if spec.side == "BUY" else -1,
        "segment": FNO_SEGMENT,
        "orderType": spec.extra.get("type", 1),
        "fyToken": spec.instrument_token,
        "productType": spec.product,
        "tradedQty": fill.quantity,
        "tradePrice": number(fill.price),
        "tradeValue": number(fill.price * fill.quantity),
        "tradeNumber": fill.trade_id,
        "row": 0,
        "symbol": spec.extra.get("symbol", spec.tradingsymbol),
        "orderTag": f"1:{spec.tag}" if spec.tag else "1:Untagged",
    }


def market_name(name: str) -> tuple[str, str]:
    """A Fyers ticker → (exchange, symbol) as the simulated market names it. Fyers option
    symbols after the prefix coincide with Kite's, the emulators' canonical names."""
    if name in INDICES:
        return INDICES[name]
    prefix, _, symbol = name.partition(":")
    exchange = DERIVATIVE_EXCHANGE.get(prefix, ("", 0))[0]
    return exchange, symbol


def parse_order(
    body: dict[str, Any], session: Session, listed: dict[str, Contract] | None = None
) -> OrderSpec:
    """Fyers' documented place-order fields → OrderSpec, refusing what Fyers refuses."""
    for field in ("symbol", "qty", "type", "side", "productType"):
        if field not in body:
            raise EmulatorError(ErrorKind.INPUT, f"Missing {field}")
    symbol = str(body["symbol"])
    exchange, canonical = market_name(symbol)
    if not exchange:
        raise EmulatorError(ErrorKind.INPUT, "Invalid symbol", code="-300")
    order_type = TYPES.get(int_or_error(body["type"], "type"))
    if order_type is None:
        raise EmulatorError(ErrorKind.INPUT, "Stop orders are not emulated")
    side = {1: "BUY", -1: "SELL"}.get(int_or_error(body["side"], "side"))
    if side is None:
        raise EmulatorError(ErrorKind.INPUT, "Invalid side")
    quantity = int_or_error(body["qty"], "qty")
    if quantity <= 0:
        raise EmulatorError(ErrorKind.INPUT, "Invalid quantity", code="-310")
    product = str(body["productType"])
    if product not in PRODUCTS:
        raise EmulatorError(ErrorKind.INPUT, "Invalid product type", code="-314")
    tag = str(body.get("orderTag") or "")
    if tag and (
        not TAG_RE.match(tag) or tag.lower() == "untagged" or tag == session.account.user_id
    ):
        raise EmulatorError(ErrorKind.INPUT, "Invalid order tag")
    if tag and product in ("CO", "BO"):
        raise EmulatorError(ErrorKind.INPUT, "Order tag is not allowed for CO/BO orders")
    price = decimal_or_error(body.get("limitPrice") or 0, "limitPrice")
    if order_type == "LIMIT" and price <= 0:
        raise EmulatorError(ErrorKind.INPUT, "Invalid limit price")
    contract = (listed or {}).get(canonical)
    token = fy_token(contract) if contract else ""
    # Since 1-Apr-2026 Fyers turns MARKET into a protected LIMIT (the core prices it).
    return OrderSpec(
        exchange=exchange,
        tradingsymbol=canonical,
        side=side,
        quantity=quantity,
        order_type=order_type,
        product=product,
        price=price if order_type == "LIMIT" else Decimal(0),
        tag=tag,
        validity=str(body.get("validity") or "DAY"),
        instrument_token=token,
        extra={"symbol": symbol, "type": int(body["type"])},
    )


def _book_tag(order: Order) -> str:
    return f"1:{order.spec.tag}" if order.spec.tag else "2:Untagged"


def render_order(order: Order) -> dict[str, Any]:
    spec = order.spec
    exchange = EXCHANGE_CODE.get(spec.exchange, 10)
    return {
        "id": order.order_id,
        "exchOrdId": "" if order.state == OrderState.RECEIVED else f"1{order.order_id[-15:]}",
        "id_fyers": order.order_id,
        "symbol": spec.extra.get("symbol", spec.tradingsymbol),
        "qty": spec.quantity,
        "remainingQuantity": order.pending_quantity,
        "filledQty": order.filled_quantity,
        "status": STATUS[order.state],
        "message": order.status_message,
        "segment": FNO_SEGMENT,
        "limitPrice": number(order.limit_price),
        "stopPrice": 0,
        "productType": spec.product,
        "type": spec.extra.get("type", 1),
        "side": 1 if spec.side == "BUY" else -1,
        "orderValidity": spec.validity,
        "orderDateTime": ist(order.placed_at).strftime("%d-%b-%Y %H:%M:%S"),
        "tradedPrice": number(order.average_price),
        "orderTag": _book_tag(order),
        "fyToken": spec.instrument_token,
        "exchange": exchange,
        "instrument": 14,  # OPTIDX
        "offlineOrder": False,
        "orderNumStatus": f"{order.order_id}:{STATUS[order.state]}",
    }


def render_position(row: PositionRow) -> dict[str, Any]:
    prefix = "NSE" if row.exchange == "NFO" else "BSE"
    symbol = f"{prefix}:{row.tradingsymbol}"
    side = 1 if row.quantity > 0 else -1 if row.quantity < 0 else 0
    return {
        "symbol": symbol,
        "id": f"{symbol}-{row.product}",
        "netQty": row.quantity,
        "qty": abs(row.quantity),
        "side": side,
        "netAvg": number(row.average_price),
        "buyQty": row.buy_quantity,
        "buyAvg": number(row.buy_price),
        "buyVal": number(row.buy_value),
        "sellQty": row.sell_quantity,
        "sellAvg": number(row.sell_price),
        "sellVal": number(row.sell_value),
        "realized_profit": number(row.realised),
        "unrealized_profit": number(row.unrealised),
        "pl": number(row.pnl),
        "ltp": number(row.last_price),
        "productType": row.product,
        "cfBuyQty": 0,
        "cfSellQty": 0,
        "dayBuyQty": row.buy_quantity,
        "daySellQty": row.sell_quantity,
        "segment": FNO_SEGMENT,
        "exchange": EXCHANGE_CODE.get(row.exchange, 10),
        "fyToken": row.instrument_token,
    }
