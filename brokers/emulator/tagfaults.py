"""Faults planned per order tag, and accounts whose broker is down: set from outside through
the control plane (``POST /_emulator/tag-faults``), so that a benchmark decides every order's
fault from its own seed and two runs with the same seed inject the same faults, whatever the
order in which the orders arrive (the random ``fail_rate`` of :class:`core.FaultPlan` follows
the arrival order, which is not reproducible).

Kinds (each applies to the first write of its tag; a tag without a plan has no fault):

- ``5xx-after``: the order is created, the answer is HTTP 500 (the order exists).
- ``drop``: the order is created, the connection is closed without an answer.
- ``429``: the write is refused as over the rate limit ``count`` times in a row (a burst),
  each refusal before acceptance; the next write of the tag goes through.
- ``book-lag``: created, answered HTTP 500, and the order stays out of the account's order book
  and tag lookups for ``seconds`` (a lagging OMS: the sender's quick lookups miss it).
- ``lookup-fail``: created, the connection dropped, and every order-book read and tag lookup of
  the account answers HTTP 503 for ``seconds``.

An account that is down (``down``: api keys) is refused on every write with the broker's
"not accepted" server error (the ``5xx`` fault's status) and on every book read with 503, for
as long as it stays in the plan (the benchmark's whole boundary).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brokers.emulator.core import Order

TAG_FAULT_KINDS = ("5xx-after", "drop", "429", "book-lag", "lookup-fail")
# What the writer of a planned order sees: the core's answer-losing faults.
ANSWER = {"5xx-after": "5xx-after", "drop": "drop", "book-lag": "5xx-after", "lookup-fail": "drop"}


@dataclasses.dataclass
class TagFault:
    kind: str
    count: int = 1  # 429: refusals in a row
    seconds: float = 0.0  # book-lag, lookup-fail: how long the book hides or fails

    def __post_init__(self) -> None:
        if self.kind not in TAG_FAULT_KINDS:
            raise ValueError(f"unknown tag fault {self.kind!r}; use {TAG_FAULT_KINDS}")
        self.count, self.seconds = int(self.count), float(self.seconds)


class TagFaults:
    """The plan and the windows it opened. Touched only from the server's event loop."""

    def __init__(self) -> None:
        self.planned: dict[str, TagFault] = {}
        self.down: set[str] = set()
        self._hidden_until: dict[str, float] = {}  # order id -> monotonic time
        self._book_fails_until: dict[str, float] = {}  # api key -> monotonic time

    def set(self, tags: dict[str, dict[str, Any]], down: list[str]) -> None:
        """Replace the plan (a fault already taken stays taken)."""
        planned = {tag: TagFault(**fields) for tag, fields in tags.items()}
        self.planned, self.down = planned, set(down)

    def take(self, tag: str) -> TagFault | None:
        """The fault of this write of `tag`, used up as it applies."""
        fault = self.planned.get(tag) if tag else None
        if fault is None:
            return None
        if fault.kind == "429" and fault.count > 1:
            fault.count -= 1
        else:
            del self.planned[tag]
        return fault

    def created(self, fault: TagFault, order: Order) -> None:
        """Open the book window of an order created under `fault`."""
        until = time.monotonic() + fault.seconds
        if fault.kind == "book-lag":
            self._hidden_until[order.order_id] = until
        elif fault.kind == "lookup-fail":
            key = order.account.api_key
            self._book_fails_until[key] = max(until, self._book_fails_until.get(key, 0.0))

    def book_fails(self, api_key: str) -> bool:
        return api_key in self.down or self._book_fails_until.get(api_key, 0.0) > time.monotonic()

    def visible(self, orders: list[Order]) -> list[Order]:
        if not self._hidden_until:
            return orders
        now = time.monotonic()
        return [o for o in orders if self._hidden_until.get(o.order_id, 0.0) <= now]
