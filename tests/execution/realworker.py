"""The platform as production runs it, for the real-worker and chaos tests: Celery workers
started with `make run`'s command line (trader.management.commands.run_platform.worker_argv:
threads pool of 16, so account sends run on the asynchronous lane off the main thread) in
child processes, the broker emulators as child processes on 127.0.0.1, and the test's
database and Redis shared with them.

Every scenario is judged at the emulators, by tag, from their order logs: an order *written*
is a log entry with a broker order id (the broker created it); refusals before acceptance
(rate, IP, 5xx before the OMS) create nothing. `Platform.audit` counts, per intent of the
runs: duplicates (a tag written more than once), lost (written nowhere and not reported to the
owner by its state) and untracked (written, yet the database holds it as unsent, refused or
moved elsewhere: a position the platform does not know about).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from brokers.emulator import start_subprocess
from execution import bench
from execution.markettime import IST
from execution.models import IntentState, OrderIntent
from trader.management.commands.run_platform import worker_argv

ROOT = Path(__file__).resolve().parents[2]

# States that tell the owner what became of an order that no broker holds.
REPORTED = {
    IntentState.REJECTED,
    IntentState.FAILED_OVER,
    IntentState.ABANDONED,
    IntentState.NEEDS_ATTENTION,
    IntentState.UNKNOWN,
    IntentState.CANCELLED,
}
# States in which the platform believes an order is not at the broker.
NOT_AT_BROKER = {
    IntentState.INTENT,
    IntentState.REJECTED,
    IntentState.ABANDONED,
    IntentState.FAILED_OVER,
}
OPEN = {
    IntentState.INTENT,
    IntentState.SENT,
    IntentState.UNKNOWN,
    IntentState.ACKNOWLEDGED,
    IntentState.PARTIALLY_FILLED,
}


# libfaketime (`make test-at`) starts its faked clock afresh in every process it starts: a worker
# or emulator started a minute into the suite reads a minute behind the test, so the ETAs, T and
# lateness these scenarios judge across processes do not line up. They run in `make test`, at the
# real date; the special session they declare (declare_session_or_skip) is what keeps them
# independent of that date.
SKIP_UNDER_FAKETIME = pytest.mark.skipif(
    "FAKETIME" in os.environ,
    reason="worker processes under libfaketime each restart the faked clock: run in `make test`",
)


def database_url() -> str:
    """The test database this process uses, for the children (pytest-django's test_ name)."""
    s = connection.settings_dict
    user = s.get("USER") or "postgres"
    auth = f"{user}:{s['PASSWORD']}" if s.get("PASSWORD") else user
    return f"postgres://{auth}@{s.get('HOST') or '127.0.0.1'}:{s.get('PORT') or 5432}/{s['NAME']}"


def closed_port() -> int:
    """A port nothing listens on (bound, then released: connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def declare_session_or_skip(now: datetime) -> None:
    """A special session around now (as the benchmark declares one), so the send path's session
    guard lets live orders through whatever the date is. It is needed beside the guard: the
    guard runs in the worker processes, which read the calendar from the database (the
    `session_open` fixture patches this process only). The session itself may cross midnight
    IST (bench.declare_session splits it there); the scenario may not: the emulators rebuild
    their instrument master when the IST day changes and the runs are planned for one session
    date, so the last half hour before midnight is skipped, with that reason."""
    local = now.astimezone(IST)
    if local.hour == 23 and local.minute >= 25:
        pytest.skip("the scenario would cross midnight IST: run outside 23:25-24:00 IST")
    bench.declare_session(now)


class Platform:
    def __init__(
        self,
        *,
        settings: Any,
        tmp_path: Path,
        brokers: tuple[str, ...] = ("kite", "upstox"),
        emulator_options: dict[str, dict[str, Any]] | None = None,
        redis_url: str | None = None,
        down: tuple[str, ...] = (),
    ) -> None:
        """`brokers`: one account per entry for each trader, priority in this order (a broker
        named twice gives two accounts there). `down`: hosts (a broker, or one of its hosts
        such as "upstox_hft", where Upstox takes orders) that refuse every connection for
        the whole test: nothing listens on their port."""
        self.tmp_path = tmp_path
        self.brokers = brokers
        self.workers: list[subprocess.Popen[bytes]] = []
        self.emulators: dict[str, Any] = {}
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": redis_url or django_settings.REDIS_URL,
            "TESTING": "1",
            "DEBUG": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        options = emulator_options or {}
        for broker in dict.fromkeys(brokers):
            if broker in down:
                continue
            self.emulators[broker] = start_subprocess(
                broker,
                auto_accounts=True,
                **{"orders_per_second": 10, **options.get(broker, {})},
            )
        urls = dict(settings.BROKER_BASE_URLS)
        for broker, emulator in self.emulators.items():
            hosts = emulator.base_urls
            urls[broker] = hosts["api"]
            if "hft" in hosts:
                urls[f"{broker}_hft"] = hosts["hft"]
        for host in down:
            urls[host] = f"http://127.0.0.1:{closed_port()}"
        settings.BROKER_BASE_URLS = urls
        for name, url in urls.items():
            self.env[f"BROKER_BASE_URL_{name.upper()}"] = url
        bench.register_contracts(self.emulators, timezone.now().date())
        self.seen = {b: len(e.order_log()) for b, e in self.emulators.items()}

    # --- processes ---------------------------------------------------------------------------
    def start_worker(self) -> subprocess.Popen[bytes]:
        index = len(self.workers)
        log = open(self.tmp_path / f"worker{index}.log", "ab")  # noqa: SIM115
        # make run's sends worker, taking the background queues too (make run gives those a
        # second worker): one process per test worker keeps kill and restart scenarios exact.
        argv = worker_argv(
            sys.executable,
            name=f"t{index}-{os.getpid()}@%h",
            queues=("execution", "engine", "default"),
            loglevel="WARNING",
        )
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.workers.append(process)
        return process

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        from trader.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if len(app.control.ping(timeout=1.0) or []) >= count:
                    return
            except (ConnectionError, OSError, RedisConnectionError):
                # A pooled connection to a Redis that was restarted (the chaos test): the
                # next ping opens a new one.
                time.sleep(0.2)
                continue
            if any(w.poll() is not None for w in self.workers):
                break
        pytest.fail(f"the Celery worker did not start: {self.worker_logs()[-3000:]}")

    def kill_worker(self, index: int = 0) -> None:
        """SIGKILL: no shutdown, no acknowledgement, no outcome written."""
        self.workers[index].send_signal(signal.SIGKILL)
        self.workers[index].wait(timeout=10)
        self.workers.pop(index)

    def worker_logs(self) -> str:
        return "".join(
            p.read_text(errors="replace") for p in sorted(self.tmp_path.glob("worker*.log"))
        )

    def stop(self) -> None:
        for worker in self.workers:
            bench.stop_process(worker)
        for emulator in self.emulators.values():
            emulator.stop()
        connection.close()

    # --- data --------------------------------------------------------------------------------
    def seed(self, *, strategies: int, legs: int, fire_at: datetime, hedge: str = "none") -> Any:
        """N traders, one account per broker each (priority in `brokers` order), one entry run
        of `legs` legs each at `fire_at` (the benchmark's seed)."""
        opts = bench.Options(
            strategies=strategies,
            legs=legs,
            accounts=len(self.brokers),
            brokers=list(self.brokers),
            latency_ms=0,
            mode="engine",
            kill_worker=False,
            hedge=hedge,
        )
        return bench.seed(opts, fire_at)

    def dispatch(self, fire_at: datetime) -> Any:
        """Schedule the boundary as the scheduler does: the dispatch task at T - lead, on the
        execution queue, run by a worker."""
        from execution import conf
        from execution.tasks import boundary_dispatch_task

        lead = timedelta(seconds=conf.dispatch_lead_seconds())
        return boundary_dispatch_task.apply_async(
            args=[fire_at.isoformat()], eta=fire_at - lead, queue="execution"
        )

    # --- judging -----------------------------------------------------------------------------
    def log(self) -> list[dict[str, Any]]:
        entries = []
        for broker, emulator in self.emulators.items():
            for entry in emulator.order_log()[self.seen[broker] :]:
                entries.append({**entry, "broker": broker})
        return entries

    def written(self) -> Counter[str]:
        """Orders each tag has at the brokers (created: with an order id)."""
        return Counter(
            e["tag"]
            for e in self.log()
            if e.get("kind", "place") == "place" and e.get("order_id") and e.get("tag")
        )

    def audit(self, run_ids: list[int]) -> dict[str, Any]:
        written = self.written()
        intents = list(OrderIntent.objects.filter(run_id__in=run_ids))
        lost = [i.tag for i in intents if not written[i.tag] and i.state not in REPORTED]
        untracked = [i.tag for i in intents if written[i.tag] and i.state in NOT_AT_BROKER]
        return {
            "intents": len(intents),
            "written": sum(written[i.tag] for i in intents),
            "duplicates": sum(written[i.tag] - 1 for i in intents if written[i.tag] > 1),
            "lost": lost,
            "untracked": untracked,
            "states": dict(Counter(str(i.state) for i in intents)),
        }

    def wait_for(
        self,
        done: Callable[[], bool],
        *,
        timeout: float,
        what: str,
        interval: float = 0.3,
        run_ids: list[int] | None = None,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return
            time.sleep(interval)
        intents = list(
            OrderIntent.objects.filter(run_id__in=run_ids or []).values_list(
                "tag", "account__broker", "state", "error"
            )
        )
        pytest.fail(
            f"timed out waiting for {what}; intents {intents}; emulator log {self.log()[-20:]}; "
            f"worker log:\n{self.worker_logs()[-3000:]}"
        )

    def settle(self, run_ids: list[int], *, timeout: float = 60.0) -> None:
        """Run reconciliation on a worker until every order of the runs is final (filled,
        refused, moved, cancelled, needs attention): a dead worker's claims expire first, the
        settle time bounds an unknown outcome, polling brings the fills."""
        from execution.tasks import reconcile_open_orders_task

        def settled() -> bool:
            open_ = OrderIntent.objects.filter(run_id__in=run_ids, state__in=OPEN).exists()
            if open_:
                reconcile_open_orders_task.apply_async(queue="execution")
            return not open_

        self.wait_for(
            settled, timeout=timeout, what="the orders to settle", interval=2.0, run_ids=run_ids
        )


def tags(run_ids: list[int], **filters: Any) -> set[str]:
    return set(
        OrderIntent.objects.filter(run_id__in=run_ids, **filters).values_list("tag", flat=True)
    )
