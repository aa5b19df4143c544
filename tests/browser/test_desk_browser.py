"""A trader's morning in a real browser: log in, build an iron condor in the wizard, test it on
paper and watch the fills arrive without reloading, exit the run from its page, engage and
re-arm the kill switch, and read the run page on a phone."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import shot

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("pinned_clock", "sends_on_a_thread"),
    pytest.mark.slow,
]

TIMEOUT = 15_000  # ms: fills come within a second or two; polling runs every 2 s


def _log_in(browser: Any, live_server: Any, trader: dict[str, Any], **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(TIMEOUT)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations say yes
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=login]", trader["user"].email)
    page.fill("input[name=password]", trader["password"])
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))
    return page


def _build_iron_condor(page: Any, live_server: Any) -> None:
    from execution.models import Underlying

    nifty = Underlying.objects.get(symbol="NIFTY")
    page.goto(f"{live_server.url}/strategies/new/")
    page.check("input[name=template][value=iron_condor]")
    page.click("text=Next: underlying")
    page.fill("input[name=name]", "Morning condor")
    page.select_option("select[name=underlying]", value=str(nifty.pk))
    page.click("text=Next: legs")
    page.wait_for_selector("text=Next: times and days")
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
    page.wait_for_function(
        "document.querySelectorAll('#run-live tr[data-order-state=filled]').length === 4"
    )
    assert page.evaluate("performance.timeOrigin") == loaded_at, "the page was reloaded"
    assert OrderIntent.objects.filter(state="filled").count() == 4
    assert page.locator("#run-live").get_attribute("hx-trigger") == "every 2s"
    shot(page, "run-live-desktop")

    page.click("[data-exit-run]")
    page.wait_for_selector("text=Exit sent")
    page.wait_for_function(
        "document.querySelectorAll('#run-live tr[data-order-state=filled]').length === 8",
        timeout=TIMEOUT,
    )
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


def test_run_page_reads_on_a_phone(browser: Any, live_server: Any, trader: dict[str, Any]) -> None:
    from tests.execution.engine_factories import strategy_with_accounts

    strategy, _, _ = strategy_with_accounts(brokers=(), owner=trader["user"])
    phone = {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    }
    page = _log_in(browser, live_server, trader, **phone)
    shot(page, "dashboard-phone")
    page.goto(f"{live_server.url}/execution/runs/")
    page.click(f"form[action$='/paper-test/{strategy.pk}/'] button")
    page.wait_for_url(re.compile(r".*/execution/runs/\d+/$"))
    page.wait_for_function(
        "document.querySelectorAll('#run-live tr[data-order-state=filled]').length === 4"
    )
    # Nothing scrolls sideways: the tables reflow into label/value cards.
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= 390, width
    assert page.locator("[data-exit-run]").is_visible()
    label = page.evaluate(
        "getComputedStyle(document.querySelector('#run-live td[data-label]'), '::before').content"
    )
    assert label.strip('"') in {"Account", "Contract"}
    shot(page, "run-live-phone")
