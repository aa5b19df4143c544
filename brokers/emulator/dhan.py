"""Dhan (DhanHQ v2) emulator (shared/reference/broker-apis.md §5, §7).

One port serves both of Dhan's hosts (`auth.dhan.co` paths and `api.dhan.co/v2` paths).

Reproduced: the consent login (`POST /app/generate-consent?client_id=` with `app_id` and
`app_secret` headers, the browser page `/login/consentApp-login?consentAppId=`, the redirect
to the app's registered URL with `tokenId`, `/app/consumeApp-consent?tokenId=` by GET or POST
with the same headers; every id single-use), the TOTP login (`POST /app/generateAccessToken`
with `dhanClientId`, `pin`, `totp`), 24-hour tokens, `GET /v2/RenewToken` (+24 h),
`GET /v2/profile`, the `access-token` header, raw `{orderId, orderStatus}` answers without a
wrapper, `POST /v2/orders` with the documented fields, the book, `/v2/orders/{id}` and the
correlation lookup `/v2/orders/external/{correlationId}`, PUT modify (25 per order), DELETE
cancel, positions, `fundlimit` (with Dhan's `availabelBalance` spelling), `marketfeed/ltp`,
the compact scrip master CSV (all documented columns, from the emulator's master), the trade
book (`/v2/trades`, `/v2/trades/{order-id}`), `{errorType, errorCode, errorMessage}` errors
(DH-901…910), MARKET turned into a protected LIMIT that can rest PENDING (since 21-Mar-2026),
10 orders/s.

Assumed where the reference is silent (§6): errorType spellings; an unknown correlation id is
a 404 DH-907; a write from an unregistered IP is a 403 DH-906 naming the static-IP rule; the
TOTP login answers like consumeApp-consent. Not emulated: slicing, postbacks, super orders.

Dhan orders name contracts only by `securityId`: register them first through the core's
instrument table (`EmulatorHandle.add_instruments`, key = securityId, exchange NFO/BFO for
contracts or NSE/BSE for indices, which Dhan serves under the data-only segment IDX_I).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable
from datetime import time as dtime
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from brokers.emulator.core import (
    Account,
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
    ist_text,
    json_object,
    number,
    with_query,
)
from brokers.emulator.master import Contract, IndexRow
from brokers.emulator.otp import totp_valid

TOKEN_LIFETIME = timedelta(hours=24)
ERRORS = {
    ErrorKind.AUTH: (401, "Invalid_Authentication", "DH-901"),
    ErrorKind.LOGIN: (401, "Invalid_Authentication", "DH-901"),
    ErrorKind.IP: (403, "Order_Error", "DH-906"),
    ErrorKind.INPUT: (400, "Input_Exception", "DH-905"),
    ErrorKind.ORDER: (400, "Order_Error", "DH-906"),
    ErrorKind.MARGIN: (400, "Order_Error", "DH-906"),
    ErrorKind.NOT_FOUND: (404, "Data_Error", "DH-907"),
    ErrorKind.RATE: (429, "Rate_Limit", "DH-904"),
    ErrorKind.SERVER: (500, "Internal_Server_Error", "DH-908"),
}
SEGMENTS = {"NFO": "NSE_FNO", "BFO": "BSE_FNO", "NSE": "IDX_I", "BSE": "IDX_I"}
PRODUCTS = {"CNC", "INTRADAY", "MARGIN", "MTF", "CO", "BO"}
STATUS = {
    OrderState.RECEIVED: "TRANSIT",
    OrderState.OPEN: "PENDING",
    OrderState.COMPLETE: "TRADED",
    OrderState.CANCELLED: "CANCELLED",
    OrderState.REJECTED: "REJECTED",
}
CORRELATION_MAX = 30  # assumed (reference §6: length/charset unverified)


@dataclasses.dataclass(frozen=True)
class Security:
    security_id: str
    segment: str  # NSE_FNO, BSE_FNO, IDX_I
    exchange: str  # NFO, BFO, or NSE/BSE for an index
    symbol: str  # the emulators' canonical (Kite-style) name, or the index's quote name
    trading_symbol: str  # Dhan's style: NIFTY-Jun2025-24000-CE


class DhanEmulator(BrokerEmulator):
    name = "dhan"
    token_cutoff = dtime(0, 0)  # unused: Dhan tokens live 24 h from issue
    rate_windows = ((1.0, 10), (60.0, 250), (3600.0, 1000), (86400.0, 7000))
    login_path = "/login/consentApp-login"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state.token_lifetime = TOKEN_LIFETIME

    def security(self, security_id: str) -> Security | None:
        known = self.state.instrument_keys.get(security_id)
        if known is None or known[0] not in SEGMENTS:
            return None
        exchange, symbol, trading_symbol = known
        return Security(security_id, SEGMENTS[exchange], exchange, symbol, trading_symbol)

    def routes(self, host: str) -> Iterable[web.RouteDef]:
        return [
            web.post("/app/generate-consent", self.generate_consent),
            web.get("/login/consentApp-login", self.login_page),
            web.post("/login/consentApp-login", self.login_submit),
            web.get("/app/consumeApp-consent", self.consume_consent),
            web.post("/app/consumeApp-consent", self.consume_consent),
            web.post("/app/generateAccessToken", self.totp_login),
            web.get("/v2/profile", self.profile),
            web.get("/v2/RenewToken", self.renew_token),
            web.post("/v2/orders", self.place_order),
            web.get("/v2/orders", self.orders),
            web.get("/v2/orders/external/{correlation_id}", self.order_by_correlation),
            web.get("/v2/orders/{order_id}", self.order),
            web.put("/v2/orders/{order_id}", self.modify_order),
            web.delete("/v2/orders/{order_id}", self.cancel_order),
            web.get("/v2/positions", self.positions),
            web.get("/v2/fundlimit", self.funds),
            web.post("/v2/marketfeed/ltp", self.ltp),
            web.get("/api-data/api-scrip-master.csv", self.scrip_master),
            # The docs' path has no trailing slash; dhanhq's get_trade_book() adds one.
            web.get("/v2/trades", self.trades),
            web.get("/v2/trades/", self.trades),
            web.get("/v2/trades/{order_id}", self.order_trades),
        ]

    def error_response(self, err: EmulatorError) -> web.Response:
        status, error_type, code = ERRORS[err.kind]
        return web.json_response(
            {"errorType": error_type, "errorCode": err.code or code, "errorMessage": err.message},
            status=err.status or status,
        )

    def authenticate(self, request: web.Request) -> Session:
        token = request.headers.get("access-token", "")
        try:
            return self.state.session_for_token(token)
        except EmulatorError as err:
            raise EmulatorError(
                ErrorKind.AUTH, "Client ID or user generated access token is invalid or expired."
            ) from err

    # --- login ------------------------------------------------------------------------------
    def _app(self, request: web.Request) -> Account:
        account = self.state.accounts.get(request.headers.get("app_id", ""))
        if account is None or account.api_secret != request.headers.get("app_secret"):
            raise EmulatorError(ErrorKind.LOGIN, "Invalid app_id or app_secret.")
        return account

    async def generate_consent(self, request: web.Request) -> web.Response:
        account = self._app(request)
        if request.query.get("client_id") != account.client_id:
            raise EmulatorError(ErrorKind.LOGIN, "Invalid client_id.")
        consent_id = self.state.issue_login_code(account, step="consent")
        return web.json_response(
            {"consentAppId": consent_id, "consentAppStatus": "GENERATED", "status": "success"}
        )

    async def login_page(self, request: web.Request) -> web.Response:
        consent_id = request.query.get("consentAppId", "")
        grant = self.state.login_codes.get(consent_id)
        if grant is None or grant[1].get("step") != "consent":
            raise EmulatorError(ErrorKind.LOGIN, "Invalid or expired consentAppId.")
        return consent_page(
            broker="Dhan",
            action=self.login_path,
            user_id=grant[0].client_id,
            fields={"consentAppId": consent_id},
        )

    async def login_submit(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.state.consume_login_code(str(form.get("consentAppId", "")))
        if grant is None or grant[1].get("step") != "consent":
            raise EmulatorError(ErrorKind.LOGIN, "Invalid or expired consentAppId.")
        account = grant[0]
        if not account.redirect_uri:
            raise EmulatorError(ErrorKind.INPUT, "No redirect URL is registered for this app.")
        token_id = self.state.issue_login_code(account, step="token")
        raise web.HTTPFound(with_query(account.redirect_uri, {"tokenId": token_id}))

    async def consume_consent(self, request: web.Request) -> web.Response:
        account = self._app(request)
        grant = self.state.consume_login_code(request.query.get("tokenId", ""))
        if grant is None or grant[1].get("step") != "token" or grant[0] is not account:
            raise EmulatorError(ErrorKind.LOGIN, "Invalid or expired tokenId.")
        return self._token_answer(self.state.issue_token(account))

    async def totp_login(self, request: web.Request) -> web.Response:
        query = request.query
        account = next(
            (a for a in self.state.accounts.values() if a.client_id == query.get("dhanClientId")),
            None,
        )
        if (
            account is None
            or not account.extra.get("pin")
            or query.get("pin") != account.extra["pin"]
            or not totp_valid(
                account.extra.get("totp_secret", ""), query.get("totp", ""), self.clock()
            )
        ):
            raise EmulatorError(ErrorKind.LOGIN, "Invalid dhanClientId, PIN or TOTP.")
        return self._token_answer(self.state.issue_token(account))

    def _token_answer(self, session: Session) -> web.Response:
        account = session.account
        return web.json_response(
            {
                "dhanClientId": account.client_id,
                "dhanClientName": account.user_name,
                "dhanClientUcc": account.user_id,
                "givenPowerOfAttorney": False,
                "accessToken": session.token,
                # ISO without a zone: Dhan means IST.
                "expiryTime": ist(session.expires_at).replace(tzinfo=None).isoformat(),
            }
        )

    async def profile(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        return web.json_response(
            {
                "dhanClientId": session.account.client_id,
                "tokenValidity": ist(session.expires_at).strftime("%d/%m/%Y %H:%M"),
                "activeSegment": "Equity, Derivative",
            }
        )

    async def renew_token(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        if request.headers.get("dhanClientId") != session.account.client_id:
            raise EmulatorError(ErrorKind.AUTH, "dhanClientId does not match the token.")
        session.expires_at = session.expires_at + TOKEN_LIFETIME
        return self._token_answer(session)

    # --- orders -----------------------------------------------------------------------------
    async def place_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        body = await json_object(request)
        order = await self.place(request, session, lambda: self.parse_order(body, session))
        return web.json_response({"orderId": order.order_id, "orderStatus": STATUS[order.state]})

    def parse_order(self, body: dict[str, Any], session: Session) -> OrderSpec:
        """Dhan's documented place-order fields → OrderSpec, refusing what Dhan refuses."""
        for field in (
            "dhanClientId", "transactionType", "exchangeSegment", "productType", "orderType",
            "validity", "securityId", "quantity",
        ):  # fmt: skip
            if body.get(field) in (None, ""):
                raise EmulatorError(ErrorKind.INPUT, f"Missing required field {field}.")
        if str(body["dhanClientId"]) != session.account.client_id:
            raise EmulatorError(ErrorKind.INPUT, "dhanClientId does not match the token.")
        security = self.security(str(body["securityId"]))
        if security is None or security.segment != body["exchangeSegment"]:
            raise EmulatorError(ErrorKind.INPUT, "Invalid securityId for the exchangeSegment.")
        if security.segment == "IDX_I":
            raise EmulatorError(ErrorKind.INPUT, "IDX_I is a data-only segment.")
        side = str(body["transactionType"])
        order_type = str(body["orderType"])
        product = str(body["productType"])
        if side not in ("BUY", "SELL") or product not in PRODUCTS:
            raise EmulatorError(ErrorKind.INPUT, "Invalid transactionType or productType.")
        if order_type not in ("MARKET", "LIMIT"):
            raise EmulatorError(ErrorKind.INPUT, "Stop-loss orders are not emulated.")
        quantity = int_or_error(body["quantity"], "quantity")
        price = decimal_or_error(body.get("price") or 0, "price")
        if quantity <= 0 or (order_type == "LIMIT" and price <= 0):
            raise EmulatorError(ErrorKind.INPUT, "Invalid quantity or price.")
        correlation = str(body.get("correlationId") or "")
        if len(correlation) > CORRELATION_MAX:
            raise EmulatorError(ErrorKind.INPUT, "correlationId is too long.")
        # Since 21-Mar-2026 MARKET becomes a LIMIT with market price protection (core).
        return OrderSpec(
            exchange=security.exchange,
            tradingsymbol=security.symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            product=product,
            price=price if order_type == "LIMIT" else Decimal(0),
            tag=correlation,
            validity=str(body["validity"]),
            instrument_token=security.security_id,
            extra={"segment": security.segment, "trading_symbol": security.trading_symbol},
        )

    async def orders(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        return web.json_response([render_order(o) for o in self.state.book(session.account)])

    async def order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        order = self.state.find_order(session.account, request.match_info["order_id"])
        return web.json_response(render_order(order))

    async def order_by_correlation(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        wanted = request.match_info["correlation_id"]
        matches = [o for o in self.state.book(session.account) if o.spec.tag == wanted]
        if not matches:
            raise EmulatorError(ErrorKind.NOT_FOUND, "No order found for this correlationId.")
        return web.json_response(render_order(matches[-1]))

    async def modify_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="modify")
        body = await json_object(request)
        order = self.state.find_order(session.account, request.match_info["order_id"])
        quantity = int_or_error(body["quantity"], "quantity") if body.get("quantity") else None
        price = decimal_or_error(body["price"], "price") if body.get("price") else None
        self.state.modify(
            order, quantity=quantity, price=price, max_modifications=self.max_modifications
        )
        return web.json_response({"orderId": order.order_id, "orderStatus": STATUS[order.state]})

    async def cancel_order(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        await self.guard_write(request, session, kind="cancel")
        order = self.state.find_order(session.account, request.match_info["order_id"])
        self.state.cancel(order)
        return web.json_response({"orderId": order.order_id, "orderStatus": "CANCELLED"})

    # --- portfolio and data -----------------------------------------------------------------
    async def positions(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        return web.json_response(
            [self.render_position(p) for p in self.state.positions(session.account)]
        )

    def render_position(self, row: PositionRow) -> dict[str, Any]:
        security = self.security(row.instrument_token)
        net = row.quantity
        return {
            "dhanClientId": "",
            "tradingSymbol": security.trading_symbol if security else row.tradingsymbol,
            "securityId": row.instrument_token,
            "positionType": "LONG" if net > 0 else "SHORT" if net < 0 else "CLOSED",
            "exchangeSegment": security.segment if security else "",
            "productType": row.product,
            "buyAvg": number(row.buy_price),
            "buyQty": row.buy_quantity,
            "sellAvg": number(row.sell_price),
            "sellQty": row.sell_quantity,
            "netQty": net,
            "realizedProfit": number(row.realised),
            "unrealizedProfit": number(row.unrealised),
            "multiplier": 1,
            "carryForwardBuyQty": 0,
            "carryForwardSellQty": 0,
            "dayBuyQty": row.buy_quantity,
            "daySellQty": row.sell_quantity,
        }

    async def funds(self, request: web.Request) -> web.Response:
        session = self.authenticate(request)
        account = session.account
        self.state.settle_all(account)
        used = max(self.state.premium_paid(account), Decimal(0))
        return web.json_response(
            {
                "dhanClientId": account.client_id,
                "availabelBalance": number(account.cash),
                "sodLimit": number(account.opening_cash),
                "collateralAmount": 0,
                "receiveableAmount": 0,
                "utilizedAmount": number(used),
                "blockedPayoutAmount": 0,
                "withdrawableBalance": number(account.cash),
            }
        )

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        return [(str(contract.exchange_token), dhan_symbol(contract))]

    def index_keys(self, index: IndexRow) -> Iterable[tuple[str, str]]:
        return [(INDEX_IDS[index.name], index.name)]

    async def trades(self, request: web.Request) -> web.Response:
        """The day's fills as a bare JSON list (no envelope, like the order book)."""
        account = self.authenticate(request).account
        return web.json_response([self.render_trade(o, f) for o, f in self.state.trades(account)])

    async def order_trades(self, request: web.Request) -> web.Response:
        account = self.authenticate(request).account
        order = self.state.find_order(account, request.match_info["order_id"])
        return web.json_response([self.render_trade(order, fill) for fill in order.fills])

    def render_trade(self, order: Order, fill: Fill) -> dict[str, Any]:
        spec = order.spec
        contract = self.state.contract_by_symbol.get(spec.tradingsymbol)
        return {
            "dhanClientId": order.account.client_id,
            "orderId": order.order_id,
            "exchangeOrderId": f"1{order.order_id[-15:]}",
            "exchangeTradeId": fill.trade_id,
            "transactionType": spec.side,
            "exchangeSegment": spec.extra.get("segment", ""),
            "productType": spec.product,
            "orderType": spec.order_type,
            "tradingSymbol": spec.extra.get("trading_symbol", spec.tradingsymbol),
            "customSymbol": spec.tradingsymbol,
            "securityId": spec.instrument_token,
            "tradedQuantity": fill.quantity,
            "tradedPrice": number(fill.price),
            "createTime": ist_text(order.placed_at),
            "updateTime": ist_text(fill.at),
            "exchangeTime": ist_text(fill.at),
            "drvExpiryDate": contract.expiry.isoformat() if contract else "NA",
            "drvOptionType": {"CE": "CALL", "PE": "PUT"}[contract.option_type]
            if contract
            else "NA",
            "drvStrikePrice": number(contract.strike) if contract else 0,
        }

    async def ltp(self, request: web.Request) -> web.Response:
        self.authenticate(request)
        body = await json_object(request)
        data: dict[str, dict[str, Any]] = {}
        for segment, ids in body.items():
            if not isinstance(ids, list):
                continue  # dhanhq adds `dhanClientId` to every body
            for security_id in ids:
                security = self.security(str(security_id))
                if security is None or security.segment != segment:
                    continue
                quote = self.state.quotes.quote(security.exchange, security.symbol)
                if quote is not None:
                    data.setdefault(segment, {})[str(security_id)] = {
                        "last_price": number(quote.last_price)
                    }
        return web.json_response({"data": data, "status": "success"})

    async def scrip_master(self, request: web.Request) -> web.StreamResponse:
        """The compact scrip master CSV (reference §5.5 columns): the emulator's master, then
        instruments registered through the control plane that it does not list."""
        broken = self.master_response()
        if broken is not None:
            return broken
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=MASTER_COLUMNS, lineterminator="\n")
        writer.writeheader()
        if self.state.master.mode == "empty":
            return web.Response(text=out.getvalue(), content_type="text/csv")
        listed = set()
        for contract in self.state.master_contracts():
            listed.add(str(contract.exchange_token))
            writer.writerow(scrip_row(contract))
        for s in filter(None, map(self.security, self.state.instrument_keys)):
            if s.security_id in listed:
                continue
            index = s.segment == "IDX_I"
            writer.writerow(
                {"SEM_EXM_EXCH_ID": s.exchange if index else s.exchange[0] + "SE",
                 "SEM_SEGMENT": "I" if index else "D", "SEM_SMST_SECURITY_ID": s.security_id,
                 "SEM_INSTRUMENT_NAME": "INDEX" if index else "OPTIDX",
                 "SEM_TRADING_SYMBOL": s.trading_symbol, "SEM_CUSTOM_SYMBOL": s.symbol}
            )  # fmt: skip
        return web.Response(text=out.getvalue(), content_type="text/csv")


MASTER_COLUMNS = (
    "SEM_EXM_EXCH_ID", "SEM_SEGMENT", "SEM_SMST_SECURITY_ID", "SEM_INSTRUMENT_NAME",
    "SEM_EXPIRY_CODE", "SEM_TRADING_SYMBOL", "SEM_LOT_UNITS", "SEM_CUSTOM_SYMBOL",
    "SEM_EXPIRY_DATE", "SEM_STRIKE_PRICE", "SEM_OPTION_TYPE", "SEM_TICK_SIZE",
    "SEM_EXPIRY_FLAG", "SEM_EXCH_INSTRUMENT_TYPE", "SEM_SERIES", "SM_SYMBOL_NAME",
)  # fmt: skip
# Dhan's index security ids (segment IDX_I).
INDEX_IDS = {"NIFTY 50": "13", "NIFTY BANK": "25", "SENSEX": "51"}


def dhan_symbol(contract: Contract) -> str:
    from execution.reference.symbols import dhan_tradingsymbol

    return dhan_tradingsymbol(
        contract.underlying,
        contract.expiry,
        contract.strike,
        contract.option_type,
        monthly=contract.monthly,
    )


def scrip_row(contract: Contract) -> dict[str, Any]:
    from execution.reference.symbols import MONTH_ABBR, strike_text

    kind = {"CE": "CALL", "PE": "PUT"}[contract.option_type]
    custom = (
        f"{contract.underlying} {contract.expiry.day:02d} {MONTH_ABBR[contract.expiry.month - 1]}"
        f" {strike_text(contract.strike)} {kind}"
    )
    return {
        "SEM_EXM_EXCH_ID": contract.index_exchange,
        "SEM_SEGMENT": "D",
        "SEM_SMST_SECURITY_ID": str(contract.exchange_token),
        "SEM_INSTRUMENT_NAME": "OPTIDX",
        "SEM_EXPIRY_CODE": 0,
        "SEM_TRADING_SYMBOL": dhan_symbol(contract),
        "SEM_LOT_UNITS": f"{contract.lot_size:.1f}",
        "SEM_CUSTOM_SYMBOL": custom,
        "SEM_EXPIRY_DATE": f"{contract.expiry.isoformat()} 14:30:00",
        "SEM_STRIKE_PRICE": f"{contract.strike:.5f}",
        "SEM_OPTION_TYPE": contract.option_type,
        "SEM_TICK_SIZE": f"{contract.tick_size * 100:.4f}",
        "SEM_EXPIRY_FLAG": "M" if contract.monthly else "W",
        "SEM_EXCH_INSTRUMENT_TYPE": "OP",
        "SEM_SERIES": "XX",
        "SM_SYMBOL_NAME": contract.underlying,
    }


def render_order(order: Order) -> dict[str, Any]:
    spec = order.spec
    status = STATUS[order.state]
    if order.state == OrderState.OPEN and order.filled_quantity:
        status = "PART_TRADED"
    return {
        "dhanClientId": order.account.client_id,
        "orderId": order.order_id,
        "exchangeOrderId": "" if order.state == OrderState.RECEIVED else f"1{order.order_id[-15:]}",
        "correlationId": spec.tag,
        "orderStatus": status,
        "transactionType": spec.side,
        "exchangeSegment": spec.extra.get("segment", ""),
        "productType": spec.product,
        "orderType": spec.order_type,
        "validity": spec.validity,
        "tradingSymbol": spec.extra.get("trading_symbol", spec.tradingsymbol),
        "securityId": spec.instrument_token,
        "quantity": spec.quantity,
        "disclosedQuantity": 0,
        "price": number(order.limit_price),
        "triggerPrice": 0,
        "afterMarketOrder": False,
        "legName": "",
        "createTime": ist_text(order.placed_at),
        "updateTime": ist_text(order.updated_at),
        "exchangeTime": ist_text(order.updated_at),
        "drvExpiryDate": None,
        "drvOptionType": None,
        "drvStrikePrice": 0,
        "omsErrorCode": "" if order.state != OrderState.REJECTED else "RMS",
        "omsErrorDescription": order.status_message if order.state == OrderState.REJECTED else "",
        "algoId": "",
        "remainingQuantity": order.pending_quantity,
        "averageTradedPrice": number(order.average_price),
        "filledQty": order.filled_quantity,
    }
