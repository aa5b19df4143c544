"""Resend or look up: how brokers.httpclient classes a request that got no usable answer, over
real sockets on 127.0.0.1, and how each broker's adapter classes the same answers to an order
write (the one decision the send path acts on: retry, look up by tag, or give up)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest
import requests

from brokers.base import (
    AmbiguousError,
    Credentials,
    PermanentError,
    RateLimitedError,
    RetryableError,
    WireAnswer,
    WireRequest,
)
from brokers.httpclient import (
    DEFAULT_RETRY_AFTER,
    HttpClient,
    classify_transport_status,
    json_body,
    jwt_expiry,
    parse_ist_timestamp,
    raise_on_failure,
    retry_after_seconds,
    to_decimal,
    to_int,
    transport_failure,
    unreadable_answer,
)
from brokers.registry import adapter_class
from execution.send.sender import error_class


@contextmanager
def _server(behaviour: str) -> Iterator[str]:
    """A one-purpose HTTP server on an ephemeral loopback port: `silent` reads the request and
    never answers; `drop` reads it and closes the connection; `half` answers half a body."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.recv(65536)
            if behaviour == "silent":
                held.append(conn)
                continue
            if behaviour == "half":
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":')
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()


def _closed_port() -> str:
    """A loopback port nothing listens on (bound, then released)."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return f"http://127.0.0.1:{port}"


# --- transport failures, over real sockets ---------------------------------------------------
@pytest.mark.parametrize(("write", "expected"), [(True, RetryableError), (False, RetryableError)])
def test_a_refused_connection_never_reached_the_broker_so_it_may_be_sent_again(write, expected):
    client = HttpClient(connect_timeout=0.5, read_timeout=0.5)
    with pytest.raises(expected) as raised:
        client.send("POST", _closed_port() + "/orders", write=write)
    assert type(raised.value) is expected and "refused the connection" in raised.value.message
    assert error_class(raised.value) == "retryable"
    assert client.exchange(WireRequest("POST", _closed_port(), {}, b"")).failure == "connect"


@pytest.mark.parametrize(
    ("behaviour", "kind"), [("silent", "timeout"), ("drop", "dropped"), ("half", "cut off")]
)
def test_a_write_whose_answer_was_lost_is_looked_up_and_a_read_is_repeated(behaviour, kind):
    client = HttpClient(connect_timeout=0.5, read_timeout=0.3)
    with _server(behaviour) as url:
        with pytest.raises(AmbiguousError) as write:
            client.send("POST", url + "/orders", write=True, data=b"x")
        with pytest.raises(RetryableError) as read:
            client.send("GET", url + "/orders", write=False)
        answer = client.exchange(WireRequest("POST", url + "/orders", {}, b"x"))
    client.close()
    assert "look it up by tag" in write.value.message
    assert error_class(write.value) == "ambiguous"
    assert error_class(read.value) == "retryable"
    assert answer.failure in {kind, "dropped", "cut off"}
    with pytest.raises(AmbiguousError):
        raise_on_failure(answer)


def test_a_connect_timeout_is_retryable_on_both_paths(monkeypatch):
    client = HttpClient()

    def slow(*args, **kwargs):
        raise requests.ConnectTimeout("no SYN-ACK")

    monkeypatch.setattr(client.session, "request", slow)
    with pytest.raises(RetryableError, match="did not accept a connection"):
        client.send("POST", "http://127.0.0.1:1/orders", write=True)
    answer = client.exchange(WireRequest("POST", "http://127.0.0.1:1/orders", {}, b""))
    assert answer.failure == "connect timeout"
    with pytest.raises(RetryableError):
        raise_on_failure(answer)


def test_an_unclassified_requests_failure_is_ambiguous_for_a_write(monkeypatch):
    client = HttpClient()

    def broken(*args, **kwargs):
        raise requests.RequestException("chunked encoding broke")

    monkeypatch.setattr(client.session, "request", broken)
    with pytest.raises(AmbiguousError, match="cut off"):
        client.send("POST", "http://127.0.0.1:1/orders", write=True)
    with pytest.raises(RetryableError, match="cut off"):
        client.send("GET", "http://127.0.0.1:1/orders", write=False)
    assert client.exchange(WireRequest("GET", "http://127.0.0.1:1", {}, b"")).failure == "cut off"


def test_an_answer_is_carried_whole_by_the_wire_client():
    client = HttpClient(read_timeout=1)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_once() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        body = b'{"status":"success"}'
        conn.sendall(
            b"HTTP/1.1 201 Created\r\nX-Trace: abc\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        conn.close()

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    answer = client.exchange(WireRequest("POST", f"http://127.0.0.1:{port}/x", {}, b"{}"))
    thread.join(2)
    listener.close()
    assert (answer.status, answer.failure) == (201, "")
    assert answer.header("x-trace") == "abc" and answer.json() == {"status": "success"}


# --- statuses, hints and bodies --------------------------------------------------------------
def _answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> WireAnswer:
    return WireAnswer.of(status, headers or {}, body)


def test_429_is_retryable_after_the_brokers_hint():
    error = classify_transport_status(_answer(429, {"Retry-After": "0.4"}), write=True)
    assert isinstance(error, RateLimitedError) and error.retry_after == 0.4
    assert error_class(error) == "retryable"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "soon", "X-Retry-After-Ms": "250"}, 0.25),
        ({"X-Retry-After-Ms": "later"}, DEFAULT_RETRY_AFTER),
        ({}, DEFAULT_RETRY_AFTER),
    ],
)
def test_retry_after_reads_either_hint_and_ignores_nonsense(headers, seconds):
    assert retry_after_seconds(_answer(429, headers)) == seconds


def test_a_5xx_on_a_write_is_ambiguous_unless_the_broker_documents_it_not_accepted():
    ambiguous = classify_transport_status(_answer(503), write=True)
    assert isinstance(ambiguous, AmbiguousError) and "look it up by tag" in ambiguous.message
    refused = classify_transport_status(_answer(502), write=True, not_accepted=frozenset({502}))
    assert isinstance(refused, RetryableError) and refused.http_status == 502
    read = classify_transport_status(_answer(500), write=False, message="OMS busy")
    assert isinstance(read, RetryableError) and read.message == "OMS busy"
    assert classify_transport_status(_answer(400), write=True) is None
    assert classify_transport_status(_answer(200), write=True) is None


def test_an_unreadable_answer_is_ambiguous_for_an_accepted_write_and_permanent_otherwise():
    accepted = unreadable_answer(_answer(200, body=b"<html>"), write=True, broker="Kite")
    assert isinstance(accepted, AmbiguousError) and accepted.raw == "<html>"
    read = unreadable_answer(_answer(200, body=b"<html>"), write=False, broker="Kite")
    assert type(read) is RetryableError
    refused = unreadable_answer(_answer(403, body=b"Forbidden"), write=True, broker="Kite")
    assert isinstance(refused, PermanentError) and refused.http_status == 403


def test_body_and_number_helpers_never_raise_on_what_brokers_send():
    assert json_body(_answer(429, body=b"Too many requests")) is None
    assert json_body(_answer(200, body=b'{"a": 1}')) == {"a": 1}
    assert parse_ist_timestamp("2026-11-19 09:20:01") == datetime(
        2026, 11, 19, 3, 50, 1, tzinfo=UTC
    )
    assert parse_ist_timestamp("19/11/2026") is None and parse_ist_timestamp("") is None
    assert str(to_decimal("12.50")) == "12.50" and to_decimal("n/a") == 0 and to_decimal("") == 0
    assert to_int("75.0") == 75


def _jwt(claims: object) -> str:
    import base64

    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{part}.sig"


def test_jwt_expiry_reads_exp_and_refuses_anything_else():
    assert jwt_expiry(_jwt({"exp": 1795000000})) == datetime.fromtimestamp(1795000000, tz=UTC)
    assert jwt_expiry(_jwt({"sub": "x"})) is None
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None


@pytest.mark.parametrize(
    ("kind", "write", "expected"),
    [
        ("connect", True, "retryable"),
        ("connect timeout", True, "retryable"),
        ("timeout", True, "ambiguous"),
        ("dropped", True, "ambiguous"),
        ("cut off", True, "ambiguous"),
        ("timeout", False, "retryable"),
        ("dropped", False, "retryable"),
    ],
)
def test_transport_failures_are_classed_once(kind, write, expected):
    assert error_class(transport_failure(kind, write=write)) == expected


# --- every broker's adapter, on the same answers ---------------------------------------------
BROKERS = ["kite", "upstox", "angelone", "fyers", "dhan"]


def _adapter(broker: str):
    credentials = Credentials(
        api_key=f"{broker}key", api_secret="s", access_token="t", client_id="AB1234"
    )
    return adapter_class(broker)(credentials, base_url="http://127.0.0.1:9")


@pytest.mark.parametrize("broker", BROKERS)
@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (WireAnswer(failure="connect"), "retryable"),
        (WireAnswer(failure="connect timeout"), "retryable"),
        (WireAnswer(failure="timeout"), "ambiguous"),
        (WireAnswer(failure="dropped"), "ambiguous"),
        (WireAnswer(failure="cut off"), "ambiguous"),
        (WireAnswer.of(429, {"Retry-After": "0.2"}, b"Too many requests"), "retryable"),
        (WireAnswer.of(504, {}, b"Gateway Timeout"), "ambiguous"),
        (WireAnswer.of(200, {}, b"<html>proxy page</html>"), "ambiguous"),
    ],
    ids=["refused", "connect-timeout", "timeout", "dropped", "cut-off", "429", "504", "html-200"],
)
def test_each_broker_resends_only_what_never_reached_it(broker, answer, expected):
    """The send path resends (after a fresh slot) only a retryable error and looks the order
    up by tag after an ambiguous one: every adapter must say the same for the same answer."""
    with pytest.raises(Exception) as raised:
        _adapter(broker).order_answer(answer)
    assert error_class(raised.value) == expected, (broker, raised.value)
    if expected == "retryable" and answer.status == 429:
        assert raised.value.retry_after == pytest.approx(0.2)


def test_kite_documents_502_as_not_accepted_and_others_do_not():
    """Kite's 502 ("the OMS is down") never reached the OMS: resent. The same status from a
    broker that documents nothing of the kind may have placed the order: looked up."""
    body = json.dumps({"status": "error", "message": "OMS down", "error_type": "NetworkException"})
    with pytest.raises(RetryableError):
        _adapter("kite").order_answer(WireAnswer.of(502, {}, body.encode()))
    with pytest.raises(AmbiguousError):
        _adapter("upstox").order_answer(WireAnswer.of(502, {}, b'{"status":"error"}'))


@pytest.mark.parametrize("broker", ["kite", "upstox"])
def test_an_acknowledgement_without_an_order_id_is_looked_up(broker):
    body = {"status": "success", "data": {}}
    with pytest.raises(AmbiguousError, match="may exist"):
        _adapter(broker).order_answer(WireAnswer.of(200, {}, json.dumps(body).encode()))


# --- refused before anything leaves, or acknowledged without an id -------------------------
def _limit_without_token():
    from decimal import Decimal

    from brokers.base import OrderRequest, OrderType, Product, Side

    return OrderRequest(
        exchange="NFO",
        tradingsymbol="NIFTY26D0825000CE",
        side=Side.BUY,
        quantity=75,
        order_type=OrderType.LIMIT,
        product=Product.NRML,
        tag="NOTOKEN1",
        price=Decimal("100"),
        instrument_token="",
    )


@pytest.mark.parametrize("broker", ["dhan", "angelone"])
def test_brokers_that_name_contracts_by_id_refuse_an_order_without_one_before_sending(broker):
    """Dhan and Angel One name a contract by its id: without it the request is never built
    (nothing reaches the broker, so the send path may report it rejected at once)."""
    from brokers.base import InputRejectedError

    with pytest.raises(InputRejectedError, match="needs the contract's"):
        _adapter(broker).order_request(_limit_without_token())


@pytest.mark.parametrize(
    ("broker", "body"),
    [
        ("dhan", {"orderStatus": "TRANSIT"}),
        ("angelone", {"status": True, "message": "SUCCESS", "data": {}}),
    ],
)
def test_an_acknowledgement_without_an_order_id_is_looked_up_at_every_broker(broker, body):
    with pytest.raises(AmbiguousError, match="look it up by tag"):
        _adapter(broker).order_answer(WireAnswer.of(200, {}, json.dumps(body).encode()))


def test_angel_one_login_needs_the_pin_and_the_current_totp():
    with pytest.raises(PermanentError, match="PIN and the current TOTP"):
        _adapter("angelone").exchange_token(params={"pin": "1234"}, redirect_uri="")
