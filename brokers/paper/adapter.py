"""The paper broker: in-process, filled from the simulated market, booked in the database.

It behaves like a real broker where that matters to the engine: a daily session token from a
login redirect, an orders-per-second limit answered with RateLimitedError, an acknowledgement
that is not a fill (orders can be REJECTED after the ack), resting LIMIT orders, market orders
that pay the spread plus slippage, configurable latency, rejections and lost acknowledgements
(the ambiguous case). Orders, positions and cash are rows, so every process sees one book.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

from django.core import signing
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from brokers.base import (
    AmbiguousError,
    AuthError,
    BrokerAdapter,
    BrokerOrder,
    Capabilities,
    Credentials,
    Funds,
    InputRejectedError,
    OrderAck,
    OrderRequest,
    OrderStatus,
    OrderType,
    PermanentError,
    Position,
    Product,
    Quote,
    RateLimitedError,
    Side,
    TokenGrant,
)
from brokers.paper import market as paper_market
from brokers.paper.models import PaperAccount, PaperOrder, PaperPosition
from brokers.ratelimit import OrderRateLimiter
from execution.markettime import IST
from trader.india import rupees

_REQUEST_TOKEN_SALT = "brokers.paper.request-token"  # noqa: S105 (a signing salt, not a secret)
_REQUEST_TOKEN_MAX_AGE = 300  # seconds, like the brokers' few-minute request tokens
_PAISA = Decimal("0.01")
_TAG_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_STATUS = {
    PaperOrder.Status.OPEN: OrderStatus.OPEN,
    PaperOrder.Status.FILLED: OrderStatus.FILLED,
    PaperOrder.Status.CANCELLED: OrderStatus.CANCELLED,
    PaperOrder.Status.REJECTED: OrderStatus.REJECTED,
}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session_end(issued_at: datetime) -> datetime:
    """Like Kite: a session lasts until 06:00 IST the next morning."""
    local = issued_at.astimezone(IST)
    cutoff = local.replace(hour=6, minute=0, second=0, microsecond=0)
    if local >= cutoff:
        cutoff += timedelta(days=1)
    return cutoff


@dataclass(frozen=True)
class _Contract:
    underlying: str
    expiry: date
    strike: Decimal
    option_type: str


class PaperAdapter(BrokerAdapter):
    name: ClassVar[str] = "paper"
    capabilities: ClassVar[Capabilities] = Capabilities(
        lookup_by_tag=True,
        market_protection_required=False,
        modify=True,
        postback=False,
        needs_app_credentials=False,
        max_tag_length=20,
    )

    def __init__(
        self, credentials: Credentials, *, base_url: str | None = None, market: Any = None
    ) -> None:
        super().__init__(credentials, base_url=base_url)
        # The market that fills and marks this book: None is the process-wide simulated market
        # on the wall clock; a simulated session passes its own (execution.simulate_day).
        self.market = market
        try:
            self.account_id = int(credentials.extra["account_id"])
        except (KeyError, ValueError) as exc:
            raise PermanentError("The paper broker needs the account id.") from exc
        # The paper "exchange" enforces its own per-account limit, separate from our outbound
        # limiter, so a sender that skips the limiter meets a 429 as it would at a broker.
        self._limiter = OrderRateLimiter(namespace="paper-exchange")
        self._contracts: dict[tuple[str, str, date], _Contract] = {}

    # --- login ---------------------------------------------------------------------------
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        """The paper broker logs in at once: straight back to our callback with a signed,
        single-use request token."""
        nonce = secrets.token_urlsafe(16)
        updated = PaperAccount.objects.filter(account_id=self.account_id).update(
            pending_login_nonce=nonce
        )
        if not updated:
            raise PermanentError("This account has no paper book.")
        request_token = signing.TimestampSigner(salt=_REQUEST_TOKEN_SALT).sign(
            f"{self.account_id}.{nonce}"
        )
        query = urlencode({"request_token": request_token, "state": state, "status": "success"})
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"

    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """Refuses (AuthError) a request token that was altered, is stale, belongs to another
        account or was already exchanged."""
        try:
            value = signing.TimestampSigner(salt=_REQUEST_TOKEN_SALT).unsign(
                params.get("request_token", ""), max_age=_REQUEST_TOKEN_MAX_AGE
            )
        except signing.BadSignature as exc:
            raise AuthError(
                "The request token's checksum does not match.", code="checksum"
            ) from exc
        account_part, _, nonce = value.partition(".")
        if account_part != str(self.account_id) or not nonce:
            raise AuthError("The request token belongs to another account.", code="checksum")
        issued_at = timezone.now()
        token = secrets.token_urlsafe(32)
        expires_at = _session_end(issued_at)
        claimed = PaperAccount.objects.filter(
            account_id=self.account_id, pending_login_nonce=nonce
        ).update(pending_login_nonce="", token_hash=_hash(token), token_expires_at=expires_at)
        if not claimed:
            raise AuthError("The request token was already used.", code="reused")
        return TokenGrant(
            access_token=token,
            issued_at=issued_at,
            expires_at=expires_at,
            broker_user_id=f"PAPER{self.account_id}",
        )

    def _book(self, *, lock: bool = False) -> PaperAccount:
        queryset = PaperAccount.objects.filter(account_id=self.account_id)
        if lock:
            queryset = queryset.select_for_update()
        book = queryset.first()
        if book is None:
            raise PermanentError("This account has no paper book.")
        token = self.credentials.access_token
        if (
            not token
            or not book.token_hash
            or not secrets.compare_digest(book.token_hash, _hash(token))
        ):
            raise AuthError("The session token is not valid: log in again.", code="token")
        if book.token_expires_at is None or book.token_expires_at <= timezone.now():
            raise AuthError(
                "The paper session ended at 06:00 IST, as broker sessions do daily.",
                code="token",
            )
        return book

    # --- orders --------------------------------------------------------------------------
    def place_order(self, order: OrderRequest) -> OrderAck:
        """Accept (ack) or refuse an order. Refusals of the order's contents raise
        InputRejectedError; funds and the simulated exchange's rejections show up as a
        REJECTED order after the ack, as at a real broker. With `drop_rate` the order is
        booked and AmbiguousError raised instead of the ack."""
        book = self._book()  # authenticate before anything else, as a broker would
        if book.latency_ms:
            time.sleep(book.latency_ms / 1000)
        # The gateway counts every order request, valid or not, before looking inside it.
        limit = self._ops_limit()
        wait = self._limiter.try_acquire(self.account_id, limit)
        if wait:
            raise RateLimitedError(
                f"Too many requests: at most {limit} orders a second.",
                retry_after=wait,
                http_status=429,
            )
        self._validate(order)
        contract = self._contract(order.tradingsymbol, exchange=order.exchange)
        with transaction.atomic():
            book = self._book(lock=True)
            paper_order = PaperOrder.objects.create(
                account_id=self.account_id,
                order_id=f"{int(time.time())}{secrets.randbelow(10**9):09d}",
                tag=order.tag,
                exchange=order.exchange,
                tradingsymbol=order.tradingsymbol.upper(),
                side=order.side.value,
                order_type=order.order_type.value,
                product=order.product.value,
                quantity=order.quantity,
                price=order.price,
                market_protection=order.market_protection,
                status=PaperOrder.Status.OPEN,
                placed_at=timezone.now(),
            )
            if secrets.randbelow(1_000_000) < int(book.reject_rate * 1_000_000):
                self._reject(paper_order, "Rejected by the simulated exchange (paper reject rate).")
            else:
                self._try_fill(book, paper_order, contract)
            dropped = secrets.randbelow(1_000_000) < int(book.drop_rate * 1_000_000)
        if dropped:
            raise AmbiguousError(
                "The paper broker accepted the order but its answer was lost; look it up by tag."
            )
        return OrderAck(
            broker_order_id=paper_order.order_id,
            received_at=timezone.now(),
            raw={"order_id": paper_order.order_id},
        )

    def _ops_limit(self) -> int:
        from brokers.models import BrokerAccount

        return BrokerAccount.objects.values_list("orders_per_second", flat=True).get(
            pk=self.account_id
        )

    def _validate(self, order: OrderRequest) -> None:
        if not order.tag or len(order.tag) > self.capabilities.max_tag_length:
            raise InputRejectedError("The tag must be 1 to 20 characters.", code="tag")
        if not set(order.tag) <= _TAG_CHARS:
            raise InputRejectedError("The tag must be letters and digits only.", code="tag")
        if order.quantity <= 0:
            raise InputRejectedError("The quantity must be positive.", code="quantity")
        if order.order_type == OrderType.LIMIT and (order.price is None or order.price <= 0):
            raise InputRejectedError("A LIMIT order needs a positive price.", code="price")

    def _contract(self, tradingsymbol: str, *, exchange: str) -> _Contract:
        # Resolving against the expiry calendar costs tens of milliseconds; an adapter lives
        # for one call site, so a calendar edit still reaches the next adapter at once.
        key = (tradingsymbol.upper(), exchange, paper_market._today(self.market))
        if key not in self._contracts:
            self._contracts[key] = self._resolve_contract(tradingsymbol, exchange=exchange)
        return self._contracts[key]

    def _resolve_contract(self, tradingsymbol: str, *, exchange: str) -> _Contract:
        try:
            parsed = paper_market.parse(tradingsymbol)
            expiry = paper_market.resolve_expiry(parsed)
            paper_market.check_listed(
                parsed.underlying, exchange=exchange, expiry=expiry, market=self.market
            )
        except paper_market.UnknownContractError as exc:
            raise InputRejectedError(str(exc), code="symbol") from exc
        return _Contract(parsed.underlying, expiry, parsed.strike, parsed.option_type)

    def _lot_check(self, order: PaperOrder, contract: _Contract) -> str:
        lot = paper_market.lot_size(contract.underlying, contract.expiry)
        if order.quantity % lot:
            return f"Quantity {order.quantity} is not a multiple of the lot size {lot}."
        return ""

    def _reject(self, order: PaperOrder, message: str) -> None:
        order.status = PaperOrder.Status.REJECTED
        order.status_message = message[:200]
        order.save(update_fields=["status", "status_message", "updated_at"])

    def _try_fill(self, book: PaperAccount, order: PaperOrder, contract: _Contract) -> None:
        """Fill an open order if the market allows; reject it if funds do not."""
        problem = self._lot_check(order, contract)
        if problem:
            self._reject(order, problem)
            return
        quote = paper_market.touch_for(self.account_id, order.tradingsymbol, contract, self.market)
        buy = order.side == Side.BUY
        touch = quote.ask if buy else quote.bid
        if order.order_type == OrderType.LIMIT:
            assert order.price is not None
            marketable = touch <= order.price if buy else touch >= order.price
            if not marketable:
                return  # rests OPEN; re-checked whenever the book is read
            fill = touch
        else:
            slip = touch * book.slippage_pct / 100
            fill = touch + slip if buy else max(touch - slip, _PAISA)
        fill = fill.quantize(_PAISA, ROUND_HALF_UP)
        shortfall = self._funds_shortfall(book, order, contract, fill)
        if shortfall:
            self._reject(order, shortfall)
            return
        self._book_fill(book, order, fill)

    def _funds_shortfall(
        self, book: PaperAccount, order: PaperOrder, contract: _Contract, fill: Decimal
    ) -> str:
        positions = list(PaperPosition.objects.filter(account_id=self.account_id))
        margin_now = self._short_margin(book, positions)
        available = book.cash - margin_now
        signed = order.quantity if order.side == Side.BUY else -order.quantity
        current = next(
            (
                p.quantity
                for p in positions
                if p.tradingsymbol == order.tradingsymbol and p.product == order.product
            ),
            0,
        )
        premium = fill * order.quantity
        after = current + signed
        extra_short = max(-after, 0) - max(-current, 0)
        extra_margin = Decimal("0")
        if extra_short > 0:
            spot = paper_market.spot(contract.underlying, self.market)
            extra_margin = spot * extra_short * book.short_margin_pct / 100
        need = (premium if order.side == Side.BUY else Decimal("0")) + extra_margin
        credit = premium if order.side == Side.SELL else Decimal("0")
        if need > available + credit:
            have = rupees(available + credit)
            return f"Insufficient funds: {rupees(need)} needed, {have} available."
        return ""

    def _short_margin(self, book: PaperAccount, positions: list[PaperPosition]) -> Decimal:
        total = Decimal("0")
        for position in positions:
            if position.quantity < 0:
                parsed = paper_market.parse(position.tradingsymbol)
                spot = paper_market.spot(parsed.underlying, self.market)
                total += spot * -position.quantity * book.short_margin_pct / 100
        return total.quantize(_PAISA, ROUND_HALF_UP)

    def _book_fill(self, book: PaperAccount, order: PaperOrder, fill: Decimal) -> None:
        signed = order.quantity if order.side == Side.BUY else -order.quantity
        position, _ = PaperPosition.objects.select_for_update().get_or_create(
            account_id=self.account_id,
            exchange=order.exchange,
            tradingsymbol=order.tradingsymbol,
            product=order.product,
        )
        held = position.quantity
        if held == 0 or (held > 0) == (signed > 0):
            size = abs(held) + abs(signed)
            position.average_price = (
                (position.average_price * abs(held) + fill * abs(signed)) / size
            ).quantize(_PAISA, ROUND_HALF_UP)
        else:
            closed = min(abs(held), abs(signed))
            direction = 1 if held > 0 else -1
            position.realised_pnl += (fill - position.average_price) * closed * direction
            if abs(signed) > abs(held):  # flipped: the remainder opens at the fill price
                position.average_price = fill
            elif abs(signed) == abs(held):
                position.average_price = Decimal("0")
        position.quantity = held + signed
        position.save()
        cash_change = -fill * order.quantity if order.side == Side.BUY else fill * order.quantity
        PaperAccount.objects.filter(pk=book.pk).update(cash=F("cash") + cash_change)
        book.refresh_from_db(fields=["cash"])
        order.status = PaperOrder.Status.FILLED
        order.filled_quantity = order.quantity
        order.average_price = fill
        order.status_message = ""
        order.save(
            update_fields=[
                "status",
                "filled_quantity",
                "average_price",
                "status_message",
                "updated_at",
            ]
        )

    def _match_resting(self) -> None:
        """Give resting LIMIT orders their chance against the current market."""
        if not PaperOrder.objects.filter(
            account_id=self.account_id, status=PaperOrder.Status.OPEN
        ).exists():
            return
        with transaction.atomic():
            book = self._book(lock=True)
            for order in PaperOrder.objects.select_for_update().filter(
                account_id=self.account_id, status=PaperOrder.Status.OPEN
            ):
                try:
                    contract = self._contract(order.tradingsymbol, exchange=order.exchange)
                except InputRejectedError as exc:  # the contract expired while resting
                    self._reject(order, exc.message)
                    continue
                self._try_fill(book, order, contract)

    def _to_broker_order(self, order: PaperOrder) -> BrokerOrder:
        return BrokerOrder(
            broker_order_id=order.order_id,
            tag=order.tag,
            tradingsymbol=order.tradingsymbol,
            side=Side(order.side),
            quantity=order.quantity,
            filled_quantity=order.filled_quantity,
            average_price=order.average_price,
            status=_STATUS[PaperOrder.Status(order.status)],
            status_message=order.status_message,
            placed_at=order.placed_at,
            raw={"order_id": order.order_id, "status": order.status, "tag": order.tag},
        )

    def order_status(self, broker_order_id: str) -> BrokerOrder:
        self._book()
        self._match_resting()
        order = PaperOrder.objects.filter(
            account_id=self.account_id, order_id=broker_order_id
        ).first()
        if order is None:
            raise InputRejectedError(f"No order {broker_order_id}.", code="not_found")
        return self._to_broker_order(order)

    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        self._book()
        self._match_resting()
        today = timezone.localtime(timezone.now(), IST).replace(hour=0, minute=0, second=0)
        order = (
            PaperOrder.objects.filter(account_id=self.account_id, tag=tag, placed_at__gte=today)
            .order_by("-placed_at", "-id")
            .first()
        )
        return self._to_broker_order(order) if order else None

    def _open_order(self, broker_order_id: str) -> PaperOrder:
        order = (
            PaperOrder.objects.select_for_update()
            .filter(account_id=self.account_id, order_id=broker_order_id)
            .first()
        )
        if order is None:
            raise InputRejectedError(f"No order {broker_order_id}.", code="not_found")
        if order.status != PaperOrder.Status.OPEN:
            raise InputRejectedError(
                f"Order {broker_order_id} is {order.get_status_display().lower()} and cannot "
                "be changed.",
                code="not_open",
            )
        return order

    def cancel_order(self, broker_order_id: str) -> None:
        self._book()
        with transaction.atomic():
            order = self._open_order(broker_order_id)
            order.status = PaperOrder.Status.CANCELLED
            order.save(update_fields=["status", "updated_at"])

    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None:
        self._book()
        if quantity is not None and quantity <= 0:
            raise InputRejectedError("The quantity must be positive.", code="quantity")
        if price is not None and price <= 0:
            raise InputRejectedError("The price must be positive.", code="price")
        with transaction.atomic():
            order = self._open_order(broker_order_id)
            if quantity is not None:
                order.quantity = quantity
            if price is not None:
                order.price = price
            order.save(update_fields=["quantity", "price", "updated_at"])
        self._match_resting()

    def order_book(self) -> list[BrokerOrder]:
        self._book()
        self._match_resting()
        today = timezone.localtime(timezone.now(), IST).replace(hour=0, minute=0, second=0)
        return [
            self._to_broker_order(order)
            for order in PaperOrder.objects.filter(account_id=self.account_id, placed_at__gte=today)
        ]

    # --- portfolio and data --------------------------------------------------------------
    def positions(self) -> list[Position]:
        self._book()
        self._match_resting()
        result = []
        for row in PaperPosition.objects.filter(account_id=self.account_id):
            contract = self._contract(row.tradingsymbol, exchange=row.exchange)
            last = paper_market.touch_for(
                self.account_id, row.tradingsymbol, contract, self.market
            ).ltp
            unrealised = (last - row.average_price) * row.quantity if row.quantity else Decimal("0")
            result.append(
                Position(
                    exchange=row.exchange,
                    tradingsymbol=row.tradingsymbol,
                    product=Product(row.product),
                    quantity=row.quantity,
                    average_price=row.average_price,
                    last_price=last,
                    realised_pnl=row.realised_pnl.quantize(_PAISA),
                    unrealised_pnl=unrealised.quantize(_PAISA, ROUND_HALF_UP),
                )
            )
        return result

    def funds(self) -> Funds:
        """available = cash less margin blocked for shorts; used = that margin plus the cost
        of open long options; total = available + used."""
        book = self._book()
        self._match_resting()
        book.refresh_from_db(fields=["cash"])
        positions = list(PaperPosition.objects.filter(account_id=self.account_id))
        margin = self._short_margin(book, positions)
        long_cost = sum(
            (p.average_price * p.quantity for p in positions if p.quantity > 0), Decimal("0")
        )
        available = (book.cash - margin).quantize(_PAISA)
        used = (margin + long_cost).quantize(_PAISA)
        return Funds(available=available, used=used, total=available + used)

    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """Accepts an underlying (`NIFTY`: its spot) or an option symbol in Kite notation."""
        self._book()
        result: dict[str, Quote] = {}
        for instrument in instruments:
            name = instrument.strip().upper()
            if paper_market.is_underlying(name):
                result[instrument] = Quote(
                    tradingsymbol=name, last_price=paper_market.spot(name, self.market)
                )
                continue
            contract = self._contract(name, exchange=paper_market.exchange_of(name))
            quote = paper_market.option_quote(contract, self.market)
            result[instrument] = Quote(
                tradingsymbol=name, last_price=quote.ltp, bid=quote.bid, ask=quote.ask
            )
        return result

    def instruments(self) -> list[dict[str, Any]]:
        """The simulated market's listed contracts, in Kite's instrument-master columns."""
        self._book()
        return paper_market.instrument_rows()
