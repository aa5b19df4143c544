"""The boundary benchmark's floor (`bench_boundary --mode floor`): the same orders as the
engine's, built before T by the accounts' adapters, written at T by bare clients with the
engine's own wire client (execution.send.wire) and nothing else: no database, no Celery.

The requests are serialized and split over `processes` client processes before T (each
account's orders whole to one process, the accounts dealt round robin, so each process has a
like share of every broker). Each process gets its share as bytes
when it starts, opens one keep-alive connection per request of its share (HTTP/1.1 carries one
order at a time per connection, so every order can leave at once), freezes its garbage
collector, and waits for T by the wall clock (never before it, as the engine's sender). At T it
writes its whole share in one pass without yielding to its loop, then reads the answers. It
reports when it wrote each request, so the benchmark shows both sides: when the clients wrote
(`client_written_ms`) and when the emulators read (`lag_ms`). With the clients done writing in
a few tens of milliseconds, what is left of the lag is the emulators' and the machine's.

One process used to do it all, with 800 connections per broker warmed and the rest opened at T
(more than the emulators' listen backlog at once): at 10,000 orders its first order left
seconds late. That measured the client, not the machine.

The floor keeps the strategies' hedge rule, as the engine does: each account's orders come in
steps (`steps_of`: the orders written at T, then each later phase that waits for its hedges).
Only the first step is written in the pass at T; an account's next step is written, on the
connections the answers freed, when every answer of the steps before it came back accepted
(HTTP below 400), and never when one did not (`held_back`). With `--hedge none` every order is
in the first step, and the floor writes them all at T. A floor that wrote the shorts at T
while the engine waits for the hedges' answers would compare two different jobs: with it the
lag of the shorts includes the emulators' answers to the hedges, for the floor as for the
engine.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# One request as the adapters build it (method, URL, headers, body); an account's requests in
# steps, each written when the answers of the steps before it came back accepted.
Request = tuple[str, str, dict[str, str], bytes]
Steps = list[list[Any]]

# Connections are opened this many at a time per origin (the emulators listen with a backlog of
# 1024; several client processes warm at once).
WARM_STEP = 256
WARM_ROUNDS = 8  # attempts, each WARM_STEP at a time until a step gains none
# The client processes start and connect before T; they may take this long past T to answer.
ANSWER_WAIT_SECONDS = 60.0
# The floor's orders are built this long (plus the dispatch's own lead) before T, for the
# client processes to start and connect: seconds, fixed plus per order.
PREPARE_SECONDS = 2.0
PREPARE_SECONDS_PER_ORDER = 0.001
# Each client process spins (does not sleep) this long before T.
SPIN_BEFORE_SECONDS = 0.05


def prepare_seconds(orders: int) -> float:
    """How long before the dispatch's own lead the floor starts its dispatch."""
    return PREPARE_SECONDS + PREPARE_SECONDS_PER_ORDER * orders


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class ShareReport:
    """What one client process did with its share."""

    requests: int = 0
    connections: int = 0  # keep-alive connections open at T
    ready: float | None = None  # epoch seconds: connected and waiting for T
    written: list[float] = field(default_factory=list)  # epoch seconds, one per request
    opened_at_t: int = 0  # requests that found no open connection (opened one after T)
    held_back: int = 0  # requests of a later step not written: an answer before it failed
    later_steps: int = 0  # requests written after T on their hedges' answers
    failures: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0  # from receiving the share to the last answer


@dataclass
class FloorReport:
    processes: int
    shares: list[ShareReport]
    cpu_seconds: float  # the clients' and this process's serialization

    def late(self, fire_at: float) -> bool:
        """A process was not connected and waiting by T (or never reported)."""
        return any(s.ready is None or s.ready > fire_at for s in self.shares)

    def fields(self, fire_at: float, percentile: Any) -> dict[str, Any]:
        """The floor's own figures for the benchmark's JSON (times in ms after T)."""
        written = [(w - fire_at) * 1000 for share in self.shares for w in share.written]
        return {
            "floor_processes": self.processes,
            "floor_connections": sum(s.connections for s in self.shares),
            "floor_opened_at_t": sum(s.opened_at_t for s in self.shares),
            "floor_failures": sum(len(s.failures) for s in self.shares),
            "floor_held_back": sum(s.held_back for s in self.shares),
            # orders written on their hedges' answers (0: every order written at T)
            "floor_after_hedges": sum(s.later_steps for s in self.shares),
            # how long before T the last process was ready (negative: late, the floor unsound)
            "client_ready_before_t_ms": round(
                min(((fire_at - s.ready) * 1000 for s in self.shares if s.ready), default=0.0),
                1,
            ),
            "client_written_ms": {
                "first": round(min(written, default=0.0), 2),
                "p50": round(percentile(written, 50), 1),
                "p99": round(percentile(written, 99), 1),
                "max": round(max(written, default=0.0), 1),
            },
            # when each process wrote its last request: a slow process shows here
            "client_done_ms": [
                round((max(s.written, default=fire_at) - fire_at) * 1000, 1) for s in self.shares
            ],
        }


def split(groups: list[Any], processes: int) -> list[list[Any]]:
    """Deal the groups (one account's orders each) round robin over `processes` shares, each
    group whole to one share (an account's legs leave together, as from the engine's one task
    per account); no share is empty unless there are fewer groups."""
    count = max(1, min(processes, len(groups)))
    return [groups[i::count] for i in range(count)]


def fire(
    accounts: list[Steps],
    fire_at: float,
    processes: int,
    on_start: Callable[[list[int]], None] | None = None,
) -> FloorReport:
    """Write every account's requests (`Request`s in steps, see the module docstring) from
    `processes` client processes, the first steps at `fire_at` (epoch seconds); returns when
    every process has its answers (or gave up on them). `on_start` gets the processes' ids
    once they run."""
    from execution.send.wire import serialize

    started = own_cpu()
    prepared = [[[serialize(*request) for request in step] for step in steps] for steps in accounts]
    shares = split(prepared, processes)
    cpu = own_cpu() - started
    # spawn, not fork: a child of this Django process must not inherit its database
    # connections or threads; it imports the wire client only.
    context = multiprocessing.get_context("spawn")
    running = []
    for share in shares:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_client, args=(share, fire_at, sender), daemon=True)
        process.start()
        sender.close()
        running.append((process, receiver))
    if on_start is not None:
        on_start([process.pid for process, _ in running if process.pid is not None])
    reports = []
    for process, receiver in running:
        wait = max(0.0, fire_at - time.time()) + ANSWER_WAIT_SECONDS
        if receiver.poll(wait):
            reports.append(receiver.recv())
        else:
            reports.append(ShareReport(failures=["no report from the client process"]))
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)
    return FloorReport(
        processes=len(shares), shares=reports, cpu_seconds=cpu + sum(r.cpu_seconds for r in reports)
    )


def _client(share: list[Any], fire_at: float, pipe: Any) -> None:
    """One client process: connect, wait for T, write the share, read the answers."""
    started = own_cpu()
    report = asyncio.run(_fire_share(share, fire_at))
    report.cpu_seconds = own_cpu() - started
    pipe.send(report)
    pipe.close()


async def _warm(pool: Any, origin: Any, wanted: int) -> int:
    """Open connections to `origin` until `wanted` are idle, WARM_STEP at a time."""
    idle = 0
    for _ in range(WARM_ROUNDS):
        idle = await pool.warm(origin, wanted, step=WARM_STEP)
        if idle >= wanted:
            break
    return idle


async def _fire_share(share: list[Steps], fire_at: float) -> ShareReport:
    from execution.send.sender import wait_until
    from execution.send.wire import WirePool

    report = ShareReport(requests=sum(len(step) for steps in share for step in steps))
    # Connections opened well before T are still written on (the emulators keep idle ones
    # 75 s, aiohttp's default; the engine's 20 s guards against real brokers). The later steps
    # reuse the connections their hedges' answers free, as the engine's do.
    firsts = [steps[0] if steps else [] for steps in share]
    pool = WirePool(
        max_idle_per_origin=max(1, report.requests),
        idle_max_seconds=max(30.0, fire_at - time.time() + 10.0),
    )
    per_origin = Counter(prepared.origin for first in firsts for prepared in first)
    opened = await asyncio.gather(*(_warm(pool, o, n) for o, n in per_origin.items()))
    report.connections = sum(opened)
    # Nothing of the preparation is collected at T.
    gc.collect()
    gc.freeze()
    gc.disable()
    report.ready = time.time()
    delay = fire_at - time.time() - SPIN_BEFORE_SECONDS
    if delay > 0:
        await asyncio.sleep(delay)
    while time.time() < fire_at - SPIN_BEFORE_SECONDS / 10:
        pass  # awake and on a core when T comes (a process asleep until T woke up to 30 ms late)
    wait_until(fire_at)  # the wall clock has the last word: never before T
    flights: list[list[Any]] = []
    for first in firsts:  # one pass, no yield to the loop: every first step leaves now
        flights.append([pool.write_now(prepared) or prepared for prepared in first])
    outcomes = await asyncio.gather(
        *(
            _account(pool, written, steps[1:], report)
            for written, steps in zip(flights, share, strict=True)
        )
    )
    for answers in outcomes:
        for outcome in answers:
            if isinstance(outcome, BaseException):
                report.failures.append(repr(outcome))
            elif outcome[1].status >= 400:
                report.failures.append(f"HTTP {outcome[1].status}: {outcome[1].body[:200]!r}")
    pool.close()
    gc.unfreeze()
    gc.enable()
    return report


async def _account(pool: Any, first: list[Any], later: Steps, report: ShareReport) -> list[Any]:
    """One account after T: the answers of its first step (each an in-flight request, or the
    prepared request that found no open connection, sent now), then its later steps one after
    the other, each when every answer before it came back accepted. Returns every answer (or
    the exception of a request that failed)."""
    from execution.send.wire import Prepared

    report.written.extend(f.sent for f in first if not isinstance(f, Prepared))
    report.opened_at_t += sum(isinstance(f, Prepared) for f in first)
    answers = await asyncio.gather(
        *(pool.send(f) if isinstance(f, Prepared) else pool.answer_of(f) for f in first),
        return_exceptions=True,
    )
    report.written.extend(
        a[0]
        for a, f in zip(answers, first, strict=True)
        if isinstance(f, Prepared) and not isinstance(a, BaseException)
    )
    for index, step in enumerate(later):
        if any(isinstance(a, BaseException) or a[1].status >= 400 for a in answers):
            report.held_back += sum(len(s) for s in later[index:])
            break
        done = await asyncio.gather(*(pool.send(p) for p in step), return_exceptions=True)
        written = [a[0] for a in done if not isinstance(a, BaseException)]
        report.written.extend(written)
        report.later_steps += len(written)
        answers.extend(done)
    return answers
