"""Plumbing shared by the broker adapters' thin `requests` clients.

Transport failures are classified here, once, the same way for every broker:

- the connection was never made (refused, connect timeout): the broker saw nothing, so the
  call can be sent again -> RetryableError;
- HTTP 429 -> RetryableError; a 5xx on a write -> AmbiguousError unless the broker documents
  that status as "not accepted" (classify_transport_status);
- the request left and the answer was lost (read timeout, connection reset or closed after
  sending): for a write the order may exist -> AmbiguousError; a read can simply be repeated
  -> RetryableError.

An order POST is never retried here: the caller decides, after classification.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote_plus

import requests
from requests.adapters import HTTPAdapter
from requests.compat import json as requests_json  # type: ignore[attr-defined]
from urllib3.exceptions import MaxRetryError, NewConnectionError

from brokers.base import (
    AmbiguousError,
    BrokerError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    WireAnswer,
    WireRequest,
)
from execution.markettime import IST

logger = logging.getLogger(__name__)


# Seconds. The connect timeout is short (a broker that does not accept a TCP connection within
# it is down); the read timeout bounds how long an order may stay unanswered before we treat
# it as ambiguous and reconcile by tag.
DEFAULT_CONNECT_TIMEOUT = 3.05
DEFAULT_READ_TIMEOUT = 7.0
DEFAULT_RETRY_AFTER = 1.0

# What the parsers read: a requests.Response (reads) or an order write's WireAnswer.
AnswerLike = requests.Response | WireAnswer


class HttpClient:
    """One pooled `requests.Session` with explicit timeouts and transport classification."""

    def __init__(
        self,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        pool_size: int = 16,
    ) -> None:
        self.timeout = (connect_timeout, read_timeout)
        self.session = requests.Session()
        # requests' default adapter retries nothing once a request has been sent (read=False);
        # keep that default and only widen the pool so parallel legs reuse connections.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def send(self, method: str, url: str, *, write: bool, **kwargs: Any) -> requests.Response:
        """Send one request. Raises RetryableError or AmbiguousError on transport failure."""
        try:
            return self.session.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise transport_failure("connect timeout", write=write) from exc
        except requests.ReadTimeout as exc:
            raise transport_failure("timeout", write=write) from exc
        except requests.ConnectionError as exc:
            kind = "connect" if _never_connected(exc) else "dropped"
            raise transport_failure(kind, write=write) from exc
        except requests.RequestException as exc:
            raise transport_failure("cut off", write=write) from exc

    def exchange(self, request: WireRequest) -> WireAnswer:
        """Send a prepared order write; its answer, or a WireAnswer naming the failure (the
        adapter's order_answer classifies it). Never raises for transport failures."""
        try:
            response = self.session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=self.timeout,
            )
        except requests.ConnectTimeout:
            return WireAnswer(failure="connect timeout")
        except requests.ReadTimeout:
            return WireAnswer(failure="timeout")
        except requests.ConnectionError as exc:
            return WireAnswer(failure="connect" if _never_connected(exc) else "dropped")
        except requests.RequestException:
            return WireAnswer(failure="cut off")
        return WireAnswer.of(response.status_code, response.headers, response.content)

    def close(self) -> None:
        self.session.close()


def prepare(
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    data: dict[str, str] | None = None,
    json: Any = None,
) -> WireRequest:
    """An order write built the way requests would send it (form or JSON body, its
    Content-Type), as plain data: nothing is sent."""
    prepared = requests.Request(method, url, headers=headers, data=data, json=json).prepare()
    body = prepared.body or b""
    return WireRequest(
        method=str(prepared.method),
        url=str(prepared.url),
        headers={k: str(v) for k, v in prepared.headers.items()},
        body=body.encode() if isinstance(body, str) else body,
    )


# The bytes `prepare` writes for one value, for the adapters' OrderTemplate declarations:
# requests encodes a form with urlencode (quote_plus, nothing safe) and JSON with its own json
# module (simplejson when installed), default separators and ASCII escapes.
def form_value(text: str) -> bytes:
    """A form field's value as `prepare(data=…)` writes it."""
    return quote_plus(text.encode("utf-8"), safe="").encode("ascii")


def json_value(value: Any) -> bytes:
    """A JSON value (a string with its quotes, a number) as `prepare(json=…)` writes it."""
    return requests_json.dumps(value, allow_nan=False).encode("utf-8")


def raise_on_failure(answer: WireAnswer) -> None:
    """A write that got no answer: the classified error of its kind (ambiguous unless it
    certainly never reached the broker)."""
    if answer.failure:
        raise transport_failure(answer.failure, write=True)


def _never_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def transport_failure(kind: str, *, write: bool) -> BrokerError:
    """The classified error of a request that got no answer. `kind`: "connect" or "connect
    timeout" (nothing reached the broker), "timeout", "dropped" or "cut off" (the request
    left; for a write the order may exist)."""
    if kind == "connect":
        return RetryableError("The broker refused the connection.")
    if kind == "connect timeout":
        return RetryableError("The broker did not accept a connection in time.")
    message = {
        "timeout": "The broker did not answer in time.",
        "dropped": "The connection to the broker dropped.",
    }.get(kind, "The broker's answer was cut off.")
    if write:
        return AmbiguousError(message + " The order may exist: look it up by tag.")
    return RetryableError(message)


def _header(response: Any, name: str) -> str | None:
    """A header of a requests.Response (case-insensitive) or a WireAnswer (lower-cased)."""
    if isinstance(response, WireAnswer):
        return response.header(name)
    value = response.headers.get(name)
    return None if value is None else str(value)


def retry_after_seconds(response: AnswerLike) -> float:
    """The broker's Retry-After (seconds) or X-Retry-After-Ms hint, else one second."""
    header = _header(response, "Retry-After")
    if header:
        try:
            return max(float(header), 0.0)
        except ValueError:
            pass
    millis = _header(response, "X-Retry-After-Ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    return DEFAULT_RETRY_AFTER


def classify_transport_status(
    response: AnswerLike,
    *,
    write: bool,
    body: Any = None,
    message: str = "",
    not_accepted: frozenset[int] = frozenset(),
) -> BrokerError | None:
    """The class of a 429 or 5xx answer, common to all brokers; None for anything else.

    A 429 was refused before acceptance (retry after the hint). A 5xx on an order write is
    ambiguous: the OMS may have accepted the order before the gateway failed, so it is looked
    up by tag, never sent again; the exceptions are the statuses the broker documents as "not
    accepted" (`not_accepted`, each cited where the broker's parsing passes it). On a read a
    5xx is retryable."""
    status = response.status_code
    if status == 429:
        return RateLimitedError(
            message or "Too many requests to the broker.",
            retry_after=retry_after_seconds(response),
            http_status=status,
            raw=body,
        )
    if status >= 500 and write and status not in not_accepted:
        return AmbiguousError(
            message
            or f"The broker failed (HTTP {status}) after the order may have reached "
            "it: look it up by tag.",
            http_status=status,
            raw=body,
        )
    if status >= 500:
        return RetryableError(
            message or f"The broker had an internal error (HTTP {status}).",
            retry_after=retry_after_seconds(response),
            http_status=status,
            raw=body,
        )
    return None


def json_body(response: AnswerLike) -> Any:
    """The decoded JSON body, or None when the broker sent text (some rate-limit replies)."""
    try:
        return response.json()
    except ValueError:
        return None


def parse_ist_timestamp(text: Any) -> datetime | None:
    """`YYYY-MM-DD HH:MM:SS` in IST (Kite's and Upstox's order and login times), else None."""
    if not text:
        return None
    try:
        return datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=IST)
    except ValueError:
        return None


def to_decimal(value: Any, default: Decimal = Decimal(0)) -> Decimal:
    """Brokers send numbers as JSON numbers or strings; empty and missing become `default`."""
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return default


def to_int(value: Any) -> int:
    return int(to_decimal(value))


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT (read, not verified), as an aware UTC datetime."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None


def unreadable_answer(response: AnswerLike, *, write: bool, broker: str) -> BrokerError:
    """A body that is not the broker's JSON. A 2xx we cannot read may still be an accepted
    order (ambiguous for a write); anything else is a refusal in words we cannot parse."""
    text = (response.text or "")[:200]
    if response.ok:
        if write:
            return AmbiguousError(f"{broker} sent an answer we could not read.", raw=text)
        return RetryableError(f"{broker} sent an answer we could not read.", raw=text)
    return PermanentError(
        f"{broker} refused the request (HTTP {response.status_code}).",
        http_status=response.status_code,
        raw=text,
    )
