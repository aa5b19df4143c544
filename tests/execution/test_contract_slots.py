"""Contract placeholders: filled in by the senders from the resolution published at T - ε."""

from __future__ import annotations

import threading
import time
import uuid

from execution.intents import slots
from execution.send.sender import OutgoingOrder


def _order(run_id: int, symbol: str, side: str = "BUY", tag: str = "") -> OutgoingOrder:
    return OutgoingOrder(
        intent_id=1,
        run_id=run_id,
        tag=tag or uuid.uuid4().hex[:16],
        phase=0 if side == "BUY" else 1,
        exchange="NFO",
        tradingsymbol=symbol,
        instrument_token="",
        side=side,
        quantity=75,
        product="MIS",
        order_type="LIMIT",
        price=None,
        algo_id="",
    )


def test_placeholders_are_filled_and_a_run_with_one_unresolved_is_left_out_whole():
    resolution = {
        "?ab:0:kite": {"s": "NIFTY26D0824000CE", "t": "123", "r": "101.5", "p": None},
        "?ab:1:kite": {
            "s": "NIFTY26D0824200CE",
            "t": "124",
            "r": "50",
            "p": {"BUY": "51.05", "SELL": "48.95"},
        },
        "?ab:2:kite": {"e": "no fresh price: stale: not sent."},
    }
    ok_buy, ok_sell = _order(1, "?ab:0:kite"), _order(1, "?ab:1:kite", side="SELL")
    failing = [_order(2, "?ab:0:kite"), _order(2, "?ab:2:kite", side="SELL")]
    known = _order(3, "NIFTY26D0823000PE")  # an order naming its contract already
    out = slots.orders_resolved([ok_buy, ok_sell, *failing, known], resolution)
    assert [o.run_id for o in out] == [1, 1, 3]
    assert (out[0].tradingsymbol, out[0].instrument_token, out[0].price) == (
        "NIFTY26D0824000CE",
        "123",
        None,
    )
    assert out[1].tradingsymbol == "NIFTY26D0824200CE" and out[1].price == "48.95"
    assert out[2] == known
    # No resolution at all (the dispatcher never published): nothing with a placeholder goes.
    assert slots.orders_resolved([ok_buy, known], None) == [known]


def test_batches_handed_over_before_t_minus_epsilon_are_sent_once_it_is_published():
    key = f"execution:contracts:test:{uuid.uuid4().hex}"
    resolution = {"?x:0:kite": {"s": "S", "t": "1", "r": None, "p": None}}
    got: list[object] = []
    both = threading.Event()

    def then(found: object) -> None:
        got.append(found)
        if len(got) == 2:
            both.set()

    until = time.time() + 10
    slots.when_resolved(key, until=until, then=then)
    slots.when_resolved(key, until=until, then=then)
    assert not got  # nothing before the resolution is published
    slots.publish(key, resolution)
    assert both.wait(5) and got == [resolution, resolution]
    late = threading.Event()
    slots.when_resolved(key, until=until, then=lambda found: late.set())  # after: at once
    assert late.wait(5)


def test_a_resolution_that_never_comes_sends_nothing():
    key = f"execution:contracts:test:{uuid.uuid4().hex}"
    found: list[object] = []
    done = threading.Event()
    slots.when_resolved(key, until=time.time() + 0.2, then=lambda r: (found.append(r), done.set()))
    assert done.wait(5) and found == [None]
