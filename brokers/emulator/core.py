"""Shared machinery of the broker emulators: one asynchronous aiohttp server per broker.

The emulators reproduce each broker's *documented* HTTP API (shared/reference/broker-apis.md)
on 127.0.0.1 so that adapters, the contract suite and the timing benchmarks never touch the
internet. Everything a broker has in common lives here; a broker module only says how its
requests and answers look.

What the core does for every broker
-----------------------------------
- Accounts (api key/secret, user id, registered static IP, redirect URI, cash), access tokens
  that die at the broker's daily cut-off in IST (``token_cutoff``), single-use login codes.
- An injectable clock (:class:`Clock`) for token expiry and timestamps; rate windows use the
  monotonic clock because they must match real elapsed time.
- Write guard: static-IP check (``registered_ip``; ``X-Forwarded-For`` is honoured only with
  ``trust_forwarded_for``) and per-account sliding-window rate limits (10 orders/s by default).
- Fault injection on order placement: ``5xx`` (refused before acceptance), ``reject`` (the
  broker's own order rejection), ``reject-later`` (acknowledged, then REJECTED), ``drop``
  (order created, connection closed without an answer), ``hang`` (order created, the answer
  held for ``hang_seconds`` and never sent), ``5xx-after`` (order created, then HTTP 500).
  Books: ``book_lag_ms`` hides new orders from the order book and tag lookups that long
  (a lagging OMS), ``book_fails`` makes every book read and tag lookup answer HTTP 503.
  Faults happen on every order (``fault`` alone), at random with ``fail_rate`` and ``seed``,
  or once each from a queue (:meth:`FaultPlan.push`); or planned per order tag, with accounts
  down, from outside (:mod:`brokers.emulator.tagfaults`: reproducible whatever the arrival
  order).
- Latency (``latency_ms``) on every request, after the arrival time was taken.
- The order log: one entry per order write with ``arrival_ns`` (``time.time_ns()`` taken by
  the first middleware, before any latency), kept in memory and appended to a JSON-lines file
  by a background task (never on the request path), flushed on shutdown.
- Fills from the simulated market (:mod:`brokers.emulator.pricing`), positions, and cash.
- A control plane under ``/_emulator/`` (accounts, tokens, clock, faults, order log) used by
  :mod:`brokers.emulator.handle` so tests and benchmarks drive in-thread and subprocess
  emulators the same way.

How to add a broker
-------------------
1. Create ``brokers/emulator/<name>.py`` with a subclass of :class:`BrokerEmulator`:

   - ``name``: the ``--broker`` value; ``token_cutoff``: daily expiry time in IST;
     ``rate_windows``: ``((seconds, limit), ...)`` order-write limits per account;
     ``hosts``: extra host names if the broker splits hosts (Upstox writes on ``"hft"``).
   - ``routes(host)``: aiohttp ``RouteDef`` list for that host (``"api"`` is the main one).
   - ``error_response(err)``: render an :class:`EmulatorError` in the broker's own envelope
     (HTTP status, error code and message fields exactly as the reference documents).
   - ``authenticate(request)``: read the broker's auth header and return
     ``self.state.session_for_token(token)`` (raises ``EmulatorError(AUTH, …)``).
   - a login page and a token exchange that verify the broker's checksum/secret, using
     ``state.issue_login_code`` / ``state.consume_login_code`` / ``state.issue_token``.
   - order handlers that parse the documented fields into an :class:`OrderSpec` and call
     ``await self.place(request, session, spec, kind="place")``; modify/cancel call
     ``await self.guard_write(request, session, kind=...)`` first; reads call
     ``self.state.settle_all(account)`` (or ``settle(order)``) before rendering.
   - render :class:`Order`, :class:`PositionRow`, :class:`pricing.MarketQuote` in the broker's
     field names (raise :class:`EmulatorError` for every refusal; the core renders it).
2. Register it in ``BROKERS`` in ``brokers/emulator/registry.py`` (name → "module:Class").
3. Add ``tests/brokers/emulator/test_<name>_shapes.py`` checking one recorded answer of each
   kind against the field names in the reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import gc
import html
import itertools
import json
import logging
import random
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from brokers.base import next_ist_cutoff
from brokers.emulator.master import INDICES, Contract, IndexRow, Master
from brokers.emulator.pricing import MarketQuote, QuoteSource
from brokers.emulator.tagfaults import ANSWER, TagFault, TagFaults
from execution.markettime import IST

logger = logging.getLogger(__name__)

ARRIVAL_NS = web.RequestKey("arrival_ns", int)
FAULT_MODES = ("5xx", "5xx-after", "reject", "reject-later", "drop", "hang")
DEFAULT_RANDOM_FAULTS = ("5xx", "reject", "drop")


# --- clock ---------------------------------------------------------------------------------
class Clock:
    """Wall clock with a settable offset (token expiry, timestamps, simulated market).

    ``set(dt)`` jumps to a moment and keeps running from there; ``freeze(dt)`` stops time.
    """

    def __init__(self, *, start: datetime | None = None, frozen: bool = False) -> None:
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None
        if start is not None:
            self.set(start)
        if frozen:
            self._frozen_at = self()

    def __call__(self) -> datetime:
        if self._frozen_at is not None:
            return self._frozen_at
        return datetime.now(UTC) + self._offset

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("the emulator clock needs an aware datetime")
        if self._frozen_at is not None:
            self._frozen_at = moment
        else:
            self._offset = moment - datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.set(self() + timedelta(seconds=seconds))

    def freeze(self, moment: datetime | None = None) -> None:
        self._frozen_at = moment or self()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            at, self._frozen_at = self._frozen_at, None
            self.set(at)


# --- errors --------------------------------------------------------------------------------
class ErrorKind(enum.Enum):
    AUTH = "auth"  # token missing, invalid or expired
    LOGIN = "login"  # bad checksum / secret / code at the token exchange
    IP = "ip"  # write from an unregistered IP
    INPUT = "input"  # a field is missing or invalid
    ORDER = "order"  # the OMS refused the order (the `reject` fault, finished order…)
    MARGIN = "margin"  # not enough funds
    NOT_FOUND = "not_found"
    RATE = "rate"  # over an order-rate window
    SERVER = "server"  # 5xx before acceptance


class EmulatorError(Exception):
    """Any refusal. Raised anywhere in a handler; the core renders it with the broker's
    `error_response`. `status` overrides the broker's default HTTP status for the kind."""

    def __init__(
        self, kind: ErrorKind, message: str, *, status: int | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code


# --- options -------------------------------------------------------------------------------
@dataclasses.dataclass
class EmulatorOptions:
    latency_ms: float = 0.0
    fail_rate: float = 0.0
    fault: tuple[str, ...] = ()
    seed: int = 0
    registered_ip: str = "127.0.0.1"
    trust_forwarded_for: bool = False
    order_log: str | None = None
    orders_per_second: int | None = None  # overrides the broker's per-second window
    fill_delay_ms: float = 0.0  # an accepted order stays open this long before it fills
    partial_fills: bool = False  # fill half first, the rest after another fill delay
    hang_seconds: float = 5.0
    book_lag_ms: float = 0.0  # new orders appear in the order book / tag lookups this late
    book_fails: bool = False  # order-book reads and tag lookups answer 503
    market_seed: int = 7
    default_cash: Decimal = Decimal("1000000")
    auto_accounts: bool = False  # unknown api keys become accounts (load tests)
    # Refuse orders for option contracts the master does not list, as a broker does. Off by
    # default: older tests trade fixed contracts on a market that never moves.
    listed_only: bool = False
    # Basket margin estimates (a SIMULATION PARAMETER, not SPAN): a short option blocks this
    # percentage of its strike's notional; a long pays its premium at the ask.
    short_margin_pct: Decimal = Decimal("12")

    def __post_init__(self) -> None:
        if isinstance(self.fault, str):
            self.fault = tuple(f for f in self.fault.split(",") if f)
        unknown = set(self.fault) - set(FAULT_MODES)
        if unknown:
            raise ValueError(f"unknown fault mode(s): {sorted(unknown)}; use {FAULT_MODES}")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        self.default_cash = Decimal(str(self.default_cash))


class FaultPlan:
    """Which fault (if any) the next order gets: queued one-shot faults first, then `fault` on
    every order (no fail_rate) or at random with probability `fail_rate` (seeded)."""

    def __init__(self, options: EmulatorOptions) -> None:
        self.options = options
        self._random = random.Random(options.seed)
        self._queue: deque[str] = deque()

    def push(self, *faults: str) -> None:
        for fault in faults:
            if fault not in (*FAULT_MODES, "none"):
                raise ValueError(f"unknown fault mode: {fault}")
            self._queue.append(fault)

    def next(self) -> str | None:
        if self._queue:
            fault = self._queue.popleft()
            return None if fault == "none" else fault
        if self.options.fail_rate > 0:
            if self._random.random() < self.options.fail_rate:
                return self._random.choice(self.options.fault or DEFAULT_RANDOM_FAULTS)
            return None
        if self.options.fault:
            return self._random.choice(self.options.fault)
        return None


# --- domain --------------------------------------------------------------------------------
@dataclasses.dataclass
class Account:
    api_key: str
    api_secret: str
    user_id: str
    user_name: str = "Emulated Trader"
    email: str = "trader@example.invalid"
    redirect_uri: str = ""
    registered_ip: str | None = None  # None: the emulator-wide option applies
    cash: Decimal = Decimal("0")
    opening_cash: Decimal = Decimal("0")
    client_id: str = ""  # broker-side client code where the API has one (Angel, Dhan, Fyers)
    extra: dict[str, str] = dataclasses.field(default_factory=dict)
    orders: dict[str, Order] = dataclasses.field(default_factory=dict)
    windows: list[deque[float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Session:
    token: str
    account: Account
    issued_at: datetime
    expires_at: datetime
    revoked: bool = False
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OrderSpec:
    """An order in neutral terms; broker modules translate their fields to and from it."""

    exchange: str  # NFO, BFO…
    tradingsymbol: str  # Kite-style symbol, the emulator's canonical contract name
    side: str  # BUY / SELL
    quantity: int
    order_type: str  # MARKET / LIMIT
    product: str  # broker's own product code, echoed back
    price: Decimal = Decimal("0")
    market_protection: Decimal = Decimal("0")
    tag: str = ""
    validity: str = "DAY"
    variety: str = "regular"
    instrument_token: str = ""
    algo_id: str = ""  # the exchange algo ID as the broker's field carried it ("" if none)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


# Exchange algo IDs: no broker publishes a format; letters, digits, '-' and '_', at most 40
# (our column's size) is assumed. A malformed one is refused as the broker's input error.
ALGO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def algo_id_checked(value: Any, field: str) -> str:
    """The algo ID a request carried in `field` ("" when absent); EmulatorError if malformed."""
    text = str(value or "")
    if text and not ALGO_ID_RE.match(text):
        raise EmulatorError(ErrorKind.INPUT, f"Invalid `{field}`.")
    return text


class OrderState(enum.StrEnum):
    """The canonical life of an emulated order; brokers render their own status words."""

    RECEIVED = "received"  # OMS ack sent, validation / exchange pending
    OPEN = "open"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_final(self) -> bool:
        return self in {OrderState.COMPLETE, OrderState.CANCELLED, OrderState.REJECTED}


@dataclasses.dataclass(frozen=True)
class Fill:
    """One trade of an order: every broker's trade book lists these, each with its own id."""

    trade_id: str
    quantity: int
    price: Decimal
    at: datetime


@dataclasses.dataclass
class Order:
    order_id: str
    account: Account
    spec: OrderSpec
    state: OrderState
    placed_at: datetime
    updated_at: datetime
    limit_price: Decimal  # LIMIT price, or the protection price of a protected MARKET
    filled_quantity: int = 0
    fill_value: Decimal = Decimal("0")
    status_message: str = ""
    modifications: int = 0
    history: list[tuple[OrderState, datetime, str]] = dataclasses.field(default_factory=list)
    fills: list[Fill] = dataclasses.field(default_factory=list)
    # (monotonic due time, quantity; 0 = the rest; -1 = reject) steps still to happen
    plan: deque[tuple[float, int]] = dataclasses.field(default_factory=deque)

    @property
    def pending_quantity(self) -> int:
        if self.state in {OrderState.CANCELLED, OrderState.REJECTED}:
            return 0
        return self.spec.quantity - self.filled_quantity

    @property
    def cancelled_quantity(self) -> int:
        if self.state == OrderState.CANCELLED:
            return self.spec.quantity - self.filled_quantity
        return 0

    @property
    def average_price(self) -> Decimal:
        if not self.filled_quantity:
            return Decimal("0")
        return (self.fill_value / self.filled_quantity).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclasses.dataclass(frozen=True)
class PositionRow:
    exchange: str
    tradingsymbol: str
    product: str
    instrument_token: str
    buy_quantity: int
    buy_value: Decimal
    sell_quantity: int
    sell_value: Decimal
    last_price: Decimal

    @property
    def quantity(self) -> int:
        return self.buy_quantity - self.sell_quantity

    @property
    def buy_price(self) -> Decimal:
        return _avg(self.buy_value, self.buy_quantity)

    @property
    def sell_price(self) -> Decimal:
        return _avg(self.sell_value, self.sell_quantity)

    @property
    def average_price(self) -> Decimal:
        if self.quantity > 0:
            return self.buy_price
        if self.quantity < 0:
            return self.sell_price
        return Decimal("0")

    @property
    def realised(self) -> Decimal:
        closed = min(self.buy_quantity, self.sell_quantity)
        if not closed:
            return Decimal("0.00")
        return ((self.sell_price - self.buy_price) * closed).quantize(Decimal("0.01"))

    @property
    def unrealised(self) -> Decimal:
        return ((self.last_price - self.average_price) * self.quantity).quantize(Decimal("0.01"))

    @property
    def pnl(self) -> Decimal:
        return self.realised + self.unrealised


def _avg(value: Decimal, quantity: int) -> Decimal:
    if not quantity:
        return Decimal("0")
    return (value / quantity).quantize(Decimal("0.01"), ROUND_HALF_UP)


# --- state ---------------------------------------------------------------------------------
class EmulatorState:
    """Everything one emulator knows. Touched only from the server's event loop."""

    def __init__(
        self,
        options: EmulatorOptions,
        *,
        token_cutoff: dtime,
        rate_windows: tuple[tuple[float, int], ...],
        quotes: QuoteSource,
        clock: Clock,
    ) -> None:
        self.options = options
        self.clock = clock
        self.token_cutoff = token_cutoff
        self.rate_windows = rate_windows
        if options.orders_per_second is not None:
            others = tuple(w for w in rate_windows if w[0] != 1.0)
            self.rate_windows = ((1.0, options.orders_per_second), *others)
        self.quotes = quotes
        self.faults = FaultPlan(options)
        self.tag_faults = TagFaults()
        self.accounts: dict[str, Account] = {}
        self.sessions: dict[str, Session] = {}
        self.login_codes: dict[str, tuple[Account, dict[str, str]]] = {}
        self.orders: dict[str, Order] = {}
        # Broker instrument ids (Upstox `NSE_FO|43919`, Dhan security ids…) → (exchange,
        # canonical Kite-style symbol, the broker's own trading symbol), registered from the
        # broker's instrument master through the control plane.
        self.instrument_keys: dict[str, tuple[str, str, str]] = {}
        self.order_log: list[dict[str, Any]] = []
        self._log_cursor = 0
        # Every broker-API request (not the control plane) as (arrival ns, "METHOD route"),
        # and the instants connections were accepted: a benchmark reads what a client sent
        # besides its orders, and how many connections it opened, in a window (`traffic`).
        self.traffic: list[tuple[int, str]] = []
        self.connections_opened: list[int] = []
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.master = Master(clock, quotes.quote)
        # canonical (Kite-style) symbol → contract of today's master
        self.contract_by_symbol: dict[str, Contract] = {}
        self.master.on_change.append(self._index_master)
        self._order_id_prefix = clock().astimezone(IST).strftime("%y%m%d")
        # Brokers whose tokens live a fixed time from issue (Dhan: 24 h) set this instead of
        # relying on the daily cut-off.
        self.token_lifetime: timedelta | None = None

    # instrument master
    def master_contracts(self) -> list[Contract]:
        """Today's listed contracts (built on the first call of an IST day)."""
        return self.master.contracts(today_ist(self.clock))

    def _index_master(self, contracts: Iterable[Contract]) -> None:
        self.contract_by_symbol = {c.kite_symbol: c for c in contracts}

    def trades(self, account: Account) -> list[tuple[Order, Fill]]:
        """Every fill of the account's orders, oldest first."""
        rows = [(o, f) for o in self.settle_all(account) for f in o.fills]
        return sorted(rows, key=lambda row: (row[1].at, row[1].trade_id))

    # accounts and tokens
    def add_account(self, **fields: Any) -> Account:
        fields.setdefault("cash", self.options.default_cash)
        fields["cash"] = Decimal(str(fields["cash"]))
        account = Account(**fields, opening_cash=fields["cash"])
        account.windows = [deque() for _ in self.rate_windows]
        self.accounts[account.api_key] = account
        return account

    def account(self, api_key: str) -> Account | None:
        account = self.accounts.get(api_key)
        if account is None and self.options.auto_accounts and api_key:
            # The key names the account: its user id and client code (the dhanClientId or
            # Angel/Fyers client code a client must send along) are the key's first ten
            # characters in capitals, as load tests register the account on our side.
            user_id = api_key[:10].upper()
            account = self.add_account(
                api_key=api_key, api_secret=api_key, user_id=user_id, client_id=user_id
            )
        return account

    def issue_login_code(self, account: Account, **data: str) -> str:
        code = secrets.token_urlsafe(24)
        self.login_codes[code] = (account, data)
        return code

    def consume_login_code(self, code: str) -> tuple[Account, dict[str, str]] | None:
        """Single use: the code is gone after the first attempt, successful or not."""
        return self.login_codes.pop(code, None)

    def issue_token(self, account: Account, *, token: str | None = None) -> Session:
        issued = self.clock()
        session = Session(
            token=token or secrets.token_hex(16),
            account=account,
            issued_at=issued,
            expires_at=issued + self.token_lifetime
            if self.token_lifetime
            else next_ist_cutoff(issued, self.token_cutoff),
        )
        self.sessions[session.token] = session
        return session

    def session_for_token(self, token: str) -> Session:
        session = self.sessions.get(token)
        if session is None and self.options.auto_accounts and token:
            # load tests: the token names its account
            session = self.issue_token(self.account(token), token=token)  # type: ignore[arg-type]
        if session is None or session.revoked:
            raise EmulatorError(ErrorKind.AUTH, "invalid token")
        if self.clock() >= session.expires_at:
            raise EmulatorError(ErrorKind.AUTH, "token expired")
        return session

    def revoke(self, token: str) -> bool:
        session = self.sessions.get(token)
        if session is None:
            return False
        session.revoked = True
        return True

    # write guard
    def client_ip(self, request: web.Request) -> str:
        if self.options.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded:
                return forwarded.split(",")[0].strip()
        return request.remote or ""

    def check_ip(self, account: Account, request: web.Request) -> None:
        registered = account.registered_ip or self.options.registered_ip
        if self.client_ip(request) != registered:
            raise EmulatorError(ErrorKind.IP, "request IP is not a registered static IP")

    def check_rate(self, account: Account) -> None:
        """Sliding windows over admitted writes: the 11th write inside any 1 s is refused."""
        now = time.monotonic()
        for (span, limit), window in zip(self.rate_windows, account.windows, strict=True):
            while window and now - window[0] >= span:
                window.popleft()
            if len(window) >= limit:
                raise EmulatorError(ErrorKind.RATE, "too many requests")
        for window in account.windows:
            window.append(now)

    # orders
    def next_order_id(self) -> str:
        return f"{self._order_id_prefix}{next(self._order_ids):013d}"

    def create_order(self, account: Account, spec: OrderSpec, *, fault: str | None) -> Order:
        quote = self.quotes.quote(spec.exchange, spec.tradingsymbol)
        unlisted = (
            self.options.listed_only
            and spec.exchange in ("NFO", "BFO")
            and spec.tradingsymbol not in self.contract_by_symbol
        )
        if quote is None or unlisted:
            raise EmulatorError(ErrorKind.INPUT, f"unknown instrument {spec.tradingsymbol}")
        limit = spec.price if spec.order_type == "LIMIT" else protection_price(spec, quote)
        if spec.side == "BUY":
            cost = limit * spec.quantity
            if cost > account.cash:
                raise EmulatorError(
                    ErrorKind.MARGIN,
                    f"Insufficient funds. Required margin is {cost:.2f} but available "
                    f"margin is {account.cash:.2f}.",
                )
        now = self.clock()
        order = Order(
            order_id=self.next_order_id(),
            account=account,
            spec=spec,
            state=OrderState.RECEIVED,
            placed_at=now,
            updated_at=now,
            limit_price=limit,
        )
        order.history.append((OrderState.RECEIVED, now, ""))
        delay = self.options.fill_delay_ms / 1000
        due = time.monotonic() + delay
        if fault == "reject-later":
            order.plan.append((due, -1))
        elif self.options.partial_fills and spec.quantity > 1:
            order.plan.extend(((due, spec.quantity // 2), (due + delay, 0)))
        else:
            order.plan.append((due, 0))
        self.orders[order.order_id] = order
        account.orders[order.order_id] = order
        self.settle(order)
        return order

    def settle(self, order: Order) -> Order:
        """Advance an order along its plan up to now (lazily, when somebody looks)."""
        now_mono = time.monotonic()
        while order.plan and order.plan[0][0] <= now_mono and not order.state.is_final:
            if order.state == OrderState.RECEIVED:
                self._transition(order, OrderState.OPEN, "")
            _due, quantity = order.plan[0]
            if quantity == -1:
                order.plan.popleft()
                self._transition(order, OrderState.REJECTED, "RMS: order rejected by the OMS")
                break
            quote = self.quotes.quote(order.spec.exchange, order.spec.tradingsymbol)
            fill_price = marketable_price(order, quote)
            if fill_price is None:
                break  # a resting LIMIT: stays open until the market reaches it
            order.plan.popleft()
            remaining = order.spec.quantity - order.filled_quantity
            self._fill(order, min(quantity or remaining, remaining), fill_price)
        return order

    def settle_all(self, account: Account) -> list[Order]:
        return [self.settle(order) for order in account.orders.values()]

    def book(self, account: Account) -> list[Order]:
        """The account's orders as its order book and tag lookups show them: a lagging book
        (`book_lag_ms`) leaves out orders younger than the lag; `book_fails` refuses."""
        if self.options.book_fails or self.tag_faults.book_fails(account.api_key):
            raise EmulatorError(ErrorKind.SERVER, "order book unavailable", status=503)
        orders = self.tag_faults.visible(self.settle_all(account))
        if not self.options.book_lag_ms:
            return orders
        visible_from = self.clock() - timedelta(milliseconds=self.options.book_lag_ms)
        return [o for o in orders if o.placed_at <= visible_from]

    def _fill(self, order: Order, quantity: int, price: Decimal) -> None:
        trade_id = f"{self._order_id_prefix[-2:]}{next(self._trade_ids):06d}"
        order.fills.append(Fill(trade_id, quantity, price, self.clock()))
        order.filled_quantity += quantity
        order.fill_value += price * quantity
        sign = -1 if order.spec.side == "BUY" else 1
        order.account.cash += sign * price * quantity
        if order.filled_quantity >= order.spec.quantity:
            self._transition(order, OrderState.COMPLETE, "")
        else:
            order.updated_at = self.clock()

    def _transition(self, order: Order, state: OrderState, message: str) -> None:
        order.state = state
        order.status_message = message
        order.updated_at = self.clock()
        order.history.append((state, order.updated_at, message))

    def find_order(self, account: Account, order_id: str) -> Order:
        order = account.orders.get(order_id)
        if order is None:
            raise EmulatorError(ErrorKind.NOT_FOUND, "order not found")
        return self.settle(order)

    def cancel(self, order: Order) -> None:
        if order.state.is_final:
            raise EmulatorError(
                ErrorKind.ORDER, f"order is already {order.state.value}, it cannot be cancelled"
            )
        order.plan.clear()
        self._transition(order, OrderState.CANCELLED, "cancelled by the user")

    def modify(
        self, order: Order, *, quantity: int | None, price: Decimal | None, max_modifications: int
    ) -> None:
        if order.state.is_final:
            raise EmulatorError(
                ErrorKind.ORDER, f"order is already {order.state.value}, it cannot be modified"
            )
        if order.modifications >= max_modifications:
            raise EmulatorError(
                ErrorKind.ORDER, f"maximum of {max_modifications} modifications reached"
            )
        if quantity is not None and quantity < order.filled_quantity:
            raise EmulatorError(ErrorKind.INPUT, "quantity is below the filled quantity")
        changes: dict[str, Any] = {}
        if quantity is not None:
            changes["quantity"] = quantity
        if price is not None:
            changes["price"] = price
            order.limit_price = price
        order.spec = dataclasses.replace(order.spec, **changes)
        order.modifications += 1
        if not order.plan:
            order.plan.append((time.monotonic(), 0))
        self.settle(order)

    def positions(self, account: Account) -> list[PositionRow]:
        totals: dict[tuple[str, str, str], list[Any]] = {}
        for order in self.settle_all(account):
            if not order.filled_quantity:
                continue
            key = (order.spec.exchange, order.spec.tradingsymbol, order.spec.product)
            row = totals.setdefault(key, [0, Decimal("0"), 0, Decimal("0"), order.spec])
            index = 0 if order.spec.side == "BUY" else 2
            row[index] += order.filled_quantity
            row[index + 1] += order.fill_value
        result = []
        for (exchange, symbol, product), (bq, bv, sq, sv, spec) in totals.items():
            quote = self.quotes.quote(exchange, symbol)
            result.append(
                PositionRow(
                    exchange=exchange,
                    tradingsymbol=symbol,
                    product=product,
                    instrument_token=spec.instrument_token,
                    buy_quantity=bq,
                    buy_value=bv,
                    sell_quantity=sq,
                    sell_value=sv,
                    last_price=quote.last_price if quote else Decimal("0"),
                )
            )
        return result

    def basket_margin(self, legs: list[tuple[str, str, str, int]]) -> tuple[Decimal, Decimal]:
        """(initial, final) margin of a basket of (exchange, Kite-style symbol, side, quantity)
        legs, the emulator's simple model: a long pays its premium at the ask; a short blocks
        `short_margin_pct` of its strike notional less its premium at the bid (initial); in
        `final` a short covered by a long of the same underlying, expiry, type and quantity
        (a spread) blocks at most the strikes' width instead (the hedge benefit)."""
        pct = Decimal(str(self.options.short_margin_pct)) / 100
        self.master_contracts()  # today's master indexed (built on a day's first use)
        contracts = {}
        for exchange, symbol, side, quantity in legs:
            contract = self.contract_by_symbol.get(symbol)
            quote = self.quotes.quote(exchange, symbol)
            if contract is None or quote is None or quantity <= 0 or side not in ("BUY", "SELL"):
                raise EmulatorError(ErrorKind.INPUT, f"Invalid instrument or leg: {symbol}.")
            contracts[symbol] = (contract, quote)
        initial = final = Decimal(0)
        longs = [
            (contracts[symbol][0], quantity) for _, symbol, side, quantity in legs if side == "BUY"
        ]
        for _, symbol, side, quantity in legs:
            contract, quote = contracts[symbol]
            if side == "BUY":
                cost = quote.ask * quantity
                initial += cost
                final += cost
                continue
            blocked = max(contract.strike * quantity * pct - quote.bid * quantity, Decimal(0))
            initial += blocked
            hedge = next(
                (
                    c
                    for c, q in longs
                    if q == quantity
                    and (c.underlying, c.expiry, c.option_type)
                    == (contract.underlying, contract.expiry, contract.option_type)
                ),
                None,
            )
            width = None if hedge is None else abs(hedge.strike - contract.strike) * quantity
            final += blocked if width is None else min(blocked, width)
        return initial.quantize(Decimal("0.01")), final.quantize(Decimal("0.01"))

    def premium_paid(self, account: Account) -> Decimal:
        """Net option premium paid today (the emulator models cash, not SPAN/exposure)."""
        paid = Decimal("0")
        for order in account.orders.values():
            sign = 1 if order.spec.side == "BUY" else -1
            paid += sign * order.fill_value
        return paid

    # order log
    def log_order(self, request: web.Request, **entry: Any) -> dict[str, Any]:
        record = {
            "seq": len(self.order_log) + 1,
            "arrival_ns": request.get(ARRIVAL_NS, time.time_ns()),
            "method": request.method,
            "path": request.path,
            **entry,
        }
        self.order_log.append(record)
        return record

    def note_traffic(self, request: web.Request, arrival_ns: int) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else request.path
        self.traffic.append((arrival_ns, f"{request.method} {route}"))

    def traffic_between(self, since_ns: int, until_ns: int) -> dict[str, Any]:
        """The broker-API requests that arrived in [since_ns, until_ns] by route, and the
        connections accepted in that window (the control plane's too)."""
        counts: dict[str, int] = {}
        for arrival_ns, route in self.traffic:
            if since_ns <= arrival_ns <= until_ns:
                counts[route] = counts.get(route, 0) + 1
        opened = sum(1 for at in self.connections_opened if since_ns <= at <= until_ns)
        return {"requests": counts, "new_connections": opened}

    def flush_log(self) -> None:
        path = self.options.order_log
        if not path or self._log_cursor >= len(self.order_log):
            return
        pending = self.order_log[self._log_cursor :]
        self._log_cursor = len(self.order_log)
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(e, default=str) + "\n" for e in pending))


def protection_price(spec: OrderSpec, quote: MarketQuote) -> Decimal:
    """A protected MARKET order becomes a LIMIT at last price ± protection % (-1 = the
    broker's automatic protection, taken here as 2 %), rounded to the tick."""
    percent = spec.market_protection
    if percent <= 0:
        percent = Decimal("2")
    move = quote.last_price * percent / 100
    raw = quote.last_price + move if spec.side == "BUY" else quote.last_price - move
    tick = quote.tick_size
    ticks = (raw / tick).to_integral_value(rounding=ROUND_HALF_UP)
    return max(tick, ticks * tick)


def marketable_price(order: Order, quote: MarketQuote | None) -> Decimal | None:
    """The fill price if the order's limit meets the touch now, else None."""
    if quote is None:
        return None
    if order.spec.side == "BUY":
        return quote.ask if quote.ask <= order.limit_price else None
    return quote.bid if quote.bid >= order.limit_price else None


# --- server --------------------------------------------------------------------------------
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BrokerEmulator:
    """Base of one broker's emulator. See the module docstring for how to add a broker."""

    name: ClassVar[str]
    token_cutoff: ClassVar[dtime]
    rate_windows: ClassVar[tuple[tuple[float, int], ...]] = ((1.0, 10),)
    hosts: ClassVar[tuple[str, ...]] = ("api",)
    login_path: ClassVar[str] = "/"  # where the trader's browser is sent to log in
    # The HTTP status of the `5xx` fault (refused before acceptance): the broker's documented
    # "not accepted" status where it has one (Kite: 502, OMS down), else 503.
    refused_status: ClassVar[int] = 503
    max_modifications: ClassVar[int] = 25

    def __init__(
        self,
        options: EmulatorOptions,
        *,
        quotes: QuoteSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        from brokers.emulator.pricing import SimulatedQuotes

        self.options = options
        self.clock = clock or Clock()
        self.state = EmulatorState(
            options,
            token_cutoff=self.token_cutoff,
            rate_windows=self.rate_windows,
            quotes=quotes or SimulatedQuotes(seed=options.market_seed, clock=self.clock),
            clock=self.clock,
        )
        self.state.master.on_change.append(self._register_master)

    # --- to implement per broker ----------------------------------------------------------
    def routes(self, host: str) -> Iterable[web.RouteDef]:
        raise NotImplementedError

    def error_response(self, err: EmulatorError) -> web.Response:
        raise NotImplementedError

    def authenticate(self, request: web.Request) -> Session:
        raise NotImplementedError

    @classmethod
    def load_request(
        cls, *, api_key: str, n: int, symbol: str
    ) -> tuple[str, str, dict[str, str], dict[str, str] | None, Any]:
        """One order request for the load test, for an emulator started with auto_accounts
        (the access token equals the api key): (host, path, headers, form, json body)."""
        raise NotImplementedError

    @classmethod
    def load_instruments(cls, symbol: str) -> list[dict[str, str]]:
        """Instrument keys the load test must register first (EmulatorHandle.add_instruments
        rows) when the broker's orders name instruments by id rather than by symbol."""
        return []

    def master_keys(self, contract: Contract) -> Iterable[tuple[str, str]]:
        """(instrument id, the broker's trading symbol) under which this broker names a
        contract of the master; registered in the instrument table when the master is built."""
        return ()

    def index_keys(self, index: IndexRow) -> Iterable[tuple[str, str]]:
        """The same for an index (quotes only)."""
        return ()

    def _register_master(self, contracts: Iterable[Contract]) -> None:
        keys = self.state.instrument_keys
        for contract in contracts:
            for key, broker_symbol in self.master_keys(contract):
                keys[key] = (contract.exchange, contract.kite_symbol, broker_symbol)
        for index in INDICES:
            for key, broker_symbol in self.index_keys(index):
                keys[key] = (index.exchange, index.name, broker_symbol)

    def master_response(self) -> web.Response | None:
        """The refusal or broken file the master's download mode asks for, else None."""
        mode = self.state.master.mode
        if mode == "missing":
            return web.Response(status=404, text="Not Found")
        if mode == "corrupt":
            return web.Response(
                body=b"\x1f\x8b\x00garbage<html>", content_type="application/octet-stream"
            )
        return None

    # --- shared flows ---------------------------------------------------------------------
    async def guard_write(self, request: web.Request, session: Session, *, kind: str) -> None:
        """IP and rate checks of a write, each refusal logged with its arrival time."""
        try:
            self.state.check_ip(session.account, request)
            self.state.check_rate(session.account)
        except EmulatorError as err:
            self.state.log_order(
                request, kind=kind, account=session.account.api_key, outcome=err.kind.value
            )
            raise

    async def place(
        self,
        request: web.Request,
        session: Session,
        spec_or_parser: OrderSpec | Callable[[], OrderSpec],
        *,
        kind: str = "place",
    ) -> Order:
        """The order pipeline: guard → parse → fault → create → log. Returns the order for
        the broker to render; raises EmulatorError for refusals. `drop`/`hang` never return
        to the broker module (the connection is closed here)."""
        account = session.account
        await self.guard_write(request, session, kind=kind)
        try:
            spec = spec_or_parser() if callable(spec_or_parser) else spec_or_parser
        except EmulatorError as err:
            self.state.log_order(request, kind=kind, account=account.api_key, outcome="invalid")
            raise err
        log = {"kind": kind, "account": account.api_key, "tag": spec.tag, "algo_id": spec.algo_id}
        planned = self._planned_fault(request, account, spec.tag, log)
        fault = ANSWER[planned.kind] if planned else self.state.faults.next()
        if fault == "5xx":
            self.state.log_order(request, **log, outcome="server_error", fault=fault)
            raise EmulatorError(
                ErrorKind.SERVER, "OMS is unavailable, try again", status=self.refused_status
            )
        if fault == "reject":
            self.state.log_order(request, **log, outcome="rejected", fault=fault)
            raise EmulatorError(ErrorKind.ORDER, "RMS: order rejected by the OMS")
        try:
            order = self.state.create_order(account, spec, fault=fault)
        except EmulatorError as err:
            self.state.log_order(request, **log, outcome=err.kind.value)
            raise
        if planned is not None:
            self.state.tag_faults.created(planned, order)
        self.state.log_order(
            request,
            **log,
            order_id=order.order_id,
            outcome=fault or "accepted",
            fault=planned.kind if planned else fault,
        )
        if fault in ("drop", "hang"):
            await self._lose_response(request, hang=fault == "hang")
        if fault == "5xx-after":
            # Accepted by the OMS, then the gateway failed: the order exists.
            raise EmulatorError(ErrorKind.SERVER, "Internal server error", status=500)
        return order

    def _planned_fault(
        self, request: web.Request, account: Account, tag: str, log: dict[str, Any]
    ) -> TagFault | None:
        """The fault the control plane planned for this write (brokers.emulator.tagfaults):
        raises the refusals (account down, a 429 of a burst); returns an answer-losing one."""
        tag_faults = self.state.tag_faults
        if account.api_key in tag_faults.down:
            self.state.log_order(request, **log, outcome="server_error", fault="down")
            raise EmulatorError(
                ErrorKind.SERVER, "OMS is unavailable, try again", status=self.refused_status
            )
        planned = tag_faults.take(tag)
        if planned is not None and planned.kind == "429":
            self.state.log_order(request, **log, outcome="rate", fault="429")
            raise EmulatorError(ErrorKind.RATE, "too many requests")
        return planned

    async def _lose_response(self, request: web.Request, *, hang: bool) -> None:
        if hang:
            await asyncio.sleep(self.options.hang_seconds)
        if request.transport is not None:
            request.transport.abort()
        raise ResponseLost

    # --- application ----------------------------------------------------------------------
    def make_apps(self) -> dict[str, web.Application]:
        from brokers.emulator.control import control_routes

        apps = {}
        for host in self.hosts:
            app = web.Application(middlewares=[self._middleware], client_max_size=1 << 20)
            app.add_routes(list(self.routes(host)))
            if host == self.hosts[0]:
                app.add_routes(control_routes(self))
                app.cleanup_ctx.append(self._log_flusher)
            apps[host] = app
        return apps

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request[ARRIVAL_NS] = arrival_ns = time.time_ns()
        self._last_request = time.monotonic()
        if not request.path.startswith("/_emulator/"):
            self.state.note_traffic(request, arrival_ns)
        self.state.master_contracts()
        if self._busy_since is None:
            self._busy_since = self._last_request
        if self.options.latency_ms and not request.path.startswith("/_emulator/"):
            await asyncio.sleep(self.options.latency_ms / 1000)
        try:
            return await handler(request)
        except EmulatorError as err:
            return self.error_response(err)
        except ResponseLost:
            # The transport is closed: answer nothing; aiohttp discards this response.
            return web.Response(status=499)

    # Housekeeping (writing the order log, and in a process of its own the garbage collection)
    # waits for a quiet moment, so that it never shows up as broker latency in a burst; it
    # runs anyway once traffic has gone on for HOUSEKEEPING_MAX_WAIT without a pause.
    HOUSEKEEPING_QUIET = 0.3
    HOUSEKEEPING_MAX_WAIT = 5.0
    _last_request = 0.0
    _busy_since: float | None = None  # the first request since the last housekeeping
    collect_garbage = False  # set by `python -m brokers.emulator`, which disables automatic GC

    def housekeeping_due(self, now: float) -> bool:
        """Due when requests came since the last run, and they have stopped for a moment or
        have gone on without a pause for HOUSEKEEPING_MAX_WAIT."""
        if self._busy_since is None:
            return False  # nothing happened since: nothing to write or collect
        quiet = now - self._last_request >= self.HOUSEKEEPING_QUIET
        return quiet or now - self._busy_since >= self.HOUSEKEEPING_MAX_WAIT

    def housekeep(self) -> None:
        self._busy_since = None
        self.state.flush_log()
        if self.collect_garbage:
            gc.collect()

    async def _log_flusher(self, app: web.Application) -> Any:
        async def loop() -> None:
            while True:
                await asyncio.sleep(0.1)
                if self.housekeeping_due(time.monotonic()):
                    self.housekeep()

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.state.flush_log()


class ResponseLost(Exception):
    """Raised after the connection was deliberately closed (accept-then-drop)."""


# --- small helpers for broker modules ------------------------------------------------------
def decimal_or_error(value: Any, field: str) -> Decimal:
    try:
        result = Decimal(str(value))
    except (ArithmeticError, ValueError) as err:
        raise EmulatorError(ErrorKind.INPUT, f"Invalid `{field}`.") from err
    if not result.is_finite():
        raise EmulatorError(ErrorKind.INPUT, f"Invalid `{field}`.")
    return result


def int_or_error(value: Any, field: str) -> int:
    try:
        return int(str(value))
    except ValueError as err:
        raise EmulatorError(ErrorKind.INPUT, f"Invalid `{field}`.") from err


async def json_object(request: web.Request, message: str = "Invalid request body.") -> dict:
    """The request's JSON object body; anything else is the broker's input error."""
    try:
        body = await request.json()
    except ValueError as err:
        raise EmulatorError(ErrorKind.INPUT, message) from err
    if not isinstance(body, dict):
        raise EmulatorError(ErrorKind.INPUT, message)
    return body


def ist(moment: datetime) -> datetime:
    return moment.astimezone(IST)


def ist_text(moment: datetime) -> str:
    """'YYYY-MM-DD HH:MM:SS' in IST, the timestamp format Kite and Upstox use."""
    return ist(moment).strftime("%Y-%m-%d %H:%M:%S")


def today_ist(clock: Clock) -> date:
    return clock().astimezone(IST).date()


def consent_page(*, broker: str, action: str, user_id: str, fields: dict[str, str]) -> web.Response:
    """The broker's login/consent page, reduced to one form: the trader (or a test, through
    EmulatorHandle.approve_login) submits it to approve the app."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    body = (
        f"<!doctype html><html><head><title>{html.escape(broker)} login (emulator)</title>"
        f"</head><body><h1>{html.escape(broker)} (local emulator)</h1>"
        f"<p>Log in as <strong>{html.escape(user_id)}</strong> and allow the app?</p>"
        f'<form method="post" action="{html.escape(action)}">{hidden}'
        '<button type="submit">Log in and allow</button></form></body></html>'
    )
    return web.Response(text=body, content_type="text/html")


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` appended to its query string (redirects back to the app)."""
    separator = "&" if urlsplit(url).query else "?"
    return url + separator + urlencode(params)


def number(value: Decimal | int) -> float | int:
    """JSON number as the brokers send it (floats for prices and money)."""
    return value if isinstance(value, int) else float(value)
