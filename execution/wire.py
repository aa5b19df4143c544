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
from dataclasses import dataclass
from urllib.parse import urlsplit

from brokers.base import WireAnswer

CONNECT_TIMEOUT = 3.0
MAX_HEADER_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})


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
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return Prepared(origin, head + body)


class _Response:
    """Incremental parser of one response; `feed` returns True once it is complete."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.keep_alive = True
        self._head_done = False
        self._length: int | None = None
        self._chunked = False
        self._until_close = False
        self._chunk_left = -1  # -1: a chunk-size line is due next

    def feed(self, data: bytes) -> bool:
        self.buffer += data
        if not self._head_done:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER_BYTES:
                    raise WireFailure("dropped", "response headers too long")
                return False
            self._head(bytes(self.buffer[:end]))
            del self.buffer[: end + 4]
            if self.status < 200:  # 1xx: an interim answer, the real one follows
                self._reset_head()
                return self.feed(b"")
        return self._body()

    def _reset_head(self) -> None:
        self.status, self.headers, self._head_done = 0, {}, False

    def _head(self, raw: bytes) -> None:
        lines = raw.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
            raise WireFailure("dropped", f"not an HTTP response: {lines[0][:60]!r}")
        self.status = int(status_line[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            key = name.strip()
            value = value.strip()
            if key in self.headers:
                self.headers[key] += ", " + value
            else:
                self.headers[key] = value
        lowered = {k.lower(): v.lower() for k, v in self.headers.items()}
        version_10 = status_line[0] == "HTTP/1.0"
        connection = lowered.get("connection", "")
        if version_10:
            self.keep_alive = "keep-alive" in connection
        else:
            self.keep_alive = "close" not in connection
        self._head_done = True
        if self.status in NO_BODY_STATUSES:
            self._length = 0
        elif "chunked" in lowered.get("transfer-encoding", ""):
            self._chunked = True
        elif "content-length" in lowered:
            self._length = int(lowered["content-length"])
        else:
            self._until_close, self.keep_alive = True, False

    def _body(self) -> bool:
        if self._length is not None:
            if len(self.buffer) < self._length:
                return False
            self.body += self.buffer[: self._length]
            del self.buffer[: self._length]
            return True
        if self._chunked:
            return self._chunks()
        self.body += self.buffer  # until the connection ends
        self.buffer.clear()
        return False

    def _chunks(self) -> bool:
        while True:
            if self._chunk_left == -1:
                end = self.buffer.find(b"\r\n")
                if end < 0:
                    return False
                size_text = bytes(self.buffer[:end]).split(b";", 1)[0].strip()
                try:
                    self._chunk_left = int(size_text, 16)
                except ValueError as exc:
                    raise WireFailure("dropped", "a malformed chunk size") from exc
                del self.buffer[: end + 2]
                if self._chunk_left == 0:
                    self._chunk_left = -2  # the trailer section follows
            if self._chunk_left == -2:
                if self.buffer.startswith(b"\r\n"):
                    del self.buffer[:2]
                    return True
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return False
                del self.buffer[: end + 4]
                return True
            if len(self.buffer) < self._chunk_left + 2:
                return False
            self.body += self.buffer[: self._chunk_left]
            del self.buffer[: self._chunk_left + 2]
            self._chunk_left = -1

    def finish_at_close(self) -> bool:
        """The connection ended: complete only for a body framed by the connection's end."""
        return self._head_done and self._until_close

    def answer(self) -> Answer:
        body = bytes(self.body)
        encoding = next(
            (v.lower() for k, v in self.headers.items() if k.lower() == "content-encoding"), ""
        )
        if encoding in ("gzip", "x-gzip"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error:
                body = zlib.decompress(body, -zlib.MAX_WBITS)
        return WireAnswer.of(self.status, self.headers, body)


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._waiter: asyncio.Future[Answer] | None = None
        self._response: _Response | None = None

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
        assert self.transport is not None and self._waiter is None
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
        assert response is not None and waiter is not None
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


def _time_out(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(WireFailure("timeout", "no answer in time"))


class WirePool:
    """Keep-alive connections per origin, on one event loop (not thread-safe: use it from the
    loop's own thread)."""

    def __init__(self, *, read_timeout: float = 7.0, ssl_context: ssl.SSLContext | None = None):
        self.read_timeout = read_timeout
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    def idle_count(self, origin: Origin) -> int:
        return sum(1 for conn in self._idle.get(origin, ()) if conn.usable)

    async def _open(self, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if origin.scheme == "https":
            context = self._ssl or ssl.create_default_context()
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
            if conn.usable:
                return conn
        return None

    def _give_back(self, origin: Origin, conn: _Connection) -> None:
        if conn.usable:
            self._idle.setdefault(origin, []).append(conn)

    async def warm(self, origin: Origin, connections: int) -> int:
        """Open connections until `connections` are idle for `origin`; returns how many are.
        A failure to connect is not raised: the send at T reports it in words."""
        missing = connections - self.idle_count(origin)
        if missing > 0:
            opened = await asyncio.gather(
                *(self._open(origin) for _ in range(missing)), return_exceptions=True
            )
            for conn in opened:
                if isinstance(conn, _Connection):
                    self._give_back(origin, conn)
        return self.idle_count(origin)

    def write_now(self, prepared: Prepared) -> InFlight | None:
        """Write `prepared` at once on an idle connection, without yielding to the loop (a
        burst is written in one pass, before any answer is read); None when no connection is
        idle (the caller then uses `send`, which opens one)."""
        conn = self._take(prepared.origin)
        if conn is None:
            return None
        sent = time.time()
        return InFlight(prepared.origin, conn, conn.request(prepared.data), sent)

    async def answer_of(self, flight: InFlight) -> tuple[float, Answer, float]:
        """Wait for the answer to a written request: (time written, answer, time answered),
        epoch seconds. Raises WireFailure."""
        # A timer on the future itself (asyncio.wait_for would wrap it in one more task).
        timer = asyncio.get_running_loop().call_later(self.read_timeout, _time_out, flight.waiter)
        try:
            answer = await flight.waiter
        except WireFailure:
            flight.conn.close()
            raise
        except asyncio.CancelledError:
            flight.conn.close()
            raise
        finally:
            timer.cancel()
        answered = time.time()
        self._give_back(flight.origin, flight.conn)
        return flight.sent, answer, answered

    async def send(self, prepared: Prepared) -> tuple[float, Answer, float]:
        """Write `prepared` on an idle connection (a new one if none is) and read its answer:
        (time written, answer, time answered), epoch seconds. Raises WireFailure."""
        flight = self.write_now(prepared)
        if flight is None:
            conn = await self._open(prepared.origin)
            flight = InFlight(prepared.origin, conn, conn.request(prepared.data), time.time())
        return await self.answer_of(flight)

    def close(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
