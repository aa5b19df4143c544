"""In a real browser (Debian's Chromium, driven by Playwright): the Content-Security-Policy
blocks script injected into a page, while htmx and the strategy wizard keep working.

Chromium comes from the distribution (`.ci/browser.sh`, run by `make test`); Playwright never
downloads a browser here. Without /usr/bin/chromium the test is skipped, saying so.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client

from tests.marketplace.factories import UnderlyingFactory
from tests.trader.factories import ProfileFactory

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
INJECTED = (
    '<script>window.injectedInline = 1</script><img src="/x" onerror="window.injectedHandler = 1">'
)

pytestmark = [
    pytest.mark.slow,
    # serialized_rollback: the seeded market reference (lot sizes, expiries) survives the flush.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"Chromium not installed at {CHROMIUM}: run `bash .ci/browser.sh` (apt-get)",
    ),
    # The browser is checked by `make test` at the real date; under libfaketime (`make
    # test-at`) Chromium's own timers run on the faked clock, which tests nothing of ours.
    pytest.mark.skipif(
        "FAKETIME" in os.environ, reason="browser check runs in `make test`, not under faketime"
    ),
]


@pytest.fixture
def browser_page(live_server, monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    # Playwright's sync API runs an event loop in this thread; the live server's ORM work is
    # in its own thread, and ours happens before the browser starts.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    user = ProfileFactory().user
    UnderlyingFactory()
    client = Client()
    client.force_login(user)
    session_cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        context = browser.new_context()
        context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": session_cookie,
                    "url": live_server.url,
                }
            ]
        )
        page = context.new_page()
        page.violations = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda message: (
                page.violations.append(message.text)  # type: ignore[attr-defined]
                if "Content Security Policy" in message.text
                else None
            ),
        )
        try:
            yield page
        finally:
            browser.close()


def test_csp_blocks_script_injected_into_a_page(browser_page, live_server):
    page = browser_page

    def inject(route):
        response = route.fetch()
        body = response.text().replace("</main>", INJECTED + "</main>", 1)
        assert INJECTED in body
        route.fulfill(response=response, body=body)

    page.route(f"{live_server.url}/", inject)
    page.goto(f"{live_server.url}/")
    page.wait_for_load_state("load")
    assert page.evaluate("window.injectedInline") is None
    assert page.evaluate("window.injectedHandler") is None
    assert page.violations, "the browser reported no CSP violation"
    # Our own script still runs: the header clock ticks.
    assert page.locator("[data-ist-clock]").inner_text().endswith("IST")


def test_htmx_wizard_steps_and_confirm_work_under_the_csp(browser_page, live_server):
    page = browser_page
    failures = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 500 else None)
    page.goto(f"{live_server.url}/strategies/new/")
    page.evaluate("window.samePage = true")
    page.check("input[name=template][value=custom]")
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.click("text=Next: underlying")
    page.fill("input[name=name]", "Browser straddle")
    page.select_option("select[name=underlying]", label="NIFTY")
    with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
        page.click("text=Next: legs")
    page.wait_for_selector("#wizard h2:has-text('Legs')")
    assert page.evaluate("window.samePage")  # swapped in place by htmx, not a page load
    assert not page.violations, page.violations
    assert not failures, failures

    # The kill switch asks first (app.js, not an inline onsubmit); dismissing sends nothing.
    questions = []
    page.on("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.click("button:has-text('Kill switch')")
    assert questions and "close every position" in questions[0]
    assert page.evaluate("window.samePage")
