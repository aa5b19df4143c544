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


def test_a_held_batch_is_filled_from_its_templates_and_falls_back_to_the_full_build(monkeypatch):
    """Built with markers at the hand-over, filled in at T - ε: the bytes are the adapter's own
    request with the resolved contract; a LIMIT order the resolution left without a price is
    built in full (and refused in the adapter's words); a run with an unresolved placeholder is
    left out."""
    from brokers.base import Credentials
    from brokers.kite.adapter import KiteAdapter
    from execution.send import sender, template, wire

    monkeypatch.setattr(sender, "session_refusals", lambda orders, at: {})
    adapter = KiteAdapter(Credentials(api_key="k", access_token="t"), base_url="http://127.0.0.1:9")
    resolution = {
        "?ab:0:kite": {"s": "M&M26D083000CE", "t": "123", "r": "101.5", "p": None},
        "?ab:1:kite": {"s": "NIFTY26D0824200CE", "t": "124", "r": "50", "p": {"SELL": "48.95"}},
        "?ab:2:kite": {"e": "no fresh price: stale: not sent."},
    }
    no_price, priced = _order(1, "?ab:0:kite"), _order(1, "?ab:1:kite", side="SELL")
    failing = _order(2, "?ab:2:kite", side="SELL")
    orders = [no_price, priced, failing]
    held = template.Held(
        account_id=1,
        cached=sender._CachedAdapter(adapter, "test", 10, broker="kite"),
        orders=orders,
        send_at={o.tag: time.time() + 60 for o in orders},
        fire_at_epoch=None,
    )
    assert set(held.templates) == {o.tag for o in orders}
    held.fill(slots.orders_resolved(orders, resolution))
    assert [o.tag for o in held.orders] == [no_price.tag, priced.tag]
    assert held.refused == {no_price.tag: "A LIMIT order needs a price."}
    built = adapter.order_request(held.orders[1].request())
    assert held.wires == {
        priced.tag: wire.serialize(built.method, built.url, built.headers, built.body)
    }
    assert b"tradingsymbol=NIFTY26D0824200CE&" in held.wires[priced.tag].data
