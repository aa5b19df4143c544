"""The hot path against the Kite emulator over real HTTP on 127.0.0.1: never before T,
hedge-first, an ambiguous send resolved by tag (never re-sent), a failed hedge holds the shorts.
"""

from __future__ import annotations

import time

import pytest

from brokers.registry import get_adapter
from execution import sender
from tests.brokers.contract.venues import broker_symbol, make_venue

pytestmark = [pytest.mark.django_db, pytest.mark.network]


@pytest.fixture
def kite(settings):
    venue = make_venue("kite", settings)
    token = venue.emulator.issue_token("kitekey")
    venue.account.access_token = token
    venue.account.save()
    yield venue
    venue.stop()


def _orders(run_id: int = 1) -> list[sender.OutgoingOrder]:
    spec = [("BUY", 26000), ("BUY", 23000), ("SELL", 25000), ("SELL", 24000)]
    return [
        sender.OutgoingOrder(
            intent_id=index,
            run_id=run_id,
            tag=f"TST{run_id}X{index}{int(time.time() * 1000) % 10**9}",
            phase=0 if side == "BUY" else 1,
            exchange="NFO",
            tradingsymbol=broker_symbol("kite", strike),
            instrument_token="",
            side=side,
            quantity=75,
            product="MIS",
            order_type="MARKET",
            price=None,
            algo_id="ALGO1",
        )
        for index, (side, strike) in enumerate(spec, start=1)
    ]


def test_orders_leave_at_t_never_before_and_hedges_first(kite):
    adapter = get_adapter(kite.account)
    fire_at = time.time() + 0.4
    report = sender.send_batch(
        account_id=kite.account.pk,
        adapter=adapter,
        ops_limit=10,
        orders=_orders(),
        fire_at_epoch=fire_at,
    )
    assert [o.state for o in report.outcomes] == ["acknowledged"] * 4, report.outcomes[0].error
    log = [r for r in kite.emulator.order_log() if r["method"] == "POST"]
    assert len(log) == 4
    arrivals = [r["arrival_ns"] / 1e9 for r in log]
    assert min(arrivals) >= fire_at
    assert max(arrivals) - fire_at < 0.5
    buys = [o.sent_at for o in report.outcomes if o.intent_id in (1, 2)]
    sells = [o.sent_at for o in report.outcomes if o.intent_id in (3, 4)]
    assert max(buys) < min(sells)


def test_ambiguous_send_is_found_by_tag_and_not_sent_again(kite):
    adapter = get_adapter(kite.account)
    kite.fault("drop")  # the order is created, the answer is lost
    report = sender.send_batch(
        account_id=kite.account.pk,
        adapter=adapter,
        ops_limit=10,
        orders=_orders()[:1],
        fire_at_epoch=None,
    )
    (outcome,) = report.outcomes
    assert outcome.state == "acknowledged" and outcome.broker_order_id
    # Recorded as resolved by lookup: ambiguous at the send, found by its tag.
    assert outcome.error_class == "ambiguous" and outcome.attempts == 1
    posts = [r for r in kite.emulator.order_log() if r["method"] == "POST"]
    assert len(posts) == 1


def test_a_rejected_hedge_holds_back_the_short_legs(kite):
    adapter = get_adapter(kite.account)
    kite.fault("reject")
    report = sender.send_batch(
        account_id=kite.account.pk,
        adapter=adapter,
        ops_limit=10,
        orders=_orders()[:1] + _orders()[2:3],
        fire_at_epoch=None,
    )
    states = {o.intent_id: o.state for o in report.outcomes}
    assert states == {1: "rejected", 3: "abandoned"}
    posts = [r for r in kite.emulator.order_log() if r["method"] == "POST"]
    assert len(posts) == 1
