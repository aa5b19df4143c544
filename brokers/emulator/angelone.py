"""Angel One SmartAPI emulator (shared/reference/broker-apis.md §3, §7).

Reproduced: `loginByPassword` (client code, PIN and TOTP, with the `X-*` headers required),
`generateTokens` (refresh re-mints all three tokens), the publisher-login redirect
(`auth_token`, `feed_token`, `refresh_token`, `state`), `Authorization: Bearer <jwt>` plus
`X-PrivateKey` on every call, the gateway envelope `AG8001` for a bad or expired token,
string-valued `placeOrder` answering `data.orderid` + `uniqueorderid`, `ordertag` > 20 →
`AB4008` (HTTP 200, `status: false`), the order book with `data: null` when empty, details only
by `uniqueorderid` (the numeric id → `AB1007`), POST modify and cancel, `getPosition`,
`getRMS`, `getProfile`, `logout`, `getLtpData`, the trade book (`getTradeBook`, `null`
when empty), the market quote (`fetched`/`unfetched`; with or without the trailing slash the
docs show, as smartapi-python omits it), the scrip master JSON from the emulator's master,
plain-text rate-limit answers, and the 1-Apr-2026 rule: MARKET and IOC orders from algos are
refused.

Assumed where the reference is silent (§6): tokens die at midnight IST; 10 orders/s (the
exchange threshold), 500/min, 1000/h; `AG8001` comes with HTTP 401; a write from an
unregistered IP is HTTP 403 with the app envelope naming the static-IP rule; `AB1050` for a
wrong TOTP (third-party observation). Codes the reference does not give are left empty rather
than invented.

Contracts are registered through the core's instrument table (`EmulatorHandle.
add_instruments`: key = symboltoken, exchange = Angel's `exch_seg`, the Kite-style name the
simulated market prices, and Angel's own trading symbol): orders must name a registered
`symboltoken` with its `tradingsymbol`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
import uuid
from collections.abc import Iterable
from datetime import time as dtime
from decimal import Decimal
from typing import Any

from aiohttp import web

from brokers.base import next_ist_cutoff
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
from brokers.emulator.master import Contract, IndexRow
from brokers.emulator.otp import totp_valid

PREFIX = "/rest/secure/angelbroking"
LOGIN_PATH = "/rest/auth/angelbroking/user/v1/loginByPassword"
STATUS = {
    OrderState.RECEIVED: "open pending",
    OrderState.OPEN: "open",
    OrderState.COMPLETE: "complete",
    OrderState.CANCELLED: "cancelled",
    OrderState.REJECTED: "rejected",
}
PRODUCTS = {"DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO"}
TAG_MAX = 20
RATE_TEXT = "Access denied because of exceeding access rate"
REQUIRED_HEADERS = ("X-PrivateKey", "X-UserType", "X-SourceID")


@dataclasses.dataclass(frozen=True)
class Instrument:
    token: str
    exch_seg: str  # NFO, BFO, NSE, BSE
    canonical: str  # the emulators' name for the quote source
    symbol: str  # Angel's trading symbol, e.g. NIFTY26JUN2524000CE

    @property
    def exchange(self) -> str:
        return self.exch_seg


class AngelOneEmulator(BrokerEmulator):
    name = "angelone"
    token_cutoff = dtime(0, 0)
    rate_windows = ((1.0, 10), (60.0, 500), (3600.0, 1000))
    login_path = "/publisher-login"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refresh_tokens: dict[str, Session] = {}

    def instrument(self, token: str) -> Instrument | None:
        known = self.state.instrument_keys.get(token)
        return Instrument(token, *known) if known else None

    def routes(self, host: str) -> Iterable[web.RouteDef]:
        return [
            web.post(LOGIN_PATH, self.login_by_password),
            web.post("/rest/auth/angelbroking/jwt/v1/generateTokens", self.generate_tokens),
            web.get("/publisher-login", self.login_page),
            web.post("/publisher-login", self.login_submit),
            web.post(f"{PREFIX}/order/v1/placeOrder", self.place_order),
            web.post(f"{PREFIX}/order/v1/modifyOrder", self.modify_order),
            web.post(f"{PREFIX}/order/v1/cancelOrder", self.cancel_order),
            web.get(f"{PREFIX}/order/v1/getOrderBook", self.order_book),
            web.get(f"{PREFIX}/order/v1/details/{{unique_id}}", self.order_details),
            web.get(f"{PREFIX}/order/v1/getPosition", self.positions),
            web.get(f"{PREFIX}/user/v1/getRMS", self.rms),
            web.post(f"{PREFIX}/market/v1/quote/", self.quote),
            # The docs' URL ends in a slash; smartapi-python posts without it.
            web.post(f"{PREFIX}/market/v1/quote", self.quote),
            web.post(f"{PREFIX}/order/v1/getLtpData", self.ltp_data),
            web.get(f"{PREFIX}/order/v1/getTradeBook", self.trade_book),
            web.get(f"{PREFIX}/user/v1/getProfile", self.profile),
            web.post(f"{PREFIX}/user/v1/logout", self.logout),
            web.get("/OpenAPI_File/files/OpenAPIScripMaster.json", self.scrip_master),
        ]

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        return [(str(contract.exchange_token), angel_symbol(contract))]

    def index_keys(self, index: IndexRow) -> Iterable[tuple[str, str]]:
        token, symbol, _name = INDEX_ROWS[index.name]
        return [(token, symbol)]

    def error_response(self, err: EmulatorError) -> web.Response:
        if err.kind is ErrorKind.RATE:
            return web.Response(text=RATE_TEXT, status=err.status or 429)
        if err.kind is ErrorKind.AUTH:
            body = {"success": False, "message": "Invalid Token", "errorCode": "AG8001", "data": ""}
            return web.json_response(body, status=err.status or 401)
        code = err.code or ("AB1007" if err.kind is ErrorKind.NOT_FOUND else "")
        status = {ErrorKind.IP: 403, ErrorKind.SERVER: 503}.get(err.kind, 200)
        return web.json_response(
            {"status": False, "message": err.message, "errorcode": code, "data": None},
            status=err.status or status,
        )

    def _check_headers(self, request: web.Request) -> None:
        missing = [h for h in REQUIRED_HEADERS if not request.headers.get(h)]
        if missing:
            raise EmulatorError(ErrorKind.INPUT, f"Missing header {missing[0]}")

    def authenticate(self, request: web.Request) -> Session:
        self._check_headers(request)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or not token:
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        session = self.state.session_for_token(token)
        if session.account.api_key != request.headers.get("X-PrivateKey"):
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        return session

    # --- login ------------------------------------------------------------------------------
    def _mint(self, account: Any) -> tuple[Session, str, str]:
        """A JWT-shaped token whose `exp` is the daily cut-off, a refresh and a feed token."""
        expires = next_ist_cutoff(self.clock(), self.token_cutoff)
        claims = {"username": account.client_id, "exp": int(expires.timestamp())}
        header, payload = (
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"alg": "HS512", "typ": "JWT"}, claims)
        )
        token = f"{header}.{payload}.{secrets.token_urlsafe(16)}"
        session = self.state.issue_token(account, token=token)
        refresh = secrets.token_urlsafe(24)
        self.refresh_tokens[refresh] = session
        return session, refresh, secrets.token_urlsafe(12)

    def _tokens(self, account: Any) -> web.Response:
        session, refresh, feed = self._mint(account)
        data = {"jwtToken": session.token, "refreshToken": refresh, "feedToken": feed}
        return ok(data)

    async def login_by_password(self, request: web.Request) -> web.Response:
        self._check_headers(request)
        body = await json_object(request)
        account = self.state.accounts.get(request.headers["X-PrivateKey"])
        if account is None:
            raise EmulatorError(ErrorKind.LOGIN, "Invalid API Key")
        if body.get("clientcode") != account.client_id or body.get("password") != account.extra.get(
            "pin"
        ):
            raise EmulatorError(ErrorKind.LOGIN, "Invalid clientcode or PIN")
        if not totp_valid(
            account.extra.get("totp_secret", ""), str(body.get("totp")), self.clock()
        ):
            raise EmulatorError(ErrorKind.LOGIN, "Invalid totp", code="AB1050")
        return self._tokens(account)

    async def generate_tokens(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await json_object(request)
        previous = self.refresh_tokens.pop(str(body.get("refreshToken", "")), None)
        if previous is None or previous.account is not session.account:
            raise EmulatorError(ErrorKind.LOGIN, "Invalid refresh token")
        return self._tokens(session.account)

    async def login_page(self, request: web.Request) -> web.Response:
        account = self.state.accounts.get(request.query.get("api_key", ""))
        if account is None:
            raise EmulatorError(ErrorKind.INPUT, "Invalid API Key")
        return consent_page(
            broker="Angel One",
            action=self.login_path,
            user_id=account.client_id,
            fields={"api_key": account.api_key, "state": request.query.get("state", "")},
        )

    async def login_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        account = self.state.accounts.get(str(form.get("api_key", "")))
        if account is None or not account.redirect_uri:
            raise EmulatorError(ErrorKind.INPUT, "Invalid API Key or no redirect URL")
        session, refresh, feed = self._mint(account)
        params = {
            "auth_token": session.token,
            "feed_token": feed,
            "refresh_token": refresh,
            "state": str(form.get("state", "")),
        }
        raise web.HTTPFound(with_query(account.redirect_uri, params))

    # --- orders -----------------------------------------------------------------------------
    async def place_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await json_object(request)
        order = await self.place(request, session, lambda: self.parse_order(body))
        extra = order.spec.extra
        return ok(
            {
                "script": extra["symbol"],
                "orderid": order.order_id,
                "uniqueorderid": extra["uniqueorderid"],
            }
        )

    def parse_order(self, body: dict[str, Any]) -> OrderSpec:
        """SmartAPI's documented placeOrder fields → OrderSpec, refusing what Angel refuses."""
        for field in (
            "variety", "tradingsymbol", "symboltoken", "transactiontype", "exchange",
            "ordertype", "producttype", "duration", "quantity",
        ):  # fmt: skip
            if not str(body.get(field) or "").strip():
                raise EmulatorError(ErrorKind.INPUT, f"Invalid {field}")
        tag = str(body.get("ordertag") or "")
        if len(tag) > TAG_MAX:
            raise EmulatorError(
                ErrorKind.INPUT, "Ordertag length should not exceed 20 characters", code="AB4008"
            )
        instrument = self.instrument(str(body["symboltoken"]))
        if (
            instrument is None
            or instrument.symbol != body["tradingsymbol"]
            or instrument.exch_seg != body["exchange"]
        ):
            raise EmulatorError(ErrorKind.INPUT, "Invalid symboltoken or tradingsymbol")
        order_type = str(body["ordertype"])
        # Angel One, from 1-Apr-2026: no market or IOC orders from algos.
        if order_type == "MARKET" or body["duration"] == "IOC":
            raise EmulatorError(
                ErrorKind.ORDER, "Market and IOC orders are not allowed for API (algo) orders"
            )
        if order_type != "LIMIT":
            raise EmulatorError(ErrorKind.INPUT, "Stop-loss orders are not emulated")
        if body["variety"] != "NORMAL" or body["producttype"] not in PRODUCTS:
            raise EmulatorError(ErrorKind.INPUT, "Invalid variety or producttype")
        if body["transactiontype"] not in ("BUY", "SELL"):
            raise EmulatorError(ErrorKind.INPUT, "Invalid transactiontype")
        quantity = int_or_error(body["quantity"], "quantity")
        price = decimal_or_error(body.get("price") or 0, "price")
        if quantity <= 0 or price <= 0:
            raise EmulatorError(ErrorKind.INPUT, "Invalid quantity or price")
        return OrderSpec(
            exchange=instrument.exchange,
            tradingsymbol=instrument.canonical,
            side=str(body["transactiontype"]),
            quantity=quantity,
            order_type=order_type,
            product=str(body["producttype"]),
            price=price,
            tag=tag,
            validity=str(body["duration"]),
            variety="NORMAL",
            instrument_token=instrument.token,
            # Minted with the order so that even a lost answer leaves it in the book.
            extra={"symbol": instrument.symbol, "uniqueorderid": str(uuid.uuid4())},
        )

    def _order_by_id(self, session: Session, order_id: str) -> Order:
        return self.state.find_order(session.account, order_id)

    async def modify_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="modify")
        body = await json_object(request)
        order = self._order_by_id(session, str(body.get("orderid", "")))
        quantity = int_or_error(body["quantity"], "quantity") if body.get("quantity") else None
        price = decimal_or_error(body["price"], "price") if body.get("price") else None
        self.state.modify(
            order, quantity=quantity, price=price, max_modifications=self.max_modifications
        )
        return ok({"orderid": order.order_id, "uniqueorderid": order.spec.extra["uniqueorderid"]})

    async def cancel_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="cancel")
        body = await json_object(request)
        order = self._order_by_id(session, str(body.get("orderid", "")))
        self.state.cancel(order)
        return ok({"orderid": order.order_id, "uniqueorderid": order.spec.extra["uniqueorderid"]})

    async def order_book(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        rows = [render_order(o) for o in self.state.book(session.account)]
        return ok(rows or None)  # an empty book is `null`

    async def order_details(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        wanted = request.match_info["unique_id"]
        for order in session.account.orders.values():
            if order.spec.extra.get("uniqueorderid") == wanted:
                return ok(render_order(self.state.settle(order)))
        raise EmulatorError(ErrorKind.NOT_FOUND, "Order not found")

    # --- portfolio and data -----------------------------------------------------------------
    async def positions(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        rows = [self.render_position(p) for p in self.state.positions(session.account)]
        return ok(rows or None)

    def render_position(self, row: PositionRow) -> dict[str, Any]:
        instrument = self.instrument(row.instrument_token)
        return {
            "exchange": row.exchange,
            "symboltoken": row.instrument_token,
            "producttype": row.product,
            "tradingsymbol": instrument.symbol if instrument else row.tradingsymbol,
            "buyqty": str(row.buy_quantity),
            "sellqty": str(row.sell_quantity),
            "buyamount": _text(row.buy_value),
            "sellamount": _text(row.sell_value),
            "buyavgprice": _text(row.buy_price),
            "sellavgprice": _text(row.sell_price),
            "avgnetprice": _text(row.average_price),
            "netvalue": _text(row.sell_value - row.buy_value),
            "netqty": str(row.quantity),
            "ltp": _text(row.last_price),
            "pnl": _text(row.pnl),
            "realised": _text(row.realised),
            "unrealised": _text(row.unrealised),
        }

    async def rms(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        self.state.settle_all(account)
        used = max(self.state.premium_paid(account), Decimal(0))
        return ok(
            {
                "net": _text(account.cash),
                "availablecash": _text(account.cash),
                "availableintradaypayin": "0.00",
                "availablelimitmargin": "0.00",
                "collateral": "0.00",
                "m2munrealized": "0.00",
                "m2mrealized": "0.00",
                "utiliseddebits": _text(used),
                "utilisedspan": "0.00",
                "utilisedoptionpremium": _text(used),
                "utilisedholdingsales": "0.00",
                "utilisedexposure": "0.00",
                "utilisedturnover": "0.00",
                "utilisedpayout": "0.00",
            }
        )

    async def quote(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        body = await json_object(request)
        if body.get("mode") not in ("LTP", "OHLC", "FULL"):
            raise EmulatorError(ErrorKind.INPUT, "Invalid mode")
        fetched, unfetched = [], []
        for exchange, tokens in (body.get("exchangeTokens") or {}).items():
            for token in tokens:
                instrument = self.instrument(str(token))
                quote = (
                    self.state.quotes.quote(instrument.exchange, instrument.canonical)
                    if instrument and instrument.exch_seg == exchange
                    else None
                )
                if instrument is None or quote is None:
                    unfetched.append(
                        {"exchange": exchange, "symbolToken": str(token), "message": "",
                         "errorCode": ""}
                    )  # fmt: skip
                    continue
                row: dict[str, Any] = {
                    "exchange": exchange,
                    "tradingSymbol": instrument.symbol,
                    "symbolToken": instrument.token,
                    "ltp": number(quote.last_price),
                }
                if body["mode"] == "FULL":
                    row["exchFeedTime"] = ist(quote.timestamp or self.clock()).strftime(
                        "%d-%b-%Y %H:%M:%S"
                    )
                    row["depth"] = {
                        "buy": [{"price": number(quote.bid), "quantity": 0, "orders": 0}],
                        "sell": [{"price": number(quote.ask), "quantity": 0, "orders": 0}],
                    }
                fetched.append(row)
        return ok({"fetched": fetched, "unfetched": unfetched})

    async def profile(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        return ok(
            {
                "clientcode": account.client_id,
                "name": account.user_name,
                "email": account.email,
                "mobileno": "",
                "exchanges": ["NSE", "BSE", "NFO", "BFO"],
                "products": sorted(PRODUCTS),
                "lastlogintime": "",
                "brokerid": "B2C",
            }
        )

    async def logout(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await json_object(request)
        if body.get("clientcode") != session.account.client_id:
            raise EmulatorError(ErrorKind.INPUT, "Invalid clientcode")
        self.state.revoke(session.token)
        return ok("Logout Successfully")

    async def ltp_data(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        body = await json_object(request)
        instrument = self.instrument(str(body.get("symboltoken", "")))
        quote = (
            self.state.quotes.quote(instrument.exchange, instrument.canonical)
            if instrument and instrument.exch_seg == body.get("exchange")
            else None
        )
        if instrument is None or quote is None:
            raise EmulatorError(ErrorKind.INPUT, "Invalid symboltoken", code="AB1018")
        ltp = number(quote.last_price)
        return ok(
            {"exchange": instrument.exch_seg, "tradingsymbol": instrument.symbol,
             "symboltoken": instrument.token, "open": ltp, "high": ltp, "low": ltp,
             "close": ltp, "ltp": ltp}
        )  # fmt: skip

    async def trade_book(self, request: web.Request) -> web.Response:
        """Every fill of the day; `null` when there is none, like the order book. Angel has
        no per-order trade call: a client filters this by `orderid`."""
        session = self.authenticate(request)
        rows = [self.render_trade(o, f) for o, f in self.state.trades(session.account)]
        return ok(rows or None)

    def render_trade(self, order: Order, fill: Fill) -> dict[str, Any]:
        spec = order.spec
        contract = self.state.contract_by_symbol.get(spec.tradingsymbol)
        return {
            "exchange": spec.exchange,
            "producttype": spec.product,
            "tradingsymbol": spec.extra.get("symbol", spec.tradingsymbol),
            "instrumentname": "OPTIDX",
            "symbolgroup": "XX",
            "strikeprice": number(contract.strike) if contract else 0,
            "optiontype": contract.option_type if contract else "",
            "expirydate": contract.expiry.strftime("%d%b%Y").upper() if contract else "",
            "marketlot": str(contract.lot_size) if contract else "1",
            "precision": "2",
            "multiplier": "-1",
            "tradevalue": _text(fill.price * fill.quantity),
            "transactiontype": spec.side,
            "fillprice": _text(fill.price),
            "fillsize": str(fill.quantity),
            "orderid": order.order_id,
            "fillid": fill.trade_id,
            "filltime": ist(fill.at).strftime("%H:%M:%S"),
        }

    async def scrip_master(self, request: web.Request) -> web.Response:
        """The scrip master JSON (reference §3.5): strikes times 100 and tick sizes in paise, as
        six-decimal strings; expiry `DDMONYYYY`. Instruments registered through the control
        plane but not listed are served with the four columns they have."""
        broken = self.master_response()
        if broken is not None:
            return broken
        if self.state.master.mode == "empty":
            return web.json_response([])
        contracts = self.state.master_contracts()
        rows = [
            {"token": token, "symbol": symbol, "name": name, "expiry": "", "strike": "-1.000000",
             "lotsize": "1", "instrumenttype": "AMXIDX", "exch_seg": "NSE" if token != SENSEX
             else "BSE", "tick_size": "-1.000000"}
            for token, symbol, name in INDEX_ROWS.values()
        ]  # fmt: skip
        rows.extend(render_scrip(c) for c in contracts)
        listed = {str(c.exchange_token) for c in contracts} | {r["token"] for r in rows}
        rows.extend(
            {"token": i.token, "symbol": i.symbol, "name": i.canonical, "exch_seg": i.exch_seg}
            for i in filter(None, map(self.instrument, self.state.instrument_keys))
            if i.token not in listed
        )
        return web.json_response(rows)


SENSEX = "99919000"
# Angel's index rows: name → (token, symbol, name) as its scrip master lists them.
INDEX_ROWS = {
    "NIFTY 50": ("99926000", "Nifty 50", "NIFTY"),
    "NIFTY BANK": ("99926009", "Nifty Bank", "BANKNIFTY"),
    "SENSEX": (SENSEX, "SENSEX", "SENSEX"),
}


def angel_symbol(contract: Contract) -> str:
    from execution.reference.symbols import angelone_tradingsymbol

    return angelone_tradingsymbol(
        contract.underlying, contract.expiry, contract.strike, contract.option_type
    )


def render_scrip(contract: Contract) -> dict[str, Any]:
    return {
        "token": str(contract.exchange_token),
        "symbol": angel_symbol(contract),
        "name": contract.underlying,
        "expiry": contract.expiry.strftime("%d%b%Y").upper(),
        "strike": f"{contract.strike * 100:.6f}",
        "lotsize": str(contract.lot_size),
        "instrumenttype": "OPTIDX",
        "exch_seg": contract.exchange,
        "tick_size": f"{contract.tick_size * 100:.6f}",
    }


def ok(data: Any) -> web.Response:
    return web.json_response({"status": True, "message": "SUCCESS", "errorcode": "", "data": data})


def _text(value: Decimal) -> str:
    return f"{value:.2f}"


def render_order(order: Order) -> dict[str, Any]:
    spec = order.spec
    status = STATUS[order.state]
    return {
        "variety": spec.variety,
        "ordertype": spec.order_type,
        "producttype": spec.product,
        "duration": spec.validity,
        "price": number(order.limit_price),
        "triggerprice": 0,
        "quantity": str(spec.quantity),
        "disclosedquantity": "0",
        "tradingsymbol": spec.extra.get("symbol", spec.tradingsymbol),
        "transactiontype": spec.side,
        "exchange": spec.exchange,
        "symboltoken": spec.instrument_token,
        "ordertag": spec.tag,
        "averageprice": number(order.average_price),
        "filledshares": str(order.filled_quantity),
        "unfilledshares": str(order.pending_quantity),
        "orderid": order.order_id,
        "uniqueorderid": spec.extra.get("uniqueorderid", ""),
        "text": order.status_message if order.state == OrderState.REJECTED else "",
        "status": status,
        "orderstatus": status,
        "updatetime": ist(order.updated_at).strftime("%d-%b-%Y %H:%M:%S"),
        "exchtime": ""
        if order.state == OrderState.RECEIVED
        else ist(order.placed_at).strftime("%d-%b-%Y %H:%M:%S"),
    }
