"""A trader's morning in a real browser: log in, build an iron condor in the wizard, test it on
paper and watch the fills arrive without reloading, read the run and the wizard on a phone, exit
the run from its page, engage and re-arm the kill switch (one flow, then the kill switch)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("pinned_clock", "sends_on_a_thread"),
    pytest.mark.slow,
]

TIMEOUT = 15_000  # ms: fills come within a second or two; polling runs every 2 s


def _log_in(browser: Any, live_server: Any, trader: dict[str, Any], **context: Any) -> Any:
    context.setdefault("viewport", {"width": 1366, "height": 900})  # a common laptop
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations say yes
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", trader["user"].email)
    page.fill("input[name=password]", trader["password"])
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
    return page


def _to_legs_step(page: Any, live_server: Any) -> None:
    from execution.models import Underlying

    nifty = Underlying.objects.get(symbol="NIFTY")
    page.goto(f"{live_server.url}/strategies/new/")
    page.check("input[name=template][value=iron_condor]")
    page.click("text=Next: underlying")
    page.fill("input[name=name]", "Morning condor")
    page.select_option("select[name=underlying]", value=str(nifty.pk))
    page.click("text=Next: legs")
    page.wait_for_selector("[data-legs-preview]")


def _build_iron_condor(page: Any, live_server: Any) -> None:
    _to_legs_step(page, live_server)
    # A change re-prices the legs in place: the preview follows, the step stays.
    page.fill("input[name='legs-0-lots']", "2")
    page.dispatch_event("input[name='legs-0-lots']", "change")
    # (Locator waits: the pages' Content-Security-Policy refuses eval'd predicates.)
    expect(page.locator("[data-legs-preview] td[data-label=Qty]", has_text="130")).to_have_count(
        1, timeout=TIMEOUT
    )
    assert page.locator("text=Next: times and days").is_visible()
    # At 1366 px every column of the legs table is there, Remove included, without scrolling.
    overflow = page.evaluate(
        "(() => { const w = document.querySelector('table.legs').parentElement;"
        " return w.scrollWidth - w.clientWidth; })()"
    )
    assert overflow <= 2, overflow
    shot(page, "wizard-legs-desktop")
    page.click("text=Next: times and days")
    page.click("text=Next: risk")
    page.click("text=Next: allocation")
    page.wait_for_selector("text=Next: review")
    include = page.locator("input[name$='-include']")
    for index in range(include.count()):
        include.nth(index).check()
    page.click("text=Next: review")
    page.click("text=Save strategy")
    page.wait_for_url(re.compile(r".*/strategies/\d+/$"))


PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}


def _phone_reads_the_run_and_the_wizard(
    browser: Any, live_server: Any, trader: dict[str, Any], dashboard_url: str
) -> None:
    """The same trader on a 390x844 phone: nothing scrolls sideways, tables become cards."""
    from execution.models import ScheduledRun

    phone = _log_in(browser, live_server, trader, **PHONE)
    shot(phone, "dashboard-phone", full_page=False)
    run = ScheduledRun.objects.get(is_test=True)
    phone.goto(f"{live_server.url}/execution/runs/{run.pk}/")
    phone.wait_for_selector("#run-live tr[data-order-state=filled]")
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, width
    assert phone.locator("[data-exit-run]").is_visible()
    label = phone.evaluate(
        "getComputedStyle(document.querySelector('#run-live td[data-label]'), '::before').content"
    )
    assert label.strip('"') in {"Account", "Contract"}
    shot(phone, "run-live-phone", full_page=False)
    shot(phone, "run-live-phone-full")
    _to_legs_step(phone, live_server)
    width = phone.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, width  # the legs table becomes one card per leg
    shot(phone, "wizard-legs-phone", full_page=False)
    phone.context.close()


def test_paper_test_fills_appear_live_and_the_run_exits_from_its_page(
    browser: Any, live_server: Any, trader: dict[str, Any]
) -> None:
    from execution.models import OrderIntent

    page = _log_in(browser, live_server, trader)
    _build_iron_condor(page, live_server)
    page.goto(f"{live_server.url}/execution/runs/")
    page.click("form[action*='paper-test'] button")
    page.wait_for_url(re.compile(r".*/execution/runs/\d+/$"))
    loaded_at = page.evaluate("performance.timeOrigin")
    # The orders were written, not yet filled, when the page was rendered; the fills arrive
    # through the live fragment, not a reload.
    expect(page.locator("#run-live tr[data-order-state=filled]")).to_have_count(4, timeout=TIMEOUT)
    assert page.evaluate("performance.timeOrigin") == loaded_at, "the page was reloaded"
    assert OrderIntent.objects.filter(state="filled").count() == 4
    assert page.locator("#run-live").get_attribute("hx-trigger") == "every 2s"
    shot(page, "run-live-desktop")
    # The positions and orders tables fit a 1366 and a 1280 px screen without scrolling.
    for width in (1366, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate(
            "Math.max(...[...document.querySelectorAll('#run-live .table-wrap')]"
            ".map((w) => w.scrollWidth - w.clientWidth))"
        )
        assert overflow <= 2, (width, overflow)
    shot(page, "run-live-1280")
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"{live_server.url}/")
    assert page.locator("#desk").get_attribute("hx-trigger") == "every 3s"  # positions open
    shot(page, "dashboard-desktop")
    _phone_reads_the_run_and_the_wizard(browser, live_server, trader, page.url)
    page.go_back()

    page.click("[data-exit-run]")
    page.wait_for_selector("text=Exit sent")
    expect(page.locator("#run-live tr[data-order-state=filled]")).to_have_count(8, timeout=TIMEOUT)
    page.wait_for_selector("#run-live[data-state=exited]")
    # Final: the fragment carries no trigger any more, so the page stops polling.
    assert page.locator("#run-live").get_attribute("hx-trigger") is None
    manual = list(OrderIntent.objects.filter(purpose="manual").order_by("sent_at"))
    assert [i.side for i in manual[:2]] == ["BUY", "BUY"]  # shorts bought back first
    assert max(i.sent_at for i in manual if i.side == "BUY") <= min(
        i.sent_at for i in manual if i.side == "SELL"
    )


def test_kill_switch_engaged_and_rearmed_shows_on_the_dashboard(
    browser: Any, live_server: Any, trader: dict[str, Any]
) -> None:
    page = _log_in(browser, live_server, trader)
    assert page.locator("#kill-banner").count() == 0
    page.click("header .kill-switch button")
    page.wait_for_selector("#kill-banner")
    assert "YOUR KILL SWITCH IS ENGAGED" in page.inner_text("#kill-banner")
    assert "by you at" in page.inner_text("#kill-banner")
    assert page.inner_text("header .kill-state") == "KILL SWITCH ENGAGED"
    assert "nothing enters until it is re-armed" in page.content()
    shot(page, "dashboard-kill-engaged-desktop")
    page.click("#kill-banner button")
    page.wait_for_selector("text=re-armed")
    assert page.locator("#kill-banner").count() == 0
    assert page.inner_text("header .kill-switch button") == "Kill switch"
