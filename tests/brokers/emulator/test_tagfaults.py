"""Faults planned per order tag and accounts down (brokers.emulator.tagfaults), through the
control plane, as the fault-rate benchmark sets them."""

from __future__ import annotations

import pytest
import requests

from brokers.emulator.tagfaults import TagFault, TagFaults
from tests.brokers.emulator.conftest import KiteSession

LONG = 600.0  # seconds: a window that stays open for the whole test


def _tags(book_answer):
    return [o["tag"] for o in book_answer.json()["data"]]


def test_a_429_burst_refuses_the_tag_count_times_then_lets_it_through(kite):
    kite.emulator.plan_tag_faults({"b1": {"kind": "429", "count": 2}})
    assert kite.order(tag="b1").status_code == 429
    assert kite.order(tag="b1").status_code == 429
    assert kite.order(tag="b1").status_code == 200
    assert kite.order(tag="other").status_code == 200  # no plan, no fault
    assert _tags(kite.get("/orders")) == ["b1", "other"]
    outcomes = [(e["tag"], e["outcome"], e.get("fault")) for e in kite.emulator.order_log()]
    assert outcomes[:3] == [("b1", "rate", "429"), ("b1", "rate", "429"), ("b1", "accepted", None)]


def test_5xx_after_and_drop_create_the_order_once_and_lose_the_answer(kite):
    kite.emulator.plan_tag_faults({"f1": {"kind": "5xx-after"}, "d1": {"kind": "drop"}})
    assert kite.order(tag="f1").status_code == 500
    with pytest.raises(requests.ConnectionError):
        kite.order(tag="d1")
    assert sorted(_tags(kite.get("/orders"))) == ["d1", "f1"]
    assert [e["fault"] for e in kite.emulator.order_log()] == ["5xx-after", "drop"]


def test_book_lag_hides_the_order_from_the_book_while_the_lag_lasts(kite):
    kite.emulator.plan_tag_faults(
        {"lag1": {"kind": "book-lag", "seconds": LONG}, "lag0": {"kind": "book-lag"}}
    )
    assert kite.order(tag="lag1").status_code == 500  # created; its answer lost
    assert kite.order(tag="lag0").status_code == 500
    assert _tags(kite.get("/orders")) == ["lag0"]  # lag1 is still hidden
    assert kite.emulator.orders(kite.api_key)[0]["tag"] == "lag1"  # but it exists


def test_lookup_fail_refuses_the_accounts_book_while_it_lasts(kite):
    kite.emulator.plan_tag_faults({"lf1": {"kind": "lookup-fail", "seconds": LONG}})
    with pytest.raises(requests.ConnectionError):
        kite.order(tag="lf1")
    assert kite.get("/orders").status_code == 503
    assert [o["tag"] for o in kite.emulator.orders(kite.api_key)] == ["lf1"]


def test_an_account_down_is_refused_before_acceptance_and_others_are_not(kite_emulator):
    down, up = KiteSession(kite_emulator, "downkey"), KiteSession(kite_emulator, "upkey")
    kite_emulator.plan_tag_faults({}, down=["downkey"])
    assert down.order(tag="x1").status_code == 502  # Kite's documented "not accepted"
    assert down.get("/orders").status_code == 503
    assert up.order(tag="x2").status_code == 200
    assert kite_emulator.orders("downkey") == []
    # Taken off the plan, the account works again.
    kite_emulator.plan_tag_faults({})
    assert down.order(tag="x1").status_code == 200


def test_a_plan_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="unknown tag fault"):
        TagFault(kind="meteor")
    faults = TagFaults()
    faults.set({"t": {"kind": "drop"}}, [])
    assert faults.take("t") == TagFault(kind="drop")
    assert faults.take("t") is None  # used up by its first write
