"""Order requests built before their contract is known, filled in by joining bytes.

An entry's contract is resolved at T - ε (execution.intents.slots), but everything that costs
per order does not depend on it. So when a batch is handed over, before T - ε, each order's
request is built by its adapter with markers in place of the contract's symbol, token and (for
a LIMIT order) price, serialized, and cut at the markers into a `wire.Template`; its
orders-per-second slots are already reserved, the session guard is run at each order's planned
send instant, connections are warmed and the batch waits on the lane for its contracts. At
T - ε one pass per process (`Held.fill`, called for every batch of the boundary) joins each
template with the encoded values (computed once per distinct contract and price, not per
order), and wakes the batches in one loop callback: they arm their requests for the gate of T.

What the adapter writes for each value is its declared `order_template` (brokers.base); an
order whose adapter declares none, or whose request the markers do not survive (a marker not
found exactly once), or a LIMIT order with no price, is built in full at the fill instead:
correct first, fast where the declaration is proved (tests/brokers/test_order_templates.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from decimal import Decimal
from typing import Any

from brokers.base import UNWRITTEN, BrokerAdapter, BrokerError, OrderTemplate
from execution.send import sender, wire

logger = logging.getLogger(__name__)

# Stand-ins for the contract's values while the request is built: plain letters and digits
# (nothing in a form or JSON body escapes them) that no real symbol, token or quantity is.
MARKERS: dict[str, Any] = {
    "tradingsymbol": "Zq7SYMBOLq7Z",
    "instrument_token": "Zq7TOKENq7Z",
    "price": Decimal("987654.32"),
}
FIELDS = ("tradingsymbol", "instrument_token", "price")
# A batch handed over this close to T warms its connections at once; one handed over earlier
# leaves it to the pass at T - ε (its connections would be stale by T).
WARM_AHEAD_MAX = wire.IDLE_MAX_SECONDS - 2.0


def fields_of(order: sender.OutgoingOrder) -> tuple[str, ...]:
    """The contract's fields in `order`'s request: the price only for a LIMIT order."""
    return FIELDS if order.order_type == "LIMIT" else FIELDS[:2]


def order_template(adapter: BrokerAdapter, order: sender.OutgoingOrder) -> wire.Template | None:
    """`order`'s request with gaps for its contract, or None when it cannot be templated (see
    the module docstring). A BrokerError of the adapter on the marked order is None too: the
    full build at the fill decides on the real values."""
    declared = adapter.order_template
    if declared is None:
        return None
    gaps = {}
    for name in fields_of(order):
        encoder = declared.encoder(name)
        if encoder is None:
            return None
        if encoder != UNWRITTEN:
            gaps[name] = encoder(MARKERS[name], order.exchange)  # type: ignore[operator]
    marked = copy_with(
        order,
        tradingsymbol=MARKERS["tradingsymbol"],
        instrument_token=MARKERS["instrument_token"],
        price=str(MARKERS["price"]) if order.order_type == "LIMIT" else order.price,
    )
    try:
        built = adapter.order_request(marked.request())
    except BrokerError:
        return None
    made = wire.template(built.method, built.url, built.headers, built.body, gaps)
    if made is None:
        return None
    # No marker may be left anywhere else (an unwritten field that is written after all, or a
    # value also written in another form): its real value would not be filled in.
    rest = b"".join((made.head, *made.parts))
    if any(str(MARKERS[name]).encode() in rest for name in fields_of(order)):
        return None
    return made


def copy_with(order: sender.OutgoingOrder, **fields: Any) -> sender.OutgoingOrder:
    """`order` with `fields` changed: dataclasses.replace runs __init__ (about 20 µs for this
    many fields); a copy of the instance's dict is a tenth of that, which counts in a pass
    over every order of a process at T - ε."""
    copied = object.__new__(sender.OutgoingOrder)
    copied.__dict__.update(order.__dict__, **fields)
    return copied


_encoded: dict[tuple[Any, ...], dict[str, bytes]] = {}


def _values(
    declared: OrderTemplate, gaps: tuple[str, ...], order: sender.OutgoingOrder
) -> dict[str, bytes]:
    """The bytes of `order`'s contract values for `gaps`, encoded once per adapter class,
    contract, price and exchange (a few per boundary), not once per order."""
    key = (
        id(declared),
        gaps,
        order.tradingsymbol,
        order.instrument_token,
        order.price,
        order.exchange,
    )
    found = _encoded.get(key)
    if found is None:
        found = {}
        for name in gaps:
            value = getattr(order, name)
            encoder = declared.encoder(name)
            if not callable(encoder):  # a gap is cut only for an encoded field
                raise TypeError(f"{name} has no encoder in {declared!r}")
            found[name] = encoder(Decimal(value) if name == "price" else value, order.exchange)
        if len(_encoded) > 100_000:  # a long-lived worker: forget old boundaries' values
            _encoded.clear()
        _encoded[key] = found
    return found


def template_fill(
    made: wire.Template, declared: OrderTemplate, order: sender.OutgoingOrder
) -> wire.Prepared | None:
    """`order`'s request from its template (`order_template`), its contract filled in; None
    for a LIMIT order without a price (built in full: the adapter refuses it in its words)."""
    if order.order_type == "LIMIT" and order.price is None:
        return None
    return made.fill(_values(declared, made.gaps, order))


class Held:
    """One account's batch waiting on the lane for its contracts (see the module docstring)."""

    def __init__(
        self,
        *,
        account_id: int,
        cached: sender._CachedAdapter,
        orders: list[sender.OutgoingOrder],
        send_at: dict[str, float],
        fire_at_epoch: float | None,
    ) -> None:
        self.account_id = account_id
        self.cached = cached
        self.orders = orders
        self.send_at = send_at
        self.fire_at_epoch = fire_at_epoch
        self.templates = {}
        for order in orders:
            made = order_template(cached.adapter, order)
            if made is not None:
                self.templates[order.tag] = made
        self.closed = sender.session_refusals(
            orders, at={o.tag: max(send_at[o.tag], time.time()) for o in orders}
        )
        self.wires: dict[str, Any] = {}
        self.refused: dict[str, str] = {}
        self.filled = False
        self._waiter: asyncio.Future[None] | None = None

    def fill(self, orders: list[sender.OutgoingOrder]) -> None:
        """Fill the contracts of `orders` (this batch's orders with their contracts, those of
        runs not sent left out) into their templates; the orders without one are built in
        full. Any thread; the batch wakes at `wake`."""
        declared = self.cached.adapter.order_template
        wires, refused = {}, {}
        for order in orders:
            made = self.templates.get(order.tag)
            if made is not None and declared is not None:
                prepared = template_fill(made, declared, order)
                if prepared is not None:
                    wires[order.tag] = prepared
                    continue
            try:
                built = self.cached.adapter.order_request(order.request())
            except BrokerError as exc:  # refused before anything leaves (e.g. MARKET at Angel)
                refused[order.tag] = exc.message
                continue
            wires[order.tag] = wire.serialize(built.method, built.url, built.headers, built.body)
        self.orders, self.wires, self.refused = orders, wires, refused

    def _wake(self) -> None:
        self.filled = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def run(self, the_lane: sender.AsyncLane) -> sender.BatchReport:
        if not self.filled:
            self._waiter = the_lane.loop.create_future()
            await self._waiter
        if not self.orders:
            return sender.BatchReport(account_id=self.account_id)
        return await the_lane.batch(
            account_id=self.account_id,
            cached=self.cached,
            orders=self.orders,
            wires=self.wires,
            send_at=self.send_at,
            fire_at_epoch=self.fire_at_epoch,
            closed=self.closed,
            refused=self.refused,
        )


_held: dict[str, list[Held]] = {}
_held_lock = threading.Lock()
# What the hand-overs of a boundary cost this process: key -> [seconds, orders].
_spent: dict[str, list[float]] = {}
HANDOVER_COST_KEY = "execution:send:handover_seconds_per_order"


def handover_cost_record(seconds: float, orders: int) -> None:
    """Remember what holding one order cost a send worker at this boundary (a moving average
    in Redis, one write per process and boundary): the dispatch's lead counts it, since the
    hand-overs must be done before T - ε (execution.dispatch.dispatch_lead)."""
    if orders > 0:
        sender.cost_learn(HANDOVER_COST_KEY, seconds / orders)


def handover_seconds_per_order() -> float:
    """What holding one order cost a send worker at the last boundaries (0 before any)."""
    return sender.cost_read(HANDOVER_COST_KEY) or 0.0


def batch_hold(
    key: str,
    *,
    account_id: int,
    cached: sender._CachedAdapter,
    orders: list[sender.OutgoingOrder],
    send_at: dict[str, float],
    fire_at_epoch: float | None,
) -> Future[sender.BatchReport]:
    """Prepare one account's batch of an HTTP adapter before its contracts are known, warm
    its connections and start it on the lane, waiting for `batches_fill(key, …)`. Returns a
    concurrent Future of its BatchReport."""
    began = time.perf_counter()
    held = Held(
        account_id=account_id,
        cached=cached,
        orders=orders,
        send_at=send_at,
        fire_at_epoch=fire_at_epoch,
    )
    the_lane = sender.lane()
    if fire_at_epoch is not None:
        # Connections opened now are still fresh at T (wire.IDLE_MAX_SECONDS); earlier ones
        # would be dropped as stale at T: then the pass at T - ε opens them.
        the_lane.want(
            fire_at_epoch,
            sender.origins_at_t(orders, held.templates),
            warm=fire_at_epoch - time.time() < WARM_AHEAD_MAX,
        )
    with _held_lock:
        _held.setdefault(key, []).append(held)
        spent = _spent.setdefault(key, [0.0, 0])
        spent[0] += time.perf_counter() - began
        spent[1] += len(orders)
    return asyncio.run_coroutine_threadsafe(the_lane.tracked(held.run(the_lane)), the_lane.loop)


def batches_fill(
    key: str,
    contracts: Callable[[list[sender.OutgoingOrder]], list[sender.OutgoingOrder]],
) -> int:
    """The pass at T - ε: every batch of this process held for `key` gets its orders through
    `contracts` (their contracts filled in, those not to send left out) and its requests
    filled, then all wake in one loop callback to arm for T. Returns the batches filled (a
    batch held after the pass is filled by the next call)."""
    with _held_lock:
        batches = _held.pop(key, [])
        spent = _spent.pop(key, None)
    if spent is not None:
        handover_cost_record(spent[0], int(spent[1]))
    if not batches:
        return 0
    the_lane = sender.lane()
    times = set()
    for held in batches:
        try:
            held.fill(contracts(held.orders))
        except Exception:  # its orders stay claimed and unsent: looked up, never resent
            logger.exception("the contracts of a held batch could not be filled in")
            held.orders = []
        if held.fire_at_epoch is not None:
            times.add(held.fire_at_epoch)
            # The orders built in full now (no template) were not counted at the hand-over
            # (which of them go at T is decided among all the batch's orders).
            built = {t: w for t, w in held.wires.items() if t not in held.templates}
            if built:
                the_lane.want(
                    held.fire_at_epoch, sender.origins_at_t(held.orders, built), warm=False
                )
    # Open what is missing (connections opened at a hand-over long before T have aged out of
    # the pool): once per T and origin in the pass, not once per batch.
    for fire_at_epoch in times:
        the_lane.warm_wanted(fire_at_epoch)

    def wake() -> None:
        for held in batches:
            held._wake()

    the_lane.loop.call_soon_threadsafe(wake)
    return len(batches)
