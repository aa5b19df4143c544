"""The brokers' official Python SDKs driven against our emulators on 127.0.0.1.

Every socket that is not loopback is refused for the whole of this suite (smartapi-python asks
a public service for the machine's IP when it is imported; nothing here may reach the
internet). The SDKs are imported inside fixtures, after the block is in place.

Each broker's suite walks a trader's day in order (module-scoped emulator and session, tests
in file order); `pytest tests/brokers/sdk -v` counts the checks passed per broker. Where an
SDK and the broker's documentation (shared/reference/broker-apis.md) disagree, the emulator
follows the documentation and the test says so in its name and docstring.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from datetime import datetime

import pytest

from execution.markettime import IST

# A Thursday of December 2026 during market hours (the emulators' clock is frozen there).
TRADING_MOMENT = datetime(2026, 12, 3, 10, 30, tzinfo=IST)
FOREIGN_IP = "192.0.2.10"  # TEST-NET-1: registered as "the static IP", never contacted


class NetworkBlockedError(OSError):
    pass


def pytest_collection_modifyitems(config, items):
    """Each broker's day runs in order on one module-scoped emulator: pytest-xdist would
    split a module across workers, so under `-n` the days are skipped (run them without it:
    `pytest tests/brokers/sdk`; `make test` does)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    skip = pytest.mark.skip(reason="SDK days run in order: run tests/brokers/sdk without -n")
    for item in items:
        if "/brokers/sdk/test_" in str(item.path) and "_sdk.py" in str(item.path):
            item.add_marker(skip)


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def loopback_only():
    """Refuse name lookups and connections to anything but loopback."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock, address):  # type: ignore[no-untyped-def]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NetworkBlockedError(f"non-loopback connection refused in tests: {address[0]}")
        return real_connect(sock, address)

    def connect_ex(sock, address):  # type: ignore[no-untyped-def]
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NetworkBlockedError(f"non-loopback connection refused in tests: {address[0]}")
        return real_connect_ex(sock, address)

    def getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not _is_loopback(host):
            raise NetworkBlockedError(f"name lookup refused in tests: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    yield
    socket.socket.connect = real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = real_getaddrinfo


def start_emulator(broker: str, **options):
    """A broker emulator on loopback with the clock frozen in market hours, the default
    listing (simulated market) as its master, and orders only for contracts it lists."""
    from brokers.emulator import start_in_thread
    from brokers.emulator.core import Clock

    options.setdefault("listed_only", True)
    return start_in_thread(broker, clock=Clock(start=TRADING_MOMENT, frozen=True), **options)


def option_contract(emulator, underlying: str = "NIFTY", *, offset: int = 0) -> dict:
    """A CE of the nearest expiry from the emulator's master, `offset` strikes from the
    middle of the listing."""
    rows = [
        c for c in emulator.master() if c["underlying"] == underlying and c["option_type"] == "CE"
    ]
    nearest = min(c["expiry"] for c in rows)
    strikes = sorted((c for c in rows if c["expiry"] == nearest), key=lambda c: float(c["strike"]))
    return strikes[len(strikes) // 2 + offset]
