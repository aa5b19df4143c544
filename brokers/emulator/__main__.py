"""`python -m brokers.emulator --broker NAME --port N [...]`: one emulator on 127.0.0.1.

Prints one line `LISTENING api=http://127.0.0.1:PORT [hft=…]` when ready; stops on SIGTERM
or Ctrl-C, flushing the order log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
from decimal import Decimal
from typing import Any

from brokers.emulator.core import FAULT_MODES, EmulatorOptions
from brokers.emulator.handle import _cleanup, serve
from brokers.emulator.registry import BROKERS, emulator_class


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m brokers.emulator", description=__doc__)
    parser.add_argument("--broker", required=True, choices=sorted(BROKERS))
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="0..1, random faults")
    parser.add_argument(
        "--fault", default="", help=f"comma-separated, from {','.join(FAULT_MODES)}"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--registered-ip", default="127.0.0.1")
    parser.add_argument("--trust-forwarded-for", action="store_true")
    parser.add_argument("--order-log", default=None, help="append JSON lines to this file")
    parser.add_argument("--orders-per-second", type=int, default=None)
    parser.add_argument("--fill-delay-ms", type=float, default=0.0)
    parser.add_argument("--partial-fills", action="store_true")
    parser.add_argument("--hang-seconds", type=float, default=5.0)
    parser.add_argument("--market-seed", type=int, default=7)
    parser.add_argument("--default-cash", type=Decimal, default=Decimal("1000000"))
    parser.add_argument(
        "--auto-accounts", action="store_true", help="unknown keys/tokens become accounts"
    )
    parser.add_argument(
        "--listed-only", action="store_true", help="refuse contracts the master does not list"
    )
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    values: dict[str, Any] = {k: v for k, v in vars(args).items() if k not in {"broker", "port"}}
    emulator = emulator_class(args.broker)(EmulatorOptions(**values))
    # A process of its own: collect garbage in quiet moments only (BrokerEmulator.housekeep),
    # never in the middle of a burst of orders, where a full collection would be read as
    # tens of milliseconds of broker latency.
    gc.disable()
    emulator.collect_garbage = True
    # A client that dies mid-request (the benchmark's --kill-worker) is expected, not an error
    # of the emulator: no traceback per cut connection.
    logging.getLogger("aiohttp.server").addFilter(_not_a_cut_connection)
    warm = getattr(emulator.state.quotes, "warm", None)
    if warm is not None:
        warm()
    runners: list[Any] = []
    urls = await serve(emulator, args.port, runners)
    print("LISTENING " + " ".join(f"{h}={u}" for h, u in urls.items()), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await _cleanup(runners)


def _not_a_cut_connection(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionResetError))


def main(argv: list[str] | None = None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
