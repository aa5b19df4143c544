"""Broker tests trade contracts of today's date: today's holiday year must be loaded."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _trading_calendar(request):
    # Only tests that use the database need (and can have) the calendar row.
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("calendar_loaded_today")
