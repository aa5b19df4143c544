"""The fourth weekend/holiday layer: just before a live order is written, the send path refuses
it outside the session window of that date. Paper orders (and so "test now on paper" runs) are
exempt and labelled. Moments are pinned; the calendar is the seeded one."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from brokers.registry import get_adapter
from execution.markettime import IST
from execution.send import sender
from tests.execution.test_engine_sender import _lane_send, _orders

# The orders are built on today's contracts: today's holiday year is loaded (the guard's own
# moments are pinned and read the seeded calendar).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]


def _at(day: datetime.date, hh: int, mm: int) -> float:
    return datetime.datetime.combine(day, datetime.time(hh, mm), tzinfo=IST).timestamp()


THURSDAY = datetime.date(2026, 11, 19)
SUNDAY = datetime.date(2026, 11, 22)
HOLIDAY = datetime.date(2026, 11, 24)  # Guru Nanak Jayanti


@pytest.mark.parametrize(
    ("at", "words"),
    [
        (_at(THURSDAY, 10, 0), ""),
        (_at(THURSDAY, 9, 14), "outside the session window"),
        (_at(THURSDAY, 16, 0), "outside the session window"),
        (_at(SUNDAY, 10, 0), "Sunday"),
        (_at(HOLIDAY, 10, 0), "holiday"),
    ],
)
def test_a_live_order_is_refused_outside_the_session_window_of_its_date(at, words):
    order = dataclasses.replace(_orders()[0], session_exempt="")
    refusal = sender.session_refusal(order, at=at)
    if not words:
        assert refusal == ""
        return
    assert refusal.startswith(sender.NOT_IN_SESSION) and "NSE" in refusal
    assert words.lower() in refusal.lower()


def test_paper_orders_are_exempt_and_say_so():
    order = dataclasses.replace(_orders()[0], session_exempt="paper")
    assert sender.session_refusal(order, at=_at(SUNDAY, 10, 0)) == ""


def test_bfo_orders_are_guarded_by_the_bse_calendar():
    order = dataclasses.replace(_orders()[0], exchange="BFO", session_exempt="")
    assert "BSE" in sender.session_refusal(order, at=_at(SUNDAY, 10, 0))


@pytest.mark.network
@pytest.mark.parametrize("path", ["sync", "lane"])
def test_the_send_path_refuses_a_live_order_when_closed_and_writes_nothing(kite, path, monkeypatch):
    monkeypatch.setattr(
        "execution.reference.calendar.closed_reason",
        lambda moment, exchange="NSE": "holiday: Test day",
    )
    live, paper = (dataclasses.replace(o, session_exempt="") for o in _orders()[:2])
    paper = dataclasses.replace(paper, session_exempt="paper")
    if path == "sync":
        report = sender.send_batch(
            account_id=kite.account.pk,
            adapter=get_adapter(kite.account),
            ops_limit=10,
            orders=[live, paper],
            fire_at_epoch=None,
        )
    else:
        report = _lane_send(kite, [live, paper], None).result(10)
    by_tag = {o.tag: o for o in report.outcomes}
    assert by_tag[live.tag].state == "abandoned" and by_tag[live.tag].error_class == "closed"
    assert "holiday: Test day" in by_tag[live.tag].error
    assert by_tag[paper.tag].state == "acknowledged"
    tags = {r.get("tag") for r in kite.emulator.order_log()}
    assert live.tag not in tags and paper.tag in tags
