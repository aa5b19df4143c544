"""`manage.py bench_signals`: signal → first order at the emulator, p50/p99 over N signals;
prints one JSON object.

    python manage.py bench_signals --signals 100 [--broker kite] [--legs 2] [--gap 0.3]

Like bench_boundary, it runs against a scratch PostgreSQL database (`<your database>_bench`,
dropped, created and migrated on every run, or --database-url, used as is); the web server,
the Celery worker and the emulator are child processes on 127.0.0.1, stopped at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from execution.management.commands.bench_boundary import _bench_database_url, _ensure_database


class Command(BaseCommand):
    help = "Measure signal webhook → first order at a local broker emulator."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--signals", type=int, default=100)
        parser.add_argument("--broker", default="kite")
        parser.add_argument("--legs", type=int, default=2)
        parser.add_argument("--gap", type=float, default=0.3, help="seconds between signals")
        parser.add_argument("--database-url", default=None)
        parser.add_argument("--inner", action="store_true", help="internal: already re-run")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["signals"] <= 10000:
            raise CommandError("--signals must be between 1 and 10000")
        if options["inner"]:
            from trader.signals.bench import run

            env = {**os.environ}
            env.setdefault("BENCH_DIR", tempfile.mkdtemp(prefix="bench-signals-"))
            result = run(
                signals=options["signals"],
                broker=options["broker"],
                legs=options["legs"],
                gap=options["gap"],
                env=env,
            )
            self.stdout.write(json.dumps(result))
            return
        url = _bench_database_url(options["database_url"])
        _ensure_database(url, fresh=not options["database_url"])
        env = {**os.environ, "DATABASE_URL": url, "DEBUG": "1", "TESTING": "0"}
        env["BENCH_DIR"] = tempfile.mkdtemp(prefix="bench-signals-")
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"],
            cwd=settings.BASE_DIR,
            env=env,
            check=True,
            timeout=600,
        )
        flags = [
            f"--signals={options['signals']}",
            f"--broker={options['broker']}",
            f"--legs={options['legs']}",
            f"--gap={options['gap']}",
        ]
        completed = subprocess.run(
            [sys.executable, "manage.py", "bench_signals", *flags, "--inner"],
            cwd=settings.BASE_DIR,
            env=env,
            timeout=3600,
            check=False,
        )
        if completed.returncode:
            raise CommandError(f"the benchmark failed (logs in {env['BENCH_DIR']})")
