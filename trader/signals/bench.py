"""The signal latency benchmark behind `manage.py bench_signals`: from a signal's POST to its
first order arriving at a broker emulator, over N signals, everything real and on 127.0.0.1.

A gunicorn web server takes the signals (the webhook view and the same hot path as in
production), one Celery worker on the `execution` queue sends the orders, and the Kite emulator
(a child process) logs each order's arrival time. The clock is the machine's wall clock in
every process. The run gets a declared special session around now (scratch database only), so
the calendar lets signals through at any hour.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

import requests
from django.utils import timezone

from execution.bench import (
    ROOT,
    declare_session,
    percentile,
    point_adapters_at,
    register_contracts,
    start_worker,
    stop_process,
    wait_for_workers,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_web(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    log = open(os.path.join(env["BENCH_DIR"], "web.log"), "ab")  # noqa: SIM115
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "trader.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "2",
            "--access-logfile",
            "/dev/null",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait_for_web(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(f"{url}/healthz", timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError("the web server did not start")


def seed(broker: str, legs: int) -> tuple[Any, str]:
    """One trader with one logged-in account at the emulated broker and one active signal
    strategy of `legs` legs (hedges and shorts alternating); returns (webhook, secret)."""
    from brokers.models import AccountStatus, BrokerAccount
    from execution.models import Underlying
    from trader.models import (
        BrokerAllocation,
        Leg,
        Strategy,
        StrategyStatus,
        StrategyVersion,
        User,
    )
    from trader.signals.services import webhook_enable

    stamp = f"{int(time.time())}"
    now = timezone.now()
    user = User.objects.create(email=f"signals{stamp}@bench.local")
    key = f"s{stamp}"
    account = BrokerAccount.objects.create(
        owner=user,
        broker=broker,
        label="bench",
        status=AccountStatus.CONNECTED,
        api_key=key,
        api_secret=key,
        access_token=key,
        broker_user_id=key[:10].upper(),
        token_issued_at=now,
        token_expires_at=now + datetime.timedelta(hours=12),
        static_ip_primary="127.0.0.1",
    )
    strategy = Strategy.objects.create(
        owner=user,
        name="signal bench",
        underlying=Underlying.objects.get(symbol="NIFTY"),
        status=StrategyStatus.ACTIVE,
        hedge_confirmation="none",
    )
    version = StrategyVersion.objects.create(
        strategy=strategy,
        number=1,
        entry_time=datetime.time(9, 20),
        exit_time=datetime.time(15, 10),
        effective_from=now.date() - datetime.timedelta(days=1),
    )
    strategy.current_version = version
    strategy.save(update_fields=["current_version"])
    for position in range(1, legs + 1):
        buy = position % 2 == 0
        Leg.objects.create(
            version=version,
            position=position,
            side="BUY" if buy else "SELL",
            option_type="CE" if position <= (legs + 1) // 2 else "PE",
            lots=1,
            strike_mode="atm",
            strike_offset=(4 if buy else 2) * (1 if position % 4 in (1, 2) else -1),
        )
    BrokerAllocation.objects.create(
        strategy=strategy, broker_account=account, multiplier=1, priority=1
    )
    issued = webhook_enable(user=user, strategy=strategy)
    return issued.webhook, issued.secret


def run(*, signals: int, broker: str, legs: int, gap: float, env: dict[str, str]) -> dict:
    from brokers.emulator import start_subprocess
    from execution.models import OrderIntent

    port = _free_port()
    env.update({"SIGNAL_RATE_PER_MINUTE": "100000", "ALLOWED_HOSTS": "127.0.0.1,localhost"})
    with ExitStack() as stack:
        emulator = start_subprocess(broker, auto_accounts=True, orders_per_second=10)
        stack.callback(emulator.stop)
        emulators = {broker: emulator}
        point_adapters_at(emulators, env)
        register_contracts(emulators, timezone.now().date())
        declare_session(timezone.now())
        webhook, secret = seed(broker, legs)
        worker = start_worker(0, "engine", env)
        stack.callback(stop_process, worker)
        web = start_web(env, port)
        stack.callback(stop_process, web)
        base = f"http://127.0.0.1:{port}"
        wait_for_workers(1)
        _wait_for_web(base)
        url = f"{base}/signals/in/{webhook.public_id}/"
        session = requests.Session()
        latencies: list[float] = []
        answers: list[float] = []
        refused: dict[str, int] = {}
        for i in range(signals):
            body = json.dumps(
                {
                    "secret": secret,
                    "signal_id": f"bench-{i}",
                    "action": "entry",
                    "timestamp": int(time.time()),
                }
            )
            t0 = time.time_ns()
            response = session.post(url, data=body, timeout=30)
            answers.append((time.time_ns() - t0) / 1e6)
            if response.status_code != 202:
                answer = response.json()
                key = f"{response.status_code}: {answer.get('reason') or answer.get('error')}"
                refused[key] = refused.get(key, 0) + 1
                time.sleep(gap)
                continue
            run_ids = response.json()["runs"]
            tags = set(OrderIntent.objects.filter(run_id__in=run_ids).values_list("tag", flat=True))
            deadline = time.monotonic() + 15
            first = None
            while first is None and time.monotonic() < deadline:
                arrivals = [
                    e["arrival_ns"]
                    for e in emulator.order_log()
                    if e.get("tag") in tags and e.get("kind", "place") == "place"
                ]
                if arrivals:
                    first = min(arrivals)
                else:
                    time.sleep(0.005)
            if first is None:
                lost = "no order arrived within 15 s"
                refused[lost] = refused.get(lost, 0) + 1
            else:
                latencies.append((first - t0) / 1e6)
            time.sleep(gap)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "p50": round(percentile(values, 50), 1),
            "p90": round(percentile(values, 90), 1),
            "p99": round(percentile(values, 99), 1),
            "max": round(max(values, default=0.0), 1),
        }

    return {
        "signals": signals,
        "measured": len(latencies),
        "refused": refused,
        "broker": broker,
        "legs": legs,
        "signal_to_first_order_ms": stats(latencies),
        "http_answer_ms": stats(answers),
    }
