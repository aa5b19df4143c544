"""Browser tests: Playwright drives Debian's Chromium (/usr/bin/chromium), never a downloaded
browser. The clock is pinned to a Thursday session (time-machine, ticking), so the tests pass on
any date; the live server runs in this process and shares the pinned clock.

The paper broker is in-process; the Celery sends that a worker would run are run on a thread
of this process instead, so fills arrive while the page is open, as they would with a worker.
"""

from __future__ import annotations

import datetime
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine

from execution.markettime import IST

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Thursday 19 Nov 2026, 11:00 IST: a session day of a loaded holiday year.
PINNED = datetime.datetime(2026, 11, 19, 11, 0, tzinfo=IST)
SCREENSHOTS = os.environ.get("SCREENSHOT_DIR", "")


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    if os.environ.get("FAKETIME"):
        # `make test-at` fakes the clock of every process with libfaketime, the browser's too;
        # these tests pin their own clock and run in `make test`.
        reason = "the browser tests pin their own clock: they run in `make test`"
    elif shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    else:
        # `make test` installs Chromium first (.ci/browser.sh); a bare pytest without it says so.
        reason = f"no Chromium at {CHROMIUM} (run `make test`)"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for a module, closed after it: Playwright's sync API runs an event loop
    on this thread while it lives, which other tests' own asyncio must not meet."""
    from playwright.sync_api import sync_playwright

    # While that loop runs, Django takes the test's own database calls for async ones. They
    # are not (the test waits for each): allowed here, and only while the browser lives (a
    # leaked variable would fail `check --deploy` in a later test's subprocess).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    # With an event loop running on this thread, Django's connections are per async context
    # (asgiref's Local): the tests get new connection objects, which lack the copy of the seeded
    # rows that the test database kept for `serialized_rollback`. Hand it to them, or the flush
    # after a test re-creates content types and the next test starts without the seeded rows.
    from django.db import connections

    serialized = {
        alias: getattr(connections[alias], "_test_serialized_contents", None)
        for alias in connections
    }
    try:
        with sync_playwright() as playwright:
            for alias, contents in serialized.items():
                if contents is not None:
                    connections[alias]._test_serialized_contents = contents
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def pinned_clock() -> Iterator[None]:
    with time_machine.travel(PINNED, tick=True):
        yield


def _in_thread(payloads: list[dict[str, Any]]) -> None:
    from django.db import connection

    from execution.tasks import account_send_task

    def run() -> None:
        try:
            for payload in payloads:
                account_send_task(payload)
        finally:
            connection.close()

    threading.Thread(target=run, daemon=True).start()


@pytest.fixture
def sends_on_a_thread(monkeypatch: Any) -> None:
    """Dispatch groups and closing orders go to a thread, as a worker would take them."""
    monkeypatch.setattr("execution.dispatch._start_group", _in_thread)
    monkeypatch.setattr("execution.enqueue.account_sends_enqueue", _in_thread)
    monkeypatch.setattr(
        "execution.protection.killswitch.flatten_start",
        lambda cancel, payloads, outside_of=None: _in_thread(payloads),
    )


@pytest.fixture
def trader(db: Any) -> dict[str, Any]:
    """A trader with a verified email, a complete profile and a logged-in paper account."""
    from allauth.account.models import EmailAddress

    from brokers.services import paper_account_log_in
    from tests.brokers.factories import PaperBookFactory
    from tests.trader.factories import ProfileFactory

    password = "a-long-test-passphrase-42"
    user = ProfileFactory().user
    user.set_password(password)
    user.save()
    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
    book = PaperBookFactory(account__owner=user, account__label="Paper desk")
    paper_account_log_in(account=book.account, actor=user)
    return {"user": user, "password": password, "account": book.account}


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Keep a screenshot when SCREENSHOT_DIR is set (for people to look at)."""
    if SCREENSHOTS:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=full_page)
