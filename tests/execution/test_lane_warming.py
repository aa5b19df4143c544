"""Connections opened before T for what a send worker writes at T: each batch adds the orders
it writes at T to one broker host, the lane opens that many (the sum over the process's
batches, a step at a time) and no more, so that nothing connects at T."""

from __future__ import annotations

import asyncio
import time

import pytest

from execution.send import sender
from execution.send.wire import Origin, serialize
from tests.execution.test_wire import ScriptedServer, _ok

pytestmark = pytest.mark.network


def _order(tag: str, phase: int, *, waits: bool = True) -> sender.OutgoingOrder:
    return sender.OutgoingOrder(
        intent_id=1,
        run_id=1,
        tag=tag,
        phase=phase,
        exchange="NFO",
        tradingsymbol="NIFTY26DEC24000CE",
        instrument_token="1",
        side="BUY" if phase == 0 else "SELL",
        quantity=75,
        product="NRML",
        order_type="MARKET",
        price=None,
        algo_id="",
        waits_for_hedges=waits,
    )


@pytest.fixture
def server():
    running = ScriptedServer(lambda request, writer: writer.write(_ok()))
    yield running
    running.stop()


@pytest.fixture
def own_lane():
    the_lane = sender.AsyncLane()
    yield the_lane
    if the_lane._pool is not None:
        the_lane.loop.call_soon_threadsafe(the_lane._pool.close)
    the_lane.loop.call_soon_threadsafe(the_lane.loop.stop)


def _idle(the_lane: sender.AsyncLane, origin: Origin) -> int:
    async def count() -> int:
        return the_lane._pool_get().idle_count(origin)

    return int(the_lane.run(count(), 5))


def _settle(the_lane: sender.AsyncLane, origin: Origin, want: int) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if not the_lane._warming and _idle(the_lane, origin) >= want:
            break
        time.sleep(0.05)
    time.sleep(0.1)  # nothing more is opened after
    return _idle(the_lane, origin)


def test_orders_written_at_t_are_the_first_phase_and_those_that_do_not_wait():
    url = "http://127.0.0.1:9/orders"
    hedged = [_order("h1", 0), _order("h2", 0), _order("s1", 1), _order("s2", 1)]
    wires = {o.tag: serialize("POST", url, {}, b"") for o in hedged}
    origin = Origin.of(url)
    assert sender.origins_at_t(hedged, wires) == {origin: 2}  # the shorts reuse the hedges'
    unhedged = [_order("h1", 0), _order("s1", 1, waits=False)]
    assert sender.origins_at_t(unhedged, wires) == {origin: 2}
    # An order with no request (refused before anything leaves) needs no connection.
    assert sender.origins_at_t(hedged, {"h1": wires["h1"]}) == {origin: 1}
    # A short built in full at T - ε (no template) waits for its hedges: no connection of its
    # own, even when it is the only order counted there.
    assert sender.origins_at_t(hedged, {"s1": wires["s1"]}) == {}


@pytest.fixture
def files_for_thousands(monkeypatch):
    """Room for 1,400 connections at both ends in this process (a machine whose soft limit is
    lower gets it raised towards the hard one for the test)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if limit < 4000:
        pytest.skip("this machine allows fewer than 4,000 open files")
    raised = soft != resource.RLIM_INFINITY and soft < limit
    if raised:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    yield
    if raised:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("files_for_thousands")
def test_the_lane_opens_what_all_its_batches_write_at_t_and_no_more(server, own_lane):
    origin = Origin.of(server.url)
    fire_at = time.time() + 30
    # Two batches of one T (more than the 512 a process once opened at most per host).
    own_lane.want(fire_at, {origin: 700}, warm=True)
    own_lane.want(fire_at, {origin: 600}, warm=True)
    assert _settle(own_lane, origin, 1300) == 1300
    assert server.connections == 1300
    # Asked again at T - ε: all are idle and fresh, nothing is opened.
    own_lane.warm_wanted(fire_at)
    assert _settle(own_lane, origin, 1300) == 1300
    assert server.connections == 1300
    # A batch held far ahead of T only adds to what is wanted; the pass at T - ε opens it.
    own_lane.want(fire_at, {origin: 100}, warm=False)
    time.sleep(0.2)
    assert server.connections == 1300
    own_lane.warm_wanted(fire_at)
    assert _settle(own_lane, origin, 1400) == 1400
    assert server.connections == 1400


def test_the_written_orders_find_their_connections_open(server, own_lane):
    origin = Origin.of(server.url)
    own_lane.want(time.time() + 30, {origin: 40}, warm=True)
    assert _settle(own_lane, origin, 40) == 40
    prepared = serialize("POST", server.url + "/orders", {}, b"a=1")

    async def burst() -> list[int]:
        pool = own_lane._pool_get()
        flights = [pool.write_now(prepared) for _ in range(40)]
        assert all(f is not None for f in flights)
        answers = await asyncio.gather(*(pool.answer_of(f) for f in flights))
        return [a[1].status for a in answers]

    assert own_lane.run(burst(), 10) == [200] * 40
    assert server.connections == 40  # none opened at T


def test_what_is_warmed_stays_within_the_open_files_share(server, own_lane, monkeypatch):
    monkeypatch.setattr(sender, "files_limit", lambda: 50)
    origin = Origin.of(server.url)
    own_lane.want(time.time() + 30, {origin: 300}, warm=True)
    assert _settle(own_lane, origin, 50) == 50
    assert server.connections == 50
