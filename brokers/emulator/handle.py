"""Start emulators for tests and benchmarks, and drive them through the control plane.

``start_in_thread("kite")`` runs the emulator's event loop in a daemon thread of this process
(tests); ``start_subprocess("kite")`` runs ``python -m brokers.emulator`` as a child process
(benchmarks, so the emulator does not share the GIL with the code being measured). Both return
an object with the same methods; always call ``stop()`` (or use it as a context manager).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests

from brokers.emulator.core import BrokerEmulator, Clock, EmulatorOptions
from brokers.emulator.pricing import QuoteSource
from brokers.emulator.registry import emulator_class

CONTROL_TIMEOUT = 5.0


class EmulatorHandle:
    """Client of one running emulator: its URLs and its control plane."""

    def __init__(self, broker: str, base_urls: dict[str, str]) -> None:
        self.broker = broker
        self.base_urls = base_urls
        self.base_url = next(iter(base_urls.values()))
        self.login_url = self.base_url + emulator_class(broker).login_path
        self._http = requests.Session()

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(
            method, f"{self.base_url}/_emulator/{path}", timeout=CONTROL_TIMEOUT, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def add_account(self, *, api_key: str, api_secret: str, user_id: str, **fields: Any) -> dict:
        """Register an account (app key/secret, user id; optional redirect_uri, registered_ip,
        cash, client_id, user_name, email, extra)."""
        if "cash" in fields:
            fields["cash"] = str(fields["cash"])
        body = {"api_key": api_key, "api_secret": api_secret, "user_id": user_id, **fields}
        result: dict = self._control("POST", "accounts", json=body)
        return result

    def issue_token(self, api_key: str) -> str:
        """An access token minted now (emulator clock), as a completed login would give."""
        token: str = self._control("POST", "tokens", json={"api_key": api_key})["access_token"]
        return token

    def revoke_token(self, access_token: str) -> bool:
        revoked: bool = self._control("POST", "revoke", json={"access_token": access_token})[
            "revoked"
        ]
        return revoked

    def approve_login(self, login_url: str) -> str:
        """Play the trader on the broker's login page: open it, submit the consent form, and
        return the redirect URL (with request token / code) the broker sends the browser to."""
        page = self._http.get(login_url, timeout=CONTROL_TIMEOUT)
        page.raise_for_status()
        form = _ConsentForm()
        form.feed(page.text)
        answer = self._http.post(
            urljoin(page.url, form.action or page.url),
            data=form.fields,
            allow_redirects=False,
            timeout=CONTROL_TIMEOUT,
        )
        if answer.status_code not in (302, 303):
            raise RuntimeError(f"login was not approved: HTTP {answer.status_code} {answer.text}")
        return answer.headers["Location"]

    def set_clock(self, now: datetime) -> datetime:
        return datetime.fromisoformat(
            self._control("POST", "clock", json={"now": now.isoformat()})["now"]
        )

    def advance_clock(self, seconds: float) -> datetime:
        return datetime.fromisoformat(
            self._control("POST", "clock", json={"advance": seconds})["now"]
        )

    def queue_faults(self, *faults: str) -> None:
        """The next orders get these faults, one each, in order ("none" = no fault)."""
        self._control("POST", "faults", json={"queue": list(faults)})

    def configure(self, **options: Any) -> None:
        """Change latency_ms, fail_rate, fault, registered_ip or fill_delay_ms while running."""
        self._control("POST", "faults", json=options)

    def plan_tag_faults(
        self, tags: dict[str, dict[str, Any]], *, down: list[str] | tuple[str, ...] = ()
    ) -> None:
        """Replace the faults planned per order tag ({tag: {"kind", "count", "seconds"}}) and
        the accounts (api keys) that are down (brokers.emulator.tagfaults)."""
        self._control("POST", "tag-faults", json={"tags": tags, "down": list(down)})

    def add_instruments(self, rows: list[dict[str, str]]) -> None:
        """Register broker instrument ids: rows of `key` (e.g. "NSE_FO|43919"), `exchange`
        (NFO/BFO), `tradingsymbol` (Kite-style, priced by the simulated market) and optional
        `broker_symbol` (the broker's own trading symbol, echoed in its answers)."""
        self._control("POST", "instruments", json=rows)

    def traffic(self, since_ns: int, until_ns: int) -> dict[str, Any]:
        """The broker-API requests that arrived between two instants (epoch ns), counted by
        "METHOD route", and how many connections were first seen then."""
        result: dict[str, Any] = self._control(
            "GET", "traffic", params={"since_ns": since_ns, "until_ns": until_ns}
        )
        return result

    def master(self) -> list[dict[str, Any]]:
        """Today's listed contracts (exchange_token, underlying, exchange, expiry, strike,
        option_type, lot_size, monthly, tick_size)."""
        contracts: list[dict[str, Any]] = self._control("GET", "master")["contracts"]
        return contracts

    def set_master(
        self, contracts: list[dict[str, Any]] | None = None, *, mode: str = "ok"
    ) -> list[dict[str, Any]]:
        """Replace the listed contracts (None: the default listing) and set how the master
        download behaves: ok, empty, corrupt or missing."""
        body: dict[str, Any] = {"mode": mode}
        if contracts is not None:
            body["contracts"] = contracts
        result: list[dict[str, Any]] = self._control("POST", "master", json=body)["contracts"]
        return result

    def order_log(self) -> list[dict[str, Any]]:
        log: list[dict[str, Any]] = self._control("GET", "order-log")
        return log

    def orders(self, api_key: str) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self._control("GET", "orders", params={"api_key": api_key})
        return orders

    def stop(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _ConsentForm(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")


class RunningEmulator(EmulatorHandle):
    """An emulator serving from a daemon thread of this process."""

    def __init__(self, emulator: BrokerEmulator, *, port: int = 0) -> None:
        self.emulator = emulator
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._runners: list[Any] = []
        self._thread = threading.Thread(
            target=self._run, args=(port,), name=f"emulator-{emulator.name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise RuntimeError(f"emulator {emulator.name} did not start") from self._error
        super().__init__(emulator.name, self._urls)

    @property
    def state(self) -> Any:
        """The emulator state, for assertions only (it belongs to the server thread)."""
        return self.emulator.state

    def _run(self, port: int) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._urls = self._loop.run_until_complete(serve(self.emulator, port, self._runners))
        except BaseException as err:
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def stop(self) -> None:
        super().stop()
        if not self._loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(_cleanup(self._runners), self._loop)
        future.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


async def serve(emulator: BrokerEmulator, port: int, runners: list[Any]) -> dict[str, str]:
    """Start one aiohttp site per host of the broker on 127.0.0.1; returns host → base URL.
    The first host gets `port` (0 = any free port); the others always get a free port."""
    from aiohttp import web

    urls = {}
    for index, (host, app) in enumerate(emulator.make_apps().items()):
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        _count_connections(runner.server, emulator.state.connections_opened)
        site = web.TCPSite(runner, "127.0.0.1", port if index == 0 else 0, backlog=1024)
        await site.start()
        runners.append(runner)
        sockets = runner.addresses
        urls[host] = f"http://127.0.0.1:{sockets[0][1]}"
    return urls


def _count_connections(server: Any, opened: list[int]) -> None:
    """Record the instant each connection is accepted (aiohttp's server is told of each new
    one through `connection_made`)."""
    made = server.connection_made

    def counted(handler: Any, transport: Any) -> None:
        opened.append(time.time_ns())
        made(handler, transport)

    server.connection_made = counted


async def _cleanup(runners: list[Any]) -> None:
    for runner in reversed(runners):
        await runner.cleanup()


def start_in_thread(
    broker: str,
    *,
    port: int = 0,
    quotes: QuoteSource | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> RunningEmulator:
    """Run the `broker` emulator on 127.0.0.1 in a daemon thread. `options` are the fields of
    EmulatorOptions (latency_ms, fail_rate, fault, seed, registered_ip, trust_forwarded_for,
    order_log, orders_per_second, fill_delay_ms, partial_fills, hang_seconds, …)."""
    emulator = emulator_class(broker)(EmulatorOptions(**options), quotes=quotes, clock=clock)
    return RunningEmulator(emulator, port=port)


class SubprocessEmulator(EmulatorHandle):
    """`python -m brokers.emulator` as a child process (killed by `stop()`)."""

    def __init__(self, broker: str, process: subprocess.Popen[str], urls: dict[str, str]):
        self.process = process
        super().__init__(broker, urls)

    def stop(self) -> None:
        super().stop()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_subprocess(broker: str, *, port: int = 0, **options: Any) -> SubprocessEmulator:
    """Run the emulator in a child process; options become command-line flags
    (``latency_ms=5`` → ``--latency-ms 5``, ``fault=("drop",)`` → ``--fault drop``,
    ``trust_forwarded_for=True`` → ``--trust-forwarded-for``)."""
    argv = [sys.executable, "-m", "brokers.emulator", "--broker", broker, "--port", str(port)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value not in (False, None):
            text = ",".join(value) if isinstance(value, list | tuple) else str(value)
            argv.extend([flag, text])
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("LISTENING "):
        process.kill()
        raise RuntimeError(f"emulator {broker} did not start: {line!r}")
    urls = dict(part.split("=", 1) for part in line.split()[1:])
    return SubprocessEmulator(broker, process, urls)
