"""The engine's HTTP/1.1 client (execution.send.wire): framing, keep-alive and failure kinds,
against scripted loopback servers and a broker emulator."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import Callable

import pytest

from brokers.base import WireAnswer
from execution.send.wire import Origin, WireFailure, WirePool, _Response, serialize


# --- serializing -----------------------------------------------------------------------------
def test_serialize_writes_request_line_host_and_length_and_drops_framing_headers() -> None:
    prepared = serialize(
        "post",
        "http://127.0.0.1:8123/orders/regular?x=1",
        {"Content-Length": "999", "Connection": "keep-alive", "X-Kite-Version": "3"},
        b"tag=abc",
    )
    head, _, body = prepared.data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /orders/regular?x=1 HTTP/1.1"
    assert "Host: 127.0.0.1:8123" in lines
    assert "Content-Length: 7" in lines
    assert "X-Kite-Version: 3" in lines
    assert not any(line.startswith(("Connection", "Content-Length: 999")) for line in lines)
    assert body == b"tag=abc"
    assert prepared.origin == Origin("http", "127.0.0.1", 8123)


def test_serialize_leaves_default_ports_out_of_host() -> None:
    prepared = serialize("GET", "https://api.kite.trade/orders", {}, b"")
    assert b"Host: api.kite.trade\r\n" in prepared.data
    assert b"Content-Length" not in prepared.data  # a GET without a body has none
    assert prepared.origin.port == 443


@pytest.mark.parametrize("bad", ["x\r\nEvil: 1", "x\nEvil: 1"])
def test_serialize_refuses_header_injection(bad: str) -> None:
    with pytest.raises(ValueError, match="line break"):
        serialize("GET", "http://127.0.0.1/", {"X-Tag": bad}, b"")


def test_serialize_refuses_non_http_urls() -> None:
    with pytest.raises(ValueError, match="not an HTTP URL"):
        serialize("GET", "ftp://127.0.0.1/", {}, b"")


# --- parsing ---------------------------------------------------------------------------------
def _feed_bytewise(raw: bytes) -> _Response:
    response = _Response()
    done = False
    for i in range(len(raw)):
        assert not done, "complete before the last byte"
        done = response.feed(raw[i : i + 1])
    assert done
    return response


def test_content_length_body_split_over_many_reads() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
        b'{"a": "bc"}'
    )
    response = _feed_bytewise(raw)
    answer = response.answer()
    assert (answer.status, answer.body) == (200, b'{"a": "bc"}')
    assert answer.header("Content-Type") == "application/json"  # names are lower-cased
    assert response.keep_alive


def test_chunked_body_with_extension_and_trailer() -> None:
    raw = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;name=x\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    assert _feed_bytewise(raw).answer().body == b"Wikipedia"


def test_chunked_body_without_trailer_in_one_read() -> None:
    response = _Response()
    assert response.feed(
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert response.answer().body == b"abc"


def test_gzip_body_is_decoded() -> None:
    body = gzip.compress(b'{"status":"success"}')
    raw = (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    response = _Response()
    assert response.feed(raw)
    assert response.answer().body == b'{"status":"success"}'


def test_interim_100_continue_is_skipped() -> None:
    response = _Response()
    assert response.feed(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    )
    assert (response.status, bytes(response.body)) == (200, b"ok")


def test_no_content_has_no_body_and_close_ends_keep_alive() -> None:
    response = _Response()
    assert response.feed(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
    assert response.answer().body == b""
    assert not response.keep_alive


def test_body_framed_by_the_connection_end() -> None:
    response = _Response()
    assert not response.feed(b"HTTP/1.1 200 OK\r\n\r\npartial")
    assert response.finish_at_close()
    assert not response.keep_alive


# The four parser bugs found reading the client as a broker would answer it.
def test_an_interim_1xx_then_a_truncated_200_is_not_a_complete_answer() -> None:
    response = _Response()
    # The 100 has no Content-Length; the 200 has one and its body is cut short at the close.
    assert not response.feed(
        b'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n{"status":'
    )
    assert not response.finish_at_close()  # at the connection's end: dropped, not a 200
    assert response.feed(b'"success"}') and response.keep_alive
    assert (response.answer().status, response.answer().body) == (200, b'{"status":"success"}')


def test_bytes_after_a_complete_answer_end_the_connections_reuse() -> None:
    response = _Response()
    assert response.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK")
    assert response.answer().body == b"ok"
    assert not response.keep_alive and response.trailing > 0


@pytest.mark.parametrize("length", [b"-3", b"+3", b"3, 4", b"0x10", b""])
def test_an_invalid_content_length_is_a_dropped_answer(length: bytes) -> None:
    with pytest.raises(WireFailure) as caught:
        _Response().feed(b"HTTP/1.1 200 OK\r\nContent-Length: " + length + b"\r\n\r\nabc")
    assert caught.value.kind == "dropped"


def test_chunk_data_must_end_in_crlf() -> None:
    response = _Response()
    with pytest.raises(WireFailure) as caught:
        response.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWikiXY0\r\n\r\n")
    assert caught.value.kind == "dropped"


def test_garbage_is_a_dropped_answer() -> None:
    with pytest.raises(WireFailure) as caught:
        _Response().feed(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert caught.value.kind == "dropped"


def _kite_order(tag: str, *, side: str, price: str):
    from execution.send import sender

    return sender.OutgoingOrder(
        intent_id=1,
        run_id=1,
        tag=tag,
        phase=1,
        exchange="NFO",
        tradingsymbol="NIFTY25DEC26000CE",
        instrument_token="",
        side=side,
        quantity=75,
        product="NRML",
        order_type="LIMIT",
        price=price,
        algo_id="ALGO1",
    )


# --- against loopback servers ---------------------------------------------------------------
class ScriptedServer:
    """A loopback TCP server in a thread; `reply(request_bytes, writer)` answers each request."""

    def __init__(self, reply: Callable[[bytes, asyncio.StreamWriter], object]) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = 0
                    for line in head.split(b"\r\n"):
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    request = head + await reader.readexactly(length)
                    self.requests.append(request)
                    outcome = self.reply(request, writer)
                    if asyncio.iscoroutine(outcome):
                        await outcome
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def start() -> None:
            self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        async def shut() -> None:
            self.server.close()
            current = asyncio.current_task()
            pending = [t for t in asyncio.all_tasks() if t is not current]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def _ok(body: bytes = b'{"ok":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


@pytest.fixture
def server_factory():
    servers: list[ScriptedServer] = []

    def make(reply: Callable[[bytes, asyncio.StreamWriter], object]) -> ScriptedServer:
        servers.append(ScriptedServer(reply))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def test_warmed_connections_carry_the_burst_and_are_reused(server_factory) -> None:
    server = server_factory(lambda request, writer: writer.write(_ok()))

    async def scenario() -> list[int]:
        pool = WirePool(read_timeout=2)
        origin = Origin.of(server.url)
        assert await pool.warm(origin, 5) == 5
        prepared = serialize("POST", server.url + "/orders", {}, b"a=1")
        answers = await asyncio.gather(*(pool.send(prepared) for _ in range(5)))
        again = await pool.send(prepared)
        pool.close()
        return [a[1].status for a in answers] + [again[1].status]

    assert asyncio.run(scenario()) == [200] * 6
    assert server.connections == 5  # no new connection at T, and the sixth reused one
    assert len(server.requests) == 6
    assert all(r.endswith(b"\r\n\r\na=1") for r in server.requests)


def test_a_connection_the_server_closed_is_not_used_again(server_factory) -> None:
    server = server_factory(
        lambda request, writer: writer.write(_ok(extra=b"Connection: close\r\n"))
    )

    async def scenario() -> tuple[int, int]:
        pool = WirePool(read_timeout=2)
        prepared = serialize("GET", server.url + "/", {}, b"")
        first = await pool.send(prepared)
        second = await pool.send(prepared)
        pool.close()
        return first[1].status, second[1].status

    assert asyncio.run(scenario()) == (200, 200)
    assert server.connections == 2


def test_no_answer_in_time_is_a_timeout(server_factory) -> None:
    server = server_factory(lambda request, writer: asyncio.sleep(3))

    async def scenario() -> str:
        pool = WirePool(read_timeout=0.2)
        with pytest.raises(WireFailure) as caught:
            await pool.send(serialize("POST", server.url + "/orders", {}, b"a=1"))
        pool.close()
        return caught.value.kind

    assert asyncio.run(scenario()) == "timeout"
    assert len(server.requests) == 1  # it did reach the server: ambiguous, not resendable


def test_on_answer_calls_back_from_the_loop_with_no_task_waiting(server_factory) -> None:
    """The answer (or its failure) reaches the callback as it comes: the connection of a
    complete answer goes back to the pool; one that timed out is closed, never reused."""
    replies = iter([_ok(b"first"), None])
    server = server_factory(
        lambda request, writer: writer.write(reply) if (reply := next(replies)) else None
    )

    async def scenario() -> list[tuple]:
        pool = WirePool(read_timeout=0.3)
        origin = Origin.of(server.url)
        await pool.warm(origin, 1)
        prepared = serialize("POST", server.url + "/orders", {}, b"a=1")
        got: list[tuple] = []
        done = asyncio.get_running_loop().create_future()

        def record(sent: float, answer: object, answered: float) -> None:
            got.append((sent, answer, answered, pool.idle_count(origin)))
            if len(got) == 2:
                done.set_result(None)

        first = pool.write_now(prepared)
        assert first is not None and pool.idle_count(origin) == 0
        pool.on_answer(first, record)
        await asyncio.sleep(0.2)  # answered; the connection is idle again
        second = pool.write_now(prepared)  # the same connection: the server stays silent
        assert second is not None
        pool.on_answer(second, record)
        await asyncio.wait_for(done, 5)
        pool.close()
        return got

    (sent1, answer1, at1, idle1), (sent2, failure, at2, idle2) = asyncio.run(scenario())
    assert answer1.status == 200 and answer1.body == b"first" and sent1 <= at1
    assert idle1 == 1  # back in the pool when the callback ran
    assert isinstance(failure, WireFailure) and failure.kind == "timeout"
    assert 0.25 <= at2 - sent2 < 2 and idle2 == 0  # closed, not given back
    assert server.connections == 1


def test_connection_closed_mid_answer_is_dropped(server_factory) -> None:
    def half(request: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{")
        writer.close()

    server = server_factory(half)

    async def scenario() -> str:
        pool = WirePool(read_timeout=2)
        with pytest.raises(WireFailure) as caught:
            await pool.send(serialize("POST", server.url + "/orders", {}, b"a=1"))
        pool.close()
        return caught.value.kind

    assert asyncio.run(scenario()) == "dropped"


def test_idle_connections_past_their_age_are_not_written_on(server_factory) -> None:
    server = server_factory(lambda request, writer: writer.write(_ok()))

    async def scenario() -> tuple[int, int, int]:
        pool = WirePool(read_timeout=2, idle_max_seconds=0.05)
        origin = Origin.of(server.url)
        warmed = await pool.warm(origin, 2)
        await asyncio.sleep(0.1)
        stale = pool.idle_count(origin)
        answer = await pool.send(serialize("GET", server.url + "/", {}, b""))
        pool.close()
        return warmed, stale, answer[1].status

    assert asyncio.run(scenario()) == (2, 0, 200)
    assert server.connections == 3  # the expired two were closed, a fresh one carried it


def test_the_pool_keeps_at_most_its_bound_of_idle_connections(server_factory) -> None:
    server = server_factory(lambda request, writer: writer.write(_ok()))

    async def scenario() -> tuple[int, int]:
        pool = WirePool(read_timeout=2, max_idle_per_origin=3)
        origin = Origin.of(server.url)
        warmed = await pool.warm(origin, 10)
        prepared = serialize("GET", server.url + "/", {}, b"")
        await asyncio.gather(*(pool.send(prepared) for _ in range(6)))
        idle = pool.idle_count(origin)
        pool.close()
        return warmed, idle

    assert asyncio.run(scenario()) == (3, 3)


def test_one_tls_context_per_host() -> None:
    pool = WirePool()
    first = pool._context("api.kite.trade")
    assert pool._context("api.kite.trade") is first
    assert pool._context("api.upstox.com") is not first


def test_the_read_timeout_runs_from_the_write(server_factory) -> None:
    server = server_factory(lambda request, writer: asyncio.sleep(3))

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        pool = WirePool(read_timeout=1.0)
        await pool.warm(Origin.of(server.url), 1)
        flight = pool.write_now(serialize("POST", server.url + "/orders", {}, b"a=1"))
        assert flight is not None
        await asyncio.sleep(0.7)  # the caller starts waiting late
        started = loop.time()
        with pytest.raises(WireFailure):
            await pool.answer_of(flight)
        pool.close()
        return loop.time() - started

    # 1 s after the write (about 0.3 s of waiting), not 1 s after the wait began.
    assert asyncio.run(scenario()) < 0.75


def test_refused_connection_is_connect_and_warm_does_not_raise() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there

    async def scenario() -> tuple[int, str]:
        pool = WirePool(read_timeout=1)
        origin = Origin("http", "127.0.0.1", port)
        warmed = await pool.warm(origin, 3)
        with pytest.raises(WireFailure) as caught:
            await pool.send(serialize("POST", f"http://127.0.0.1:{port}/x", {}, b""))
        pool.close()
        return warmed, caught.value.kind

    assert asyncio.run(scenario()) == (0, "connect")


def test_places_an_order_on_the_kite_emulator() -> None:
    """The bytes the Kite adapter writes, sent by the wire client, are one order at the
    emulator, and the answer reads back as the adapter's acknowledgement."""
    from brokers.base import Credentials
    from brokers.emulator import start_in_thread
    from brokers.kite.adapter import KiteAdapter
    from tests.brokers.fixed_market import FixedQuotes

    emulator = start_in_thread("kite", quotes=FixedQuotes())
    try:
        emulator.add_account(api_key="wirekey", api_secret="wiresecret", user_id="WI0001")
        token = emulator.issue_token("wirekey")
        adapter = KiteAdapter(
            Credentials(api_key="wirekey", api_secret="wiresecret", access_token=token),
            base_url=emulator.base_url,
        )
        order = _kite_order("WIRE1", side="BUY", price="100.1")
        written = adapter.order_request(order.request())
        prepared = serialize(written.method, written.url, written.headers, written.body)

        async def send() -> WireAnswer:
            pool = WirePool(read_timeout=3)
            _, answer, _ = await pool.send(prepared)
            pool.close()
            return answer

        answer = asyncio.run(send())
        ack = adapter.order_answer(answer)
        assert ack.broker_order_id
        logged = [e for e in emulator.order_log() if e.get("tag") == "WIRE1"]
        assert len(logged) == 1
        assert logged[0]["outcome"] == "accepted"
        assert logged[0]["order_id"] == ack.broker_order_id
    finally:
        emulator.stop()


# --- the two phases of an order write: the adapter builds the request, reads the answer -----
def _adapter_and_order():
    from brokers.base import Credentials
    from brokers.kite.adapter import KiteAdapter

    adapter = KiteAdapter(
        Credentials(api_key="k", api_secret="s", access_token="t"), base_url="http://127.0.0.1:9"
    )
    return adapter, _kite_order("TWOPHASE1", side="SELL", price="99.5").request()


def test_the_adapter_builds_the_request_it_would_send() -> None:
    adapter, order = _adapter_and_order()
    written = adapter.order_request(order)
    assert (written.method, written.url) == ("POST", "http://127.0.0.1:9/orders/regular")
    assert written.headers["Authorization"] == "token k:t"
    assert written.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert b"tag=TWOPHASE1" in written.body and b"transaction_type=SELL" in written.body


@pytest.mark.parametrize(
    ("failure", "error"),
    [("connect", "RetryableError"), ("timeout", "AmbiguousError"), ("dropped", "AmbiguousError")],
)
def test_a_missing_answer_is_classified_by_its_kind(failure: str, error: str) -> None:
    import brokers.base

    adapter, _ = _adapter_and_order()
    with pytest.raises(getattr(brokers.base, error)) as caught:
        adapter.order_answer(WireAnswer(failure=failure))
    # An ambiguous write is never "retryable": it must be looked up by tag, not sent again.
    assert isinstance(caught.value, brokers.base.RetryableError) == (error == "RetryableError")


def test_the_adapter_reads_acknowledgement_and_refusal() -> None:
    from brokers.base import PermanentError

    adapter, _ = _adapter_and_order()
    json_type = {"content-type": "application/json"}
    ok = b'{"status": "success", "data": {"order_id": "151220000000000"}}'
    assert adapter.order_answer(WireAnswer(200, json_type, ok)).broker_order_id == (
        "151220000000000"
    )
    refused = (
        b'{"status": "error", "message": "Insufficient funds", "error_type": "MarginException"}'
    )
    with pytest.raises(PermanentError, match="Insufficient funds"):
        adapter.order_answer(WireAnswer(400, json_type, refused))


def test_header_names_are_read_in_any_case_and_repeated_ones_joined() -> None:
    import gzip

    response = _Response()
    body = gzip.compress(b'{"status": "success"}')
    done = response.feed(
        b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nX-Trace: a\r\nx-trace: b\r\n"
        b"CONTENT-ENCODING: gzip\r\ncontent-LENGTH: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = response.answer()
    assert done and answer.status == 429
    assert answer.headers["retry-after"] == "1"
    assert answer.headers["x-trace"] == "a, b"
    assert answer.body == b'{"status": "success"}'  # decoded by its upper-case encoding name


# --- answers no broker should send, each a dropped answer (never a success) ------------------
def test_headers_past_the_bound_are_a_dropped_answer() -> None:
    from execution.send.wire import MAX_HEADER_BYTES

    huge = b"X-Pad: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"
    with pytest.raises(WireFailure, match="headers too long") as caught:
        _Response().feed(b"HTTP/1.1 200 OK\r\n" + huge + b"Content-Length: 2\r\n\r\nok")
    assert caught.value.kind == "dropped"


def test_a_switch_of_protocols_is_a_dropped_answer() -> None:
    with pytest.raises(WireFailure, match="switched protocols") as caught:
        _Response().feed(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n\x81\x00"
        )
    assert caught.value.kind == "dropped"


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_deflate_body_is_decoded_with_or_without_its_zlib_wrapper(wrapped: bool) -> None:
    import zlib

    payload = b'{"status":"success","data":{"order_id":"1"}}'
    if wrapped:
        body = zlib.compress(payload)
    else:
        squeeze = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = squeeze.compress(payload) + squeeze.flush()
    response = _Response()
    assert response.feed(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    assert response.answer().body == payload


def _one_send(server) -> WireFailure:
    async def scenario() -> WireFailure:
        pool = WirePool(read_timeout=2)
        with pytest.raises(WireFailure) as caught:
            await pool.send(serialize("POST", server.url + "/orders", {}, b"a=1"))
        pool.close()
        return caught.value

    return asyncio.run(scenario())


def test_an_undecodable_body_is_dropped_and_the_connection_not_reused(server_factory) -> None:
    body = b"\x1f\x8b not gzip at all"
    server = server_factory(
        lambda request, writer: writer.write(_ok(body, extra=b"Content-Encoding: gzip\r\n"))
    )
    failure = _one_send(server)
    assert failure.kind == "dropped" and "undecodable body" in str(failure)
    assert len(server.requests) == 1  # it reached the broker: looked up, never resent


def test_garbage_from_the_server_is_dropped_on_the_wire(server_factory) -> None:
    server = server_factory(lambda request, writer: writer.write(b"SSH-2.0-OpenSSH\r\n\r\n"))
    assert _one_send(server).kind == "dropped"
    assert len(server.requests) == 1


def test_more_bytes_after_a_complete_answer_keep_the_answer_and_end_reuse() -> None:
    response = _Response()
    assert response.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    assert response.keep_alive
    assert response.feed(b"HTTP/1.1 200 OK\r\n")  # a second answer nobody asked for
    assert response.answer().body == b"ok"
    assert not response.keep_alive and response.trailing > 0


def test_a_connection_not_ready_refuses_a_request_as_connect() -> None:
    from execution.send.wire import _Connection

    async def scenario() -> str:
        conn = _Connection(asyncio.get_running_loop())  # never connected
        with pytest.raises(WireFailure) as caught:
            conn.request(b"GET / HTTP/1.1\r\n\r\n")
        return caught.value.kind

    # "connect": certainly not written, so a send may be retried.
    assert asyncio.run(scenario()) == "connect"


def test_bytes_from_the_server_with_nothing_asked_close_the_connection() -> None:
    from execution.send.wire import _Connection

    class Transport:
        closed = False

        def close(self) -> None:
            Transport.closed = True

        def is_closing(self) -> bool:
            return Transport.closed

    async def scenario() -> bool:
        conn = _Connection(asyncio.get_running_loop())
        conn.connection_made(Transport())
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return conn.closed

    assert asyncio.run(scenario()) is True
    assert Transport.closed
