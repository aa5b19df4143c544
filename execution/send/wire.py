"""The engine's own HTTP/1.1 client for the instant T.

Each order request is built before T by the adapter itself (`order_request`, brokers.base),
serialized to bytes here and written whole, in one `transport.write`, on a keep-alive
connection opened before T. Nothing is encoded, resolved or scheduled at T: a general-purpose
client (aiohttp on Python 3.11) buffers the headers and writes the body from a second task, so
a burst of n requests leaves only after the event loop has taken the first step of all n.

The client is deliberately small: one request in flight per connection (no pipelining),
responses framed by Content-Length, chunked transfer coding or the connection's end, gzip and
deflate bodies decoded. Failures are reported by kind, because the engine treats them
differently: "connect" (nothing was sent: safe to try again), "timeout" and "dropped" (the
request may have reached the broker: the order is looked up by its tag, never sent again).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools

from brokers.base import WireAnswer

CONNECT_TIMEOUT = 3.0
MAX_HEADER_BYTES = 64 * 1024
# Idle keep-alive connections older than this are not written on (servers close idle ones
# after a while, and a write racing that close is a dropped answer: an unknown order).
IDLE_MAX_SECONDS = 20.0
# At most this many idle connections are kept per origin (one per order written at T).
MAX_IDLE_PER_ORIGIN = 4096
NO_BODY_STATUSES = frozenset({204, 304})


class _AfterAnswer(Exception):
    """Raised from a parser callback when a second answer begins: stops the parse."""


class WireFailure(Exception):
    """A request that got no (complete) answer; `kind` is connect, timeout or dropped."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"not an HTTP URL: {url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname or "", port)

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Prepared:
    """One request as the bytes that go on the wire."""

    origin: Origin
    data: bytes


# Answers are brokers.base.WireAnswer: the one answer type of an order write.
Answer = WireAnswer


# Hop-by-hop and framing headers are ours to write.
_OWN_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


def serialize(method: str, url: str, headers: dict[str, str], body: bytes) -> Prepared:
    """The request line, headers and body of one HTTP/1.1 request, ready to write."""
    origin, lines = _head(method, url, headers)
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Prepared(origin, head + body)


def _head(method: str, url: str, headers: dict[str, str]) -> tuple[Origin, list[str]]:
    """The origin, and the request line and headers (no Content-Length) of a request."""
    origin = Origin.of(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method.upper()} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    for name, value in headers.items():
        if name.lower() in _OWN_HEADERS:
            continue
        if "\r" in name or "\n" in name or "\r" in str(value) or "\n" in str(value):
            raise ValueError(f"header {name!r} contains a line break")
        lines.append(f"{name}: {value}")
    return origin, lines


@dataclass(frozen=True)
class Template:
    """A request whose body has gaps for values known later: `fill` joins the parts with the
    values' bytes and sets Content-Length, giving exactly what `serialize` gives for the
    request built with those values (the caller's template contract, brokers.base)."""

    origin: Origin
    head: bytes  # the request line and headers, each ending in CRLF; Content-Length to come
    parts: tuple[bytes, ...]  # the body around the gaps (one more than `gaps`)
    gaps: tuple[str, ...]  # the name of the value filling each gap, in order

    def fill(self, values: dict[str, bytes]) -> Prepared:
        parts = self.parts
        pieces = [parts[0]]
        for index, name in enumerate(self.gaps, 1):
            pieces.append(values[name])
            pieces.append(parts[index])
        body = b"".join(pieces)
        return Prepared(
            self.origin, b"%sContent-Length: %d\r\n\r\n%s" % (self.head, len(body), body)
        )


def template(
    method: str, url: str, headers: dict[str, str], body: bytes, gaps: dict[str, bytes]
) -> Template | None:
    """`serialize`'s request with the bytes of each of `gaps` (name -> the bytes standing for
    that value in `body`) cut out of the body, for `Template.fill`. None when one of them does
    not appear exactly once in the body, or appears in the head, or two overlap: such a
    request is not templated (its caller builds it in full)."""
    origin, lines = _head(method, url, headers)
    head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
    found = []
    for name, marker in gaps.items():
        if not marker or body.count(marker) != 1 or marker in head:
            return None
        found.append((body.index(marker), len(marker), name))
    found.sort()
    parts, names, at = [], [], 0
    for start, size, name in found:
        if start < at:
            return None
        parts.append(body[at:start])
        names.append(name)
        at = start + size
    parts.append(body[at:])
    return Template(origin, head, tuple(parts), tuple(names))


class _Response:
    """One response, parsed by llhttp (Node's HTTP parser, through httptools): `feed` returns
    True once it is complete. Measured on the 1,600 answers of the boundary bench: our own
    parser 5.9 µs per answer, httptools 2.0, h11 31 (and h11 would also have to re-encode
    every request at T to accept its answer); llhttp is maintained, strict about framing
    (negative or malformed Content-Length, the CRLF after chunk data) and handles 1xx."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.keep_alive = True
        self.trailing = 0  # bytes came after the complete answer (then: never reused)
        self._parser = httptools.HttpResponseParser(self)
        self._header_bytes = 0
        self._head_done = False
        self._done = False
        self._until_close = False

    # llhttp's callbacks
    def on_message_begin(self) -> None:
        if self._done:
            raise _AfterAnswer  # the start of a second answer nobody asked for
        # A new message after an interim (1xx) one: forget everything of the interim.
        self.status, self.headers, self.body = 0, {}, bytearray()
        self._head_done = self._until_close = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > MAX_HEADER_BYTES:
            raise WireFailure("dropped", "response headers too long")
        # Names lower-cased once here (WireAnswer's form): read as they are from then on.
        key, text = name.decode("latin-1").lower(), value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self._head_done = True
        self._until_close = (
            self.status >= 200
            and self.status not in NO_BODY_STATUSES
            and "content-length" not in self.headers
            and "transfer-encoding" not in self.headers
        )
        if self._until_close:
            self.keep_alive = False  # the body ends with the connection

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        if self.status < 200:
            return  # 1xx: an interim answer, the real one follows
        self._done = True
        self.keep_alive = bool(self._parser.should_keep_alive())

    # ours
    def feed(self, data: bytes) -> bool:
        if self._done:
            self._trailing(len(data))
            return True
        try:
            self._parser.feed_data(data)
        except _AfterAnswer:
            self._trailing(1)  # a second answer began after ours
        except httptools.HttpParserUpgrade as exc:
            raise WireFailure("dropped", "the server switched protocols") from exc
        except httptools.HttpParserError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, WireFailure):
                raise cause from exc
            if isinstance(cause, _AfterAnswer) or self._done:
                self._trailing(1)  # bytes after the answer (llhttp stopped at them)
            else:
                raise WireFailure("dropped", f"malformed answer: {exc}") from exc
        return self._done

    def _trailing(self, count: int) -> None:
        """Bytes after a complete answer: the answer stands, the connection is not reused."""
        self.trailing += max(count, 1)
        self.keep_alive = False

    def finish_at_close(self) -> bool:
        """The connection ended: complete only for a body framed by the connection's end."""
        return self._head_done and self._until_close and not self._done

    def answer(self) -> Answer:
        body = bytes(self.body)
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        return WireAnswer(self.status, self.headers, body)  # names already lower-cased


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._response: _Response | None = None
        self.idle_since = loop.time()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._response is None or self._waiter is None:
            # Nothing asked: the server is misbehaving; never reuse this connection.
            self.close()
            return
        try:
            done = self._response.feed(data)
        except (WireFailure, ValueError, zlib.error) as exc:
            self._fail(exc if isinstance(exc, WireFailure) else WireFailure("dropped", str(exc)))
            self.close()
            return
        if done:
            self._complete()

    def eof_received(self) -> bool | None:
        self._ended()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    # ours
    @property
    def usable(self) -> bool:
        return (
            not self.closed
            and self._waiter is None
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def request(self, data: bytes) -> asyncio.Future[Answer]:
        if self.transport is None or self._waiter is not None:
            raise WireFailure("connect", "the connection is not ready for a request")
        self._waiter = self.loop.create_future()
        self._response = _Response()
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _complete(self) -> None:
        response, waiter = self._response, self._waiter
        self._response = self._waiter = None
        if response is None or waiter is None:  # nothing asked: never reuse this connection
            self.close()
            return
        if not response.keep_alive:
            self.close()
        try:
            answer = response.answer()
        except zlib.error as exc:
            self.close()
            if not waiter.done():
                waiter.set_exception(WireFailure("dropped", f"undecodable body: {exc}"))
            return
        if not waiter.done():
            waiter.set_result(answer)

    def _ended(self) -> None:
        self.closed = True
        if self._response is not None and self._response.finish_at_close():
            self._complete()
            return
        self._fail(WireFailure("dropped", "the connection closed before a complete answer"))

    def _fail(self, exc: WireFailure) -> None:
        waiter = self._waiter
        self._response = self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


@dataclass
class InFlight:
    """A request written on `conn`, its answer to come on `waiter`."""

    origin: Origin
    conn: _Connection
    waiter: asyncio.Future[Answer]
    sent: float
    written: float = 0.0  # the loop's clock at the write: the read timeout runs from here


def _written(origin: Origin, conn: _Connection, data: bytes) -> InFlight:
    """Write `data` on `conn` now; the flight records the instant (wall clock and loop)."""
    waiter = conn.request(data)
    return InFlight(origin, conn, waiter, time.time(), conn.loop.time())


def _time_out(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(WireFailure("timeout", "no answer in time"))


class WirePool:
    """Keep-alive connections per origin, on one event loop (not thread-safe: use it from the
    loop's own thread)."""

    def __init__(
        self,
        *,
        read_timeout: float = 7.0,
        ssl_context: ssl.SSLContext | None = None,
        idle_max_seconds: float = IDLE_MAX_SECONDS,
        max_idle_per_origin: int = MAX_IDLE_PER_ORIGIN,
    ):
        self.read_timeout = read_timeout
        self.idle_max_seconds = idle_max_seconds
        self.max_idle_per_origin = max_idle_per_origin
        self._ssl = ssl_context
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._idle: dict[Origin, list[_Connection]] = {}

    def origins(self) -> list[Origin]:
        return list(self._idle)

    def idle_count(self, origin: Origin) -> int:
        return sum(1 for conn in self._idle.get(origin, ()) if self._fresh(conn))

    def _fresh(self, conn: _Connection) -> bool:
        """Usable and not idle so long that the server may be closing it right now."""
        idle_for = conn.loop.time() - conn.idle_since
        return conn.usable and idle_for < self.idle_max_seconds

    def _context(self, host: str) -> ssl.SSLContext:
        """One TLS context per host, built once (loading the CA store costs milliseconds)."""
        if self._ssl is not None:
            return self._ssl
        if host not in self._contexts:
            self._contexts[host] = ssl.create_default_context()
        return self._contexts[host]

    async def _open(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            context = self._context(origin.host)
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                ),
                CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise WireFailure("connect", str(exc) or type(exc).__name__) from exc
        return protocol

    def _take(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if self._fresh(conn):
                return conn
            conn.close()  # expired or closed: never written on
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        if not conn.usable:
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self.max_idle_per_origin:
            conn.close()  # the pool is bounded: a burst's extra connections are let go
            return
        conn.idle_since = conn.loop.time()
        idle.append(conn)

    async def warm(self, origin: Origin, connections: int, *, step: int | None = None) -> int:
        """Open connections until `connections` are idle for `origin`; returns how many are.
        A failure to connect is not raised: the send at T reports it in words. `step`: at most
        this many connects at a time (connects beyond the server's accept backlog are dropped
        and retried by TCP a second later), step after step until a step gains none."""
        target = min(connections, self.max_idle_per_origin)
        while (missing := target - (before := self.idle_count(origin))) > 0:
            count = missing if step is None else min(step, missing)
            opened = await asyncio.gather(
                *(self._open(origin) for _ in range(count)), return_exceptions=True
            )
            for conn in opened:
                if isinstance(conn, _Connection):
                    self._give_back(origin, conn)
            if step is None or self.idle_count(origin) <= before:
                break
        return self.idle_count(origin)

    def write_now(self, prepared: Prepared) -> InFlight | None:
        """Write `prepared` at once on an idle connection, without yielding to the loop (a
        burst is written in one pass, before any answer is read); None when no connection is
        idle (the caller then uses `send`, which opens one)."""
        conn = self._take(prepared.origin)
        if conn is None:
            return None
        return _written(prepared.origin, conn, prepared.data)

    def on_answer(
        self, flight: InFlight, done: Callable[[float, Answer | WireFailure, float], None]
    ) -> None:
        """Call `done(time written, answer or its WireFailure, time answered)` (epoch seconds)
        from the loop when the answer to `flight` comes, or the read timeout, running from the
        write, passes: no task waits for it. The connection goes back to the pool after a
        complete answer, and is closed after a failure."""
        timer = flight.conn.loop.call_at(
            flight.written + self.read_timeout, _time_out, flight.waiter
        )

        def finished(waiter: asyncio.Future[Answer]) -> None:
            timer.cancel()
            answered = time.time()
            failure = waiter.exception() if not waiter.cancelled() else WireFailure("dropped")
            if failure is not None:
                flight.conn.close()
                if not isinstance(failure, WireFailure):  # never raised by _Connection
                    failure = WireFailure("dropped", repr(failure))
                done(flight.sent, failure, answered)
                return
            self._give_back(flight.origin, flight.conn)
            done(flight.sent, waiter.result(), answered)

        flight.waiter.add_done_callback(finished)

    async def answer_of(self, flight: InFlight) -> tuple[float, Answer, float]:
        """Wait for the answer to a written request: (time written, answer, time answered),
        epoch seconds. Raises WireFailure."""
        future: asyncio.Future[tuple[float, Answer | WireFailure, float]] = (
            flight.conn.loop.create_future()
        )

        def done(sent: float, answer: Answer | WireFailure, answered: float) -> None:
            if not future.done():
                future.set_result((sent, answer, answered))

        self.on_answer(flight, done)
        try:
            sent, answer, answered = await future
        except asyncio.CancelledError:
            flight.conn.close()  # its answer, unread, would be taken for the next request's
            raise
        if isinstance(answer, WireFailure):
            raise answer
        return sent, answer, answered

    async def send(self, prepared: Prepared) -> tuple[float, Answer, float]:
        """Write `prepared` on an idle connection (a new one if none is) and read its answer:
        (time written, answer, time answered), epoch seconds. Raises WireFailure."""
        flight = self.write_now(prepared)
        if flight is None:
            conn = await self._open(prepared.origin)
            flight = _written(prepared.origin, conn, prepared.data)
        return await self.answer_of(flight)

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
