"""`manage.py bench_boundary`: time one boundary end to end; prints one JSON object.

    python manage.py bench_boundary --strategies 200 --legs 4 --accounts 2 \\
        --brokers kite,upstox --latency-ms 30 --mode engine [--kill-worker] [--trials 20] \\
        [--fault-rate 0.2 --seed 7]

It runs against a scratch PostgreSQL database (`<your database>_bench` on the same server,
dropped, created and migrated on every run, or --database-url, used as is), never your own
data. Emulators and
Celery workers are child processes on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _bench_database_url(given: str | None) -> str:
    if given:
        return given
    current = os.environ.get("DATABASE_URL", "")
    if not current.startswith("postgres"):
        raise CommandError(
            "The benchmark needs PostgreSQL (several worker processes write at once): set "
            "DATABASE_URL=postgres://… or pass --database-url."
        )
    parts = urlsplit(current)
    name = parts.path.lstrip("/") or "trader"
    return urlunsplit(parts._replace(path=f"/{name}_bench"))


def _ensure_database(url: str, *, fresh: bool) -> None:
    """Create the scratch database; `fresh`: drop it first, so that nothing an earlier run
    left (orders the floor sent without the engine, acknowledged orders nobody polled) gives
    this run's reconciler work at T."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


class Command(BaseCommand):
    help = "Benchmark one boundary against local emulators and real Celery workers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--strategies", type=int, default=200)
        parser.add_argument("--legs", type=int, default=4)
        parser.add_argument("--accounts", type=int, default=2, help="accounts per strategy")
        parser.add_argument("--brokers", default="kite,upstox")
        parser.add_argument("--latency-ms", type=float, default=30.0)
        parser.add_argument("--mode", choices=["engine", "naive", "floor"], default="engine")
        parser.add_argument("--kill-worker", action="store_true")
        parser.add_argument(
            "--hedge",
            choices=["ack", "none"],
            default="ack",
            help="the strategies' hedge confirmation: shorts wait for the hedges' acks, or not",
        )
        parser.add_argument("--trials", type=int, default=1)
        parser.add_argument(
            "--fault-rate",
            type=float,
            default=0.0,
            help="engine mode: share of orders meeting a broker fault (execution.bench_faults)",
        )
        parser.add_argument("--seed", type=int, default=1, help="decides every order's fault")
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument(
            "--floor-processes",
            type=int,
            default=0,
            help="floor mode: client processes writing the orders (default: as many as --workers)",
        )
        parser.add_argument("--lead", type=float, default=10.0, help="seconds from start to T")
        parser.add_argument("--database-url", default=None)
        parser.add_argument("--inner", action="store_true", help="internal: already re-run")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 0.0 <= options["fault_rate"] <= 1.0:
            raise CommandError("--fault-rate is a share of the orders, between 0 and 1.")
        if options["fault_rate"] and options["mode"] != "engine":
            raise CommandError("--fault-rate needs --mode engine (faults are the engine's).")
        if options["inner"]:
            self._run(options)
            return
        url = _bench_database_url(options["database_url"])
        # Only the derived `<name>_bench` database is ours to drop; a given URL is used as is.
        _ensure_database(url, fresh=not options["database_url"])
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1", "TESTING": "0"}
        env["BENCH_DIR"] = tempfile.mkdtemp(prefix="bench-boundary-")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            timeout=600,
        )
        argv = [sys.executable, "manage.py", *sys.argv[1:]] if "manage.py" in sys.argv[0] else None
        argv = argv or [sys.executable, "manage.py", "bench_boundary", *_flags(options)]
        completed = subprocess.run(
            [*argv, "--inner"], cwd=settings.BASE_DIR, env=env, timeout=3600, check=False
        )
        if completed.returncode:
            raise CommandError(f"the benchmark failed (logs in {env['BENCH_DIR']})")

    def _run(self, options: dict[str, Any]) -> None:
        from execution.bench import Options, run

        opts = Options(
            strategies=options["strategies"],
            legs=options["legs"],
            accounts=options["accounts"],
            brokers=[b for b in options["brokers"].split(",") if b],
            latency_ms=options["latency_ms"],
            mode=options["mode"],
            kill_worker=options["kill_worker"],
            workers=options["workers"],
            lead=options["lead"],
            trials=options["trials"],
            hedge=options["hedge"],
            fault_rate=options["fault_rate"],
            seed=options["seed"],
            floor_processes=options["floor_processes"],
        )
        env = {**os.environ}
        env.setdefault("BENCH_DIR", tempfile.mkdtemp(prefix="bench-boundary-"))
        self.stdout.write(json.dumps(run(opts, env)))


def _flags(options: dict[str, Any]) -> list[str]:
    flags = []
    for name in (
        "strategies",
        "legs",
        "accounts",
        "brokers",
        "latency_ms",
        "mode",
        "trials",
        "workers",
        "lead",
        "hedge",
        "fault_rate",
        "seed",
    ):
        flags += [f"--{name.replace('_', '-')}", str(options[name])]
    if options.get("floor_processes"):
        flags += ["--floor-processes", str(options["floor_processes"])]
    if options["kill_worker"]:
        flags.append("--kill-worker")
    return flags
