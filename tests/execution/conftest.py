from __future__ import annotations

import pytest


@pytest.fixture
def session_open(monkeypatch):
    """Pin the send path's session guard to "open", whatever the wall clock says: tests that
    send live orders to the emulators now must not depend on the hour they run at. The guard
    itself is tested with pinned moments (test_session_guard.py)."""
    monkeypatch.setattr(
        "execution.reference.calendar.closed_reason", lambda moment, exchange="NSE": None
    )


@pytest.fixture
def kite(settings):
    """The Kite emulator on 127.0.0.1 with a logged-in account (the engine tests' venue)."""
    from tests.brokers.contract.venues import make_venue

    venue = make_venue("kite", settings)
    venue.account.access_token = venue.emulator.issue_token("kitekey")
    venue.account.save()
    yield venue
    venue.stop()


@pytest.fixture(autouse=True)
def _fresh_session_answers():
    """The send path caches the calendar's answer per second; each test asks afresh."""
    from execution.send import sender

    sender._closed_reason.cache_clear()
    yield
    sender._closed_reason.cache_clear()
