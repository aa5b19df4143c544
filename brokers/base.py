"""The one interface every broker adapter implements, and the one error taxonomy.

Adapters are thin `requests` clients. They translate our dataclasses to the broker's fields
and the broker's answers back, and they decide, once, at this boundary, what kind of failure
an error is:

- PermanentError: sending again cannot help (bad credentials, expired token, input rejected,
  static IP not registered, insufficient funds).
- RetryableError: the broker certainly did not accept the request (HTTP 429, or a 5xx that the
  broker documents as "not accepted"); may be retried after `retry_after` seconds.
- AmbiguousError: the request left and the answer was lost (timeout, connection reset after
  sending). The order may exist: it must be looked up by tag, never sent again blindly.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from typing import Any, ClassVar

from execution.markettime import IST


class Side(enum.StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(enum.StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class Product(enum.StrEnum):
    NRML = "NRML"  # carried overnight (positional)
    MIS = "MIS"  # intraday, squared off by the broker before the close


class OrderStatus(enum.StrEnum):
    """Our statuses; each adapter maps the broker's onto these."""

    PENDING = "pending"  # accepted by the broker OMS, not yet confirmed open at the exchange
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED}


@dataclass(frozen=True)
class Credentials:
    """What an adapter needs to act for one account (decrypted only in memory)."""

    api_key: str = ""
    api_secret: str = ""
    access_token: str = ""
    client_id: str = ""  # broker user id where the API needs one (Angel One, Dhan, Fyers app id)
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    issued_at: datetime
    expires_at: datetime
    refresh_token: str = ""
    broker_user_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRequest:
    exchange: str  # NFO or BFO
    tradingsymbol: str  # the broker's own symbol for the contract
    side: Side
    quantity: int  # units, a multiple of the lot size
    order_type: OrderType
    product: Product
    tag: str  # our client tag: alphanumeric, at most 20 characters, unique per order
    price: Decimal | None = None  # LIMIT price
    market_protection: Decimal | None = None  # percent; required by some brokers for MARKET
    instrument_token: str = ""  # the broker's numeric token, where its API wants one
    algo_id: str = ""  # exchange algo ID (SEBI retail-algo framework)


@dataclass(frozen=True)
class WireRequest:
    """An order write as an adapter builds it, not yet sent: what goes on the wire."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


# One contract value as `order_request` writes it into its request: (value, exchange) -> the
# exact bytes standing for it (encoded for the body: form field, JSON string, JSON number).
# The value is a str for the symbol and the token, a Decimal for the price.
FieldEncoder = Callable[[Any, str], bytes]


@dataclass(frozen=True)
class OrderTemplate:
    """How the contract's values stand in an adapter's `order_request`, so that the engine can
    build an order's request before its contract is known (before T - ε: a placeholder in
    place of the symbol) and fill the contract in later by joining bytes, without building it
    again. Each of the three contract fields is either encoded (a FieldEncoder giving exactly
    the bytes `order_request` writes for it), or `UNWRITTEN` (the request does not depend on
    it), or None (not declared: an order needing it is built in full once it is known). The
    declaration is proved per adapter, byte for byte, by tests/brokers/test_order_templates.py;
    the engine still refuses a template whose marker does not appear exactly once."""

    tradingsymbol: FieldEncoder | str | None = None
    instrument_token: FieldEncoder | str | None = None
    price: FieldEncoder | str | None = None

    def encoder(self, name: str) -> FieldEncoder | str | None:
        """The FieldEncoder of field `name`, UNWRITTEN, or None (not declared)."""
        return getattr(self, name, None)  # type: ignore[no-any-return]


UNWRITTEN = "unwritten"


@dataclass(frozen=True)
class WireAnswer:
    """The one answer type of an order write, whoever carried it (requests on the synchronous
    path, the engine's wire client on the lane): status, headers (names lower-cased) and body
    bytes, or `failure` when no answer came ("connect", "connect timeout": never reached the
    broker; "timeout", "dropped", "cut off": the request may have). It offers the few
    attributes of requests.Response that the brokers' parsers read."""

    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    failure: str = ""

    @classmethod
    def of(cls, status: int, headers: Any, body: bytes) -> WireAnswer:
        return cls(status, {str(k).lower(): str(v) for k, v in dict(headers).items()}, body)

    @property
    def status_code(self) -> int:
        return self.status

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


@dataclass(frozen=True)
class OrderAck:
    broker_order_id: str
    received_at: datetime  # when our client got the answer
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BrokerOrder:
    broker_order_id: str
    tag: str
    tradingsymbol: str
    side: Side
    quantity: int
    filled_quantity: int
    average_price: Decimal | None
    status: OrderStatus
    status_message: str = ""
    placed_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Position:
    exchange: str
    tradingsymbol: str
    product: Product
    quantity: int  # net, signed: negative is short
    average_price: Decimal
    last_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal


@dataclass(frozen=True)
class Funds:
    available: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True)
class MarginEstimate:
    """The broker's margin estimate for a basket of orders: `initial` counts each order
    alone, `final` after the hedge benefit of the basket (the figure to compare with funds)."""

    initial: Decimal
    final: Decimal


@dataclass(frozen=True)
class Quote:
    tradingsymbol: str
    last_price: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    oi: int | None = None  # open interest, where the broker's quote carries it


@dataclass(frozen=True)
class Capabilities:
    lookup_by_tag: bool  # the API finds an order by our tag directly (else: scan the book)
    market_protection_required: bool  # MARKET orders must carry a protection percentage
    modify: bool = True
    postback: bool = False  # the broker pushes order updates to a URL of ours
    needs_app_credentials: bool = True  # the trader enters an API key and secret
    max_tag_length: int = 20
    # False: MARKET orders from algos are refused (Angel One since 1-Apr-2026); the engine
    # sends a marketable LIMIT priced from its quote instead (execution/intents/marketable.py).
    market_orders_allowed: bool = True
    # Where an order carries the exchange algo ID (SEBI retail-algo framework): the broker's
    # documented field or header, "" where the broker documents none (README broker table).
    algo_id_field: str = ""
    # The broker estimates the margin of a basket of orders (BrokerAdapter.basket_margin).
    basket_margin: bool = False


class BrokerError(Exception):
    """Base of the taxonomy. `message` is in words a trader can read."""

    def __init__(
        self, message: str, *, code: str = "", http_status: int | None = None, raw: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.raw = raw


class PermanentError(BrokerError):
    """Sending again cannot succeed."""


class AuthError(PermanentError):
    """The token is missing, invalid or expired: the trader must log in again."""


class StaticIPError(PermanentError):
    """The broker refused a write from an IP that is not registered for this account."""


class InputRejectedError(PermanentError):
    """The broker refused the order's contents (quantity, symbol, price, funds…)."""


class RetryableError(BrokerError):
    """Not accepted by the broker; safe to send again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitedError(RetryableError):
    """HTTP 429: over the broker's orders-per-second (or per-minute) limit."""


class AmbiguousError(BrokerError):
    """The request may have reached the broker: look the order up by tag before anything else."""


class BrokerAdapter(abc.ABC):
    """One broker's API behind our interface. Instances are cheap; one per account and call
    site. Every network method raises only BrokerError subclasses (with `raise … from`)."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, credentials: Credentials, *, base_url: str | None = None) -> None:
        self.credentials = credentials
        self.base_url = base_url

    # --- login ---------------------------------------------------------------------------
    @abc.abstractmethod
    def login_url(self, *, state: str, redirect_uri: str) -> str:
        """The broker page the trader is sent to; it comes back to redirect_uri with state."""

    @abc.abstractmethod
    def exchange_token(self, *, params: dict[str, str], redirect_uri: str) -> TokenGrant:
        """Turn the callback's query parameters (request token, auth code…) into a token."""

    # --- orders --------------------------------------------------------------------------
    @abc.abstractmethod
    def place_order(self, order: OrderRequest) -> OrderAck:
        """Send one order. Never retried inside: the caller decides after classifying. An
        HTTP adapter does exactly `order_answer(<send>(order_request(order)))`."""

    # The two phases of an order write, for callers that send the bytes themselves (the
    # engine's lane writes prepared requests at T). Adapters that do not speak HTTP (paper)
    # keep these defaults.
    def order_request(self, order: OrderRequest) -> WireRequest:
        """The HTTP request that places `order`, built but not sent. InputRejectedError when
        the order cannot be sent to this broker as it is (checked before anything leaves)."""
        raise NotImplementedError(f"{type(self).__name__} does not speak HTTP")

    def order_answer(self, answer: WireAnswer) -> OrderAck:
        """Read the answer to `order_request`: the acknowledgement, or raise the classified
        BrokerError (a `failure` answer is ambiguous or retryable by its kind)."""
        raise NotImplementedError(f"{type(self).__name__} does not speak HTTP")

    # How the contract's values stand in `order_request` (see OrderTemplate); None: the engine
    # builds every request of this adapter in full once its contract is known.
    order_template: ClassVar[OrderTemplate | None] = None

    @property
    def speaks_http(self) -> bool:
        return type(self).order_request is not BrokerAdapter.order_request

    @abc.abstractmethod
    def order_status(self, broker_order_id: str) -> BrokerOrder: ...

    @abc.abstractmethod
    def find_order_by_tag(self, tag: str) -> BrokerOrder | None:
        """The order we sent with this tag today, or None if the broker has none."""

    @abc.abstractmethod
    def cancel_order(self, broker_order_id: str) -> None: ...

    @abc.abstractmethod
    def modify_order(
        self, broker_order_id: str, *, quantity: int | None = None, price: Decimal | None = None
    ) -> None: ...

    @abc.abstractmethod
    def order_book(self) -> list[BrokerOrder]: ...

    # --- portfolio and data --------------------------------------------------------------
    @abc.abstractmethod
    def positions(self) -> list[Position]: ...

    @abc.abstractmethod
    def funds(self) -> Funds: ...

    @abc.abstractmethod
    def quote(self, instruments: list[str]) -> dict[str, Quote]:
        """Last prices keyed by the instrument strings passed in (broker's own notation)."""

    def basket_margin(self, orders: list[OrderRequest]) -> MarginEstimate:
        """The broker's margin estimate for these orders placed together (where
        `capabilities.basket_margin`); a read: BrokerError as for any read."""
        raise NotImplementedError(f"{type(self).__name__} gives no basket margin estimate")

    @abc.abstractmethod
    def instruments(self) -> list[dict[str, Any]]:
        """The broker's instrument master for F&O, as rows of the broker's own columns."""


def next_ist_cutoff(issued_at: datetime, cutoff: dtime) -> datetime:
    """The first moment at `cutoff` (IST) strictly after `issued_at`: brokers expire access
    tokens at a fixed time of day whatever the issue time (Upstox: issued 02:30, dies 03:30
    the same day). Returned in the tzinfo of `issued_at`'s UTC equivalent."""
    local = issued_at.astimezone(IST)
    candidate = datetime.combine(local.date(), cutoff, tzinfo=IST)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), cutoff, tzinfo=IST)
    return candidate.astimezone(issued_at.tzinfo)
