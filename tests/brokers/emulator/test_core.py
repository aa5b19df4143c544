"""The emulator core's shared behaviour, exercised over real HTTP on 127.0.0.1 through the
Kite emulator: rate windows, static IP, token cut-off, faults, latency and the order log."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest
import requests

from brokers.base import next_ist_cutoff
from brokers.emulator import start_in_thread, start_subprocess
from brokers.emulator.core import EmulatorOptions, FaultPlan
from execution.markettime import IST
from tests.brokers.emulator.conftest import KiteSession

pytestmark = pytest.mark.network


@pytest.mark.parametrize(
    ("issued", "cutoff_hour", "cutoff_minute", "expires"),
    [
        (datetime(2026, 11, 20, 10, 0), 6, 0, datetime(2026, 11, 21, 6, 0)),  # Kite
        (datetime(2026, 11, 20, 5, 59), 6, 0, datetime(2026, 11, 20, 6, 0)),
        (datetime(2026, 11, 20, 2, 30), 3, 30, datetime(2026, 11, 20, 3, 30)),  # Upstox
        (datetime(2026, 11, 20, 3, 30), 3, 30, datetime(2026, 11, 21, 3, 30)),
    ],
)
def test_token_dies_at_the_next_daily_cutoff_in_ist(issued, cutoff_hour, cutoff_minute, expires):
    from datetime import time as dtime

    got = next_ist_cutoff(issued.replace(tzinfo=IST), dtime(cutoff_hour, cutoff_minute))
    assert got == expires.replace(tzinfo=IST)


def test_eleventh_order_in_one_second_gets_429_and_window_slides(kite):
    codes = [kite.order(tag=f"r{i}").status_code for i in range(11)]
    assert codes == [200] * 10 + [429]
    body = kite.order(tag="r12").json()
    assert body["error_type"] == "NetworkException"
    time.sleep(1.05)
    assert kite.order(tag="r13").status_code == 200
    outcomes = [e["outcome"] for e in kite.emulator.order_log()]
    assert outcomes.count("rate") == 2


def test_write_from_unregistered_ip_is_refused_but_reads_pass(kite):
    kite.emulator.configure(registered_ip="203.0.113.7")
    refused = kite.order()
    assert refused.status_code == 403
    assert refused.json()["error_type"] == "PermissionException"
    assert "IP" in refused.json()["message"]
    assert kite.get("/orders").json()["data"] == []
    # X-Forwarded-For is ignored unless the emulator is told to trust it.
    assert kite.order(headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403


def test_forwarded_for_is_honoured_only_when_trusted(quotes):
    emulator = start_in_thread(
        "kite", quotes=quotes, registered_ip="203.0.113.7", trust_forwarded_for=True
    )
    try:
        kite = KiteSession(emulator)
        assert kite.order(headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200
        assert kite.order(headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 403
    finally:
        emulator.stop()


def test_token_expires_at_cutoff_on_the_emulator_clock(kite):
    kite.emulator.set_clock(datetime(2026, 11, 23, 5, 59, 50, tzinfo=IST))
    kite.token = kite.emulator.issue_token(kite.api_key)
    assert kite.get("/user/profile").status_code == 200
    kite.emulator.advance_clock(11)
    expired = kite.get("/user/profile")
    assert expired.status_code == 403
    assert expired.json()["error_type"] == "TokenException"


def test_5xx_fault_refuses_before_creating_an_order(kite):
    kite.emulator.queue_faults("5xx")
    answer = kite.order(tag="x5")
    assert answer.status_code == 502  # Kite documents 502 (OMS down) as not accepted
    assert kite.get("/orders").json()["data"] == []


def test_accept_then_drop_creates_the_order_and_closes_the_connection(kite):
    kite.emulator.queue_faults("drop")
    with pytest.raises(requests.ConnectionError):
        kite.order(tag="lost1")
    book = kite.get("/orders").json()["data"]
    assert [o["tag"] for o in book] == ["lost1"]
    assert kite.emulator.order_log()[-1]["outcome"] == "drop"


def test_hang_fault_outlasts_the_client_timeout_with_the_order_created(quotes):
    emulator = start_in_thread("kite", quotes=quotes, hang_seconds=1.0)
    try:
        kite = KiteSession(emulator)
        emulator.queue_faults("hang")
        with pytest.raises(requests.ReadTimeout):
            kite.order(tag="slow1", timeout=0.3)
        assert [o["tag"] for o in kite.get("/orders").json()["data"]] == ["slow1"]
    finally:
        emulator.stop()


def test_reject_later_acknowledges_then_rejects(kite):
    kite.emulator.queue_faults("reject-later")
    answer = kite.order(tag="rl1")
    assert answer.status_code == 200
    order = kite.get("/orders").json()["data"][0]
    assert order["status"] == "REJECTED"
    assert order["filled_quantity"] == 0


def test_random_faults_follow_the_seed():
    def draws(seed: int) -> list[str | None]:
        plan = FaultPlan(EmulatorOptions(fail_rate=0.5, seed=seed, fault=("5xx", "drop")))
        return [plan.next() for _ in range(40)]

    first = draws(3)
    assert first == draws(3)
    assert {None, "5xx", "drop"} == set(first)
    assert first != draws(4)


def test_order_log_records_arrival_before_latency_and_writes_jsonl(tmp_path, quotes):
    log_file = tmp_path / "orders.jsonl"
    emulator = start_in_thread("kite", quotes=quotes, latency_ms=150, order_log=str(log_file))
    kite = KiteSession(emulator)
    sent = time.time_ns()
    assert kite.order(tag="lat1").status_code == 200
    answered = time.time_ns()
    entry = emulator.order_log()[0]
    emulator.stop()
    assert sent <= entry["arrival_ns"] <= answered - 140_000_000
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["tag"], e["outcome"], e["arrival_ns"]) for e in lines] == [
        ("lat1", "accepted", entry["arrival_ns"])
    ]


def test_subprocess_emulator_serves_and_flushes_its_log_on_stop(tmp_path):
    log_file = tmp_path / "orders.jsonl"
    emulator = start_subprocess("kite", fault=("5xx",), order_log=str(log_file))
    try:
        kite = KiteSession(emulator)
        assert kite.order(tag="sub1").status_code == 502
    finally:
        emulator.stop()
    assert emulator.process.returncode == 0
    entries = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["tag"], e["outcome"]) for e in entries] == [("sub1", "server_error")]


def test_partial_fills_then_complete(quotes):
    emulator = start_in_thread("kite", quotes=quotes, fill_delay_ms=100, partial_fills=True)
    try:
        kite = KiteSession(emulator)
        assert kite.order(tag="pf1", quantity="150").status_code == 200
        assert kite.get("/orders").json()["data"][0]["status"] == "OPEN PENDING"
        time.sleep(0.12)
        order = kite.get("/orders").json()["data"][0]
        assert (order["status"], order["filled_quantity"]) == ("OPEN", 75)
        time.sleep(0.1)
        order = kite.get("/orders").json()["data"][0]
        assert (order["status"], order["filled_quantity"]) == ("COMPLETE", 150)
    finally:
        emulator.stop()


def test_housekeeping_waits_for_a_quiet_moment_and_only_after_requests():
    from brokers.emulator.registry import emulator_class

    emulator = emulator_class("kite")(EmulatorOptions())
    quiet, wait = emulator.HOUSEKEEPING_QUIET, emulator.HOUSEKEEPING_MAX_WAIT
    assert not emulator.housekeeping_due(now=1000.0)  # nothing happened yet
    # A burst starts long after the last housekeeping: not in its middle (that was the bug:
    # a full collection ran right at the start of the burst at T).
    emulator._busy_since = emulator._last_request = 100.0
    assert not emulator.housekeeping_due(now=100.0 + quiet / 2)
    assert emulator.housekeeping_due(now=100.0 + quiet + 0.01)  # the burst is over
    emulator._last_request = 100.0 + wait  # traffic without a pause for MAX_WAIT
    assert emulator.housekeeping_due(now=100.0 + wait + 0.01)
    emulator.housekeep()
    assert not emulator.housekeeping_due(now=200.0)  # nothing new since: idle


def test_simulated_quotes_warm_up_prices_an_option_before_the_first_order():
    from brokers.emulator.core import Clock
    from brokers.emulator.pricing import SimulatedQuotes

    quotes = SimulatedQuotes(seed=3, clock=Clock())
    quotes.warm()  # must not raise on any day (a Saturday included); the first order is then warm
    spot = quotes.quote("NSE", "NIFTY 50")
    assert spot is not None and spot.last_price > 0


def test_emulator_process_does_not_log_connections_cut_by_the_client():
    import logging

    from brokers.emulator.__main__ import _not_a_cut_connection

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "aiohttp.server",
            logging.ERROR,
            __file__,
            1,
            "Error handling request",
            None,
            (type(exc), exc, None),
        )

    assert not _not_a_cut_connection(record(ConnectionResetError("Connection lost")))
    assert _not_a_cut_connection(record(ValueError("a real bug")))  # still logged


def test_traffic_counts_each_route_and_the_connections_accepted_in_a_window(kite):
    """What a benchmark reads beside an emulator's CPU: every broker-API request by route
    (orders and anything else), and the connections accepted, between two instants."""
    before = time.time_ns()
    kite.order(tag="t1")
    kite.order(tag="t2")  # the same keep-alive connection: not a second one
    kite.get("/orders")
    other = requests.Session()
    other.get(kite.emulator.base_url + "/orders", headers=kite.headers, timeout=5)
    after = time.time_ns()
    seen = kite.emulator.traffic(before, after)
    assert seen["requests"] == {"POST /orders/{variety}": 2, "GET /orders": 2}
    assert seen["new_connections"] == 2
    # The control plane's requests (the account, the token) are not broker traffic.
    assert kite.emulator.traffic(0, before - 1)["requests"] == {}
    refused = requests.get(
        kite.emulator.base_url + "/_emulator/traffic", params={"since_ns": "x"}, timeout=5
    )
    assert refused.status_code == 400
    assert "integers" in refused.json()["error"]
