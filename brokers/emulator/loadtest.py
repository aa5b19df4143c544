"""Bounded load test of one emulator: how many order requests per second it takes.

    python -m brokers.emulator.loadtest --broker kite --orders 3000 [--concurrency 64]

Starts the emulator as a child process on 127.0.0.1 (a free port, accounts created on first
use, spread so that no account passes its 10 orders/s), sends exactly `--orders` order
requests over `--concurrency` keep-alive connections, stops the emulator and prints
one JSON object: client-side orders per second and latency percentiles, the emulator's own
rate taken from the arrival times in its order log, and orders per CPU-second of the emulator
process (its capacity on one free core, whatever the neighbours do). It stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from brokers.emulator.handle import start_subprocess
from brokers.emulator.registry import BROKERS, emulator_class
from execution.markettime import IST
from execution.reference.symbols import kite_tradingsymbol


async def drive(
    broker: str, base_urls: dict[str, str], *, orders: int, concurrency: int, symbol: str
) -> dict[str, Any]:
    """Send `orders` order requests over `concurrency` keep-alive connections.

    The client speaks HTTP/1.1 over plain asyncio streams: a full HTTP client library costs
    more CPU per request than the emulator does, and on two cores the measurement would be
    of the client."""
    cls = emulator_class(broker)
    accounts = max(1, orders // 5)
    counter = iter(range(orders))
    statuses: Counter[int] = Counter()
    latencies: list[float] = []

    async def worker() -> None:
        connections: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            for n in counter:
                host, path, headers, form, body = cls.load_request(
                    api_key=f"load{n % accounts:05d}", n=n, symbol=symbol
                )
                url = urlsplit(base_urls[host])
                if host not in connections:
                    connections[host] = await asyncio.open_connection(url.hostname, url.port)
                reader, writer = connections[host]
                if form is not None:
                    payload = urlencode(form).encode()
                    content_type = "application/x-www-form-urlencoded"
                else:
                    payload = json.dumps(body).encode()
                    content_type = "application/json"
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                started = time.perf_counter()
                request = (
                    f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\n{head}"
                    f"Content-Type: {content_type}\r\nContent-Length: {len(payload)}\r\n\r\n"
                )
                writer.write(request.encode() + payload)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                statuses[int(status_line.split()[1])] += 1
        finally:
            for _, writer in connections.values():
                writer.close()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 120)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "broker": broker,
        "orders": orders,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "client_orders_per_second": round(orders / elapsed),
        "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms_p50": round(statistics.median(latencies) * 1000, 2),
        "latency_ms_p99": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m brokers.emulator.loadtest")
    parser.add_argument("--broker", required=True, choices=sorted(BROKERS))
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--symbol", default="", help="Kite-style contract (default: a NIFTY weekly)"
    )
    args = parser.parse_args(argv)
    if not args.symbol:
        # A NIFTY weekly a week out: its Kite symbol carries the exact expiry date.
        expiry = datetime.now(IST).date() + timedelta(days=7)
        args.symbol = kite_tradingsymbol("NIFTY", expiry, 24000, "CE", monthly=False)
    emulator = start_subprocess(args.broker, auto_accounts=True)
    try:
        instruments = emulator_class(args.broker).load_instruments(args.symbol)
        if instruments:
            emulator.add_instruments(instruments)
        cpu_before = process_cpu_seconds(emulator.process.pid)
        result = asyncio.run(
            drive(
                args.broker,
                emulator.base_urls,
                orders=args.orders,
                concurrency=args.concurrency,
                symbol=args.symbol,
            )
        )
        cpu = process_cpu_seconds(emulator.process.pid) - cpu_before
        arrivals = sorted(e["arrival_ns"] for e in emulator.order_log())
        outcomes = Counter(e["outcome"] for e in emulator.order_log())
    finally:
        emulator.stop()
    span = (arrivals[-1] - arrivals[0]) / 1e9 if len(arrivals) > 1 else 0.0
    result["emulator_outcomes"] = dict(outcomes)
    result["emulator_orders_per_second"] = round(len(arrivals) / span) if span else None
    # On a shared machine wall-clock rates measure the neighbours too; CPU time does not.
    result["emulator_cpu_seconds"] = round(cpu, 3)
    result["orders_per_emulator_cpu_second"] = round(args.orders / cpu) if cpu else None
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
