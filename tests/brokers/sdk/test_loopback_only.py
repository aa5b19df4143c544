"""The suite's own guard: nothing but loopback is reachable while the SDKs run."""

from __future__ import annotations

import socket

import pytest

from tests.brokers.sdk.conftest import NetworkBlockedError


def test_public_names_and_addresses_are_refused_before_any_packet(loopback_only):
    with pytest.raises(NetworkBlockedError):
        socket.getaddrinfo("api.ipify.org", 443)
    with socket.socket() as sock, pytest.raises(NetworkBlockedError):
        sock.connect(("192.0.2.1", 443))  # TEST-NET-1: refused by the guard, never sent


def test_loopback_still_works(loopback_only):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
