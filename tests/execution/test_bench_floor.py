"""`bench_boundary --mode floor`: the requests are split over client processes that write them
at T. Every request reaches its server exactly once, none before T, and the report says when
each was written. An account's later steps (the shorts) leave only on its hedges' answers, and
never after a refused one."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from aiohttp import web

from execution.bench import percentile
from execution.bench_floor import fire, split
from tests.execution.realworker import SKIP_UNDER_FAKETIME


class _Server:
    """A bare HTTP server in a thread: records (arrival ns, tag) of every POST; answers a tag
    starting "slow" after SLOW seconds, and refuses one starting "bad" (HTTP 500)."""

    SLOW = 0.15

    def __init__(self) -> None:
        self.arrivals: list[tuple[int, str]] = []
        self.loop = asyncio.new_event_loop()
        self.url = ""
        ready = threading.Event()
        self._runner: web.AppRunner | None = None

        async def order(request: web.Request) -> web.Response:
            arrived = time.time_ns()
            body = await request.read()
            tag = body.decode()
            self.arrivals.append((arrived, tag))
            if tag.startswith("slow"):
                await asyncio.sleep(self.SLOW)
            if tag.startswith("bad"):
                return web.json_response({"status": "error"}, status=500)
            return web.json_response({"status": "success"})

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/orders", order)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/orders"
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop(self) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def servers() -> Iterator[list[_Server]]:
    running = [_Server(), _Server()]
    yield running
    for server in running:
        server.stop()


def test_split_deals_whole_groups_round_robin_and_covers_every_item_once():
    groups = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert split(groups, 3) == [[[0, 1], [6, 7]], [[2, 3], [8, 9]], [[4, 5]]]
    assert split([[1], [2]], 5) == [[[1]], [[2]]]  # never an empty share
    assert split([], 2) == [[]]


def _order(tag: str, phase: int, waits: bool = True):
    from execution.send.sender import OutgoingOrder

    return OutgoingOrder(
        intent_id=0, run_id=1, tag=tag, phase=phase, exchange="NFO", tradingsymbol="X",
        instrument_token="1", side="BUY", quantity=75, product="NRML", order_type="MARKET",
        price=None, algo_id="", waits_for_hedges=waits,
    )  # fmt: skip


def test_the_floor_steps_are_the_engines_phases_and_orders_that_do_not_wait_go_at_t():
    from execution.bench import steps_of

    def tags(steps):
        return [[o.tag for o in step] for step in steps]

    hedged = [_order("s1", 1), _order("h1", 0), _order("s2", 1), _order("h2", 0)]
    assert tags(steps_of(hedged)) == [["h1", "h2"], ["s1", "s2"]]
    # --hedge none: the shorts do not wait, so every order is written at T
    unhedged = [_order("s1", 1, waits=False), _order("h1", 0), _order("s2", 1, waits=False)]
    assert tags(steps_of(unhedged)) == [["h1", "s1", "s2"]]
    # three phases: each waiting one is a step of its own; the first phase need not be 0
    three = [_order("c", 3), _order("a", 1), _order("b", 2), _order("b2", 2, waits=False)]
    assert tags(steps_of(three)) == [["a", "b2"], ["b"], ["c"]]


@pytest.mark.network
@pytest.mark.slow
@SKIP_UNDER_FAKETIME  # T crosses into spawned client processes (their faked clocks restart)
@pytest.mark.parametrize("processes", [1, 3])
def test_every_request_is_written_once_by_the_processes_and_none_before_t(servers, processes):
    # 75 accounts of 4 orders written at T (one step), alternately on one server and the other
    requests_ = [
        [
            [
                ("POST", servers[a % 2].url, {"Content-Type": "text/plain"}, f"tag{i:04d}".encode())
                for i in range(a * 4, a * 4 + 4)
            ]
        ]
        for a in range(75)
    ]
    fire_at = time.time() + 4.0  # the processes start, connect and wait for it
    report = fire(requests_, fire_at, processes)
    time.sleep(0.5)  # the servers' threads record the last arrivals

    arrivals = [a for server in servers for a in server.arrivals]
    assert Counter(tag for _, tag in arrivals) == Counter(f"tag{i:04d}" for i in range(300))
    assert min(ns for ns, _ in arrivals) >= fire_at * 1e9  # nothing before T
    assert report.processes == processes
    assert [s.requests for s in report.shares] == [
        sum(len(step) for steps in share for step in steps) for share in split(requests_, processes)
    ]
    assert all(not s.failures for s in report.shares)
    # Every request had its connection open before T and was written at or after T.
    assert sum(s.connections for s in report.shares) == 300
    written = [w for share in report.shares for w in share.written]
    assert len(written) == 300 and min(written) >= fire_at
    assert report.cpu_seconds > 0
    fields = report.fields(fire_at, percentile)
    assert fields["floor_processes"] == processes and fields["floor_opened_at_t"] == 0
    assert fields["floor_failures"] == 0
    assert fields["floor_held_back"] == 0 and fields["floor_after_hedges"] == 0
    assert fields["client_ready_before_t_ms"] > 0 and not report.late(fire_at)
    assert 0 <= fields["client_written_ms"]["first"] <= fields["client_written_ms"]["p99"]
    assert len(fields["client_done_ms"]) == processes


@pytest.mark.network
@SKIP_UNDER_FAKETIME  # T crosses into a spawned client process (its faked clock restarts)
def test_a_server_that_is_gone_is_reported_as_failures_not_raised():
    gone = "http://127.0.0.1:9/orders"  # the discard port: nothing listens
    report = fire([[[("POST", gone, {}, b"x"), ("POST", gone, {}, b"y")]]], time.time() + 2.0, 1)
    assert report.shares[0].connections == 0
    assert len(report.shares[0].failures) == 2
    assert report.fields(0.0, percentile)["floor_failures"] == 2


def test_the_command_passes_floor_processes_on_only_when_given():
    from execution.management.commands.bench_boundary import _flags

    options = {
        "strategies": 2, "legs": 4, "accounts": 2, "brokers": "kite,upstox", "latency_ms": 30.0,
        "mode": "floor", "trials": 1, "workers": 2, "lead": 40.0, "hedge": "ack",
        "fault_rate": 0.0, "seed": 1, "kill_worker": False,
    }  # fmt: skip
    assert "--floor-processes" not in _flags({**options, "floor_processes": 0})
    flags = _flags({**options, "floor_processes": 3})
    assert flags[flags.index("--floor-processes") + 1] == "3"


@pytest.mark.network
def test_one_client_in_this_process_writes_its_share_at_t_on_connections_opened_before(servers):
    # The client processes' own code, run here (the spawned processes are not measured).
    import multiprocessing

    from execution.bench_floor import _client
    from execution.send.wire import serialize

    share = [[[serialize("POST", servers[i % 2].url, {}, f"own{i}".encode())]] for i in range(40)]
    fire_at = time.time() + 1.0
    receiver, sender = multiprocessing.Pipe(duplex=False)
    _client(share, fire_at, sender)
    report = receiver.recv()
    time.sleep(0.3)

    tags = Counter(tag for server in servers for _, tag in server.arrivals)
    assert tags == Counter(f"own{i}" for i in range(40))
    assert report.connections == 40 and report.opened_at_t == 0 and not report.failures
    assert report.ready is not None and report.ready < fire_at <= min(report.written)
    assert report.cpu_seconds > 0
    assert gc.isenabled()  # the collector paused for the burst only


@pytest.mark.network
@SKIP_UNDER_FAKETIME  # T crosses into a spawned client process (its faked clock restarts)
def test_an_accounts_shorts_leave_on_its_hedges_answers_and_never_after_a_refused_one(servers):
    def post(server: _Server, tag: str):
        return ("POST", server.url, {"Content-Type": "text/plain"}, tag.encode())

    accounts = [
        # hedges answered SLOW late: the shorts leave after both answers
        [[post(servers[0], "slow-h1"), post(servers[0], "slow-h2")], [post(servers[0], "s1")]],
        # hedges answered at once: the short does not wait for the other account's
        [[post(servers[1], "h3"), post(servers[1], "h4")], [post(servers[1], "s2")]],
        # a refused hedge: neither later step is written
        [[post(servers[0], "bad-h5"), post(servers[0], "h6")], [post(servers[0], "s3")],
         [post(servers[0], "s4")]],
    ]  # fmt: skip
    fire_at = time.time() + 2.0
    report = fire(accounts, fire_at, 1)
    time.sleep(0.3)

    arrived = {tag: ns / 1e9 for server in servers for ns, tag in server.arrivals}
    assert set(arrived) == {"slow-h1", "slow-h2", "s1", "h3", "h4", "s2", "bad-h5", "h6"}
    # hedges at T; each short after its own hedges' answers
    assert max(arrived[t] for t in ("slow-h1", "slow-h2", "h3", "h4")) - fire_at < 0.1
    assert arrived["s1"] >= max(arrived["slow-h1"], arrived["slow-h2"]) + _Server.SLOW
    assert arrived["s2"] < arrived["s1"]
    fields = report.fields(fire_at, percentile)
    assert fields["floor_held_back"] == 2  # s3 and s4
    assert fields["floor_after_hedges"] == 2  # s1 and s2
    assert fields["floor_connections"] == 6  # the first steps' only: the shorts reuse them
    assert fields["floor_failures"] == 1  # the refused hedge, in words
    assert "HTTP 500" in report.shares[0].failures[0]
    assert len(report.shares[0].written) == 8
