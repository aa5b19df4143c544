"""Never a blind resend, against the Kite emulator over real HTTP: an order whose answer is
lost while the broker's book lags, or whose lookup fails, stays unknown and is never written a
second time; past the settle time it needs attention (owner told, entries halted)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from brokers.registry import get_adapter
from execution.models import ExecutionEvent, IntentState, OrderIntent
from execution.orders.lifecycle import open_orders_reconcile, outcomes_apply
from execution.send import sender
from tests.brokers.contract.venues import broker_symbol
from tests.execution.engine_factories import IntentFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.network,
    pytest.mark.usefixtures("session_open", "calendar_loaded_today"),
]


def _intent(venue, **fields):
    return IntentFactory(
        account=venue.account,
        exchange="NFO",
        tradingsymbol=broker_symbol("kite", 26000),
        side="BUY",
        quantity=75,
        order_type="MARKET",
        **fields,
    )


def _posts(venue, tag):
    return [r for r in venue.emulator.order_log() if r.get("tag") == tag]


def _send(venue, intent):
    from execution.intents.build import outgoing

    order = sender.OutgoingOrder(**outgoing(intent))
    sender.claims_take([order.tag])
    report = sender.send_batch(
        account_id=venue.account.pk,
        adapter=get_adapter(venue.account),
        ops_limit=10,
        orders=[order],
        fire_at_epoch=None,
    )
    outcomes_apply(report.outcomes)
    intent.refresh_from_db()
    return report.outcomes[0]


@pytest.mark.parametrize("book", [{"book_lag_ms": 5000}, {"book_fails": True}])
def test_a_lost_answer_the_books_cannot_settle_stays_unknown_and_is_never_resent(
    kite, book, settings, mailoutbox
):
    kite.emulator.configure(**book)
    kite.fault("drop")  # accepted by the OMS, the answer lost
    intent = _intent(kite)
    outcome = _send(kite, intent)
    assert outcome.state == "unknown" and intent.state == IntentState.UNKNOWN
    assert len(_posts(kite, intent.tag)) == 1
    # The reconciler looks again (still not visible), and never writes it again.
    OrderIntent.objects.filter(pk=intent.pk).update(
        intended_at=timezone.now() - datetime.timedelta(seconds=30)
    )
    open_orders_reconcile()
    intent.refresh_from_db()
    assert intent.state == IntentState.UNKNOWN
    # Past the settle time: needs attention, the owner is emailed; still one write.
    settings.EXECUTION_UNKNOWN_SETTLE_SECONDS = 0
    open_orders_reconcile()
    intent.refresh_from_db()
    assert intent.state == IntentState.NEEDS_ATTENTION
    assert ExecutionEvent.objects.filter(intent_id=intent.pk, kind="order.needs_attention")
    assert len(mailoutbox) == 1
    assert len(_posts(kite, intent.tag)) == 1
    # Once the book shows it, it settles from the book.
    kite.emulator.configure(book_lag_ms=0, book_fails=False)
    open_orders_reconcile()
    intent.refresh_from_db()
    assert intent.state in (IntentState.ACKNOWLEDGED, IntentState.FILLED)
    assert intent.broker_order_id
    assert len(_posts(kite, intent.tag)) == 1


def test_a_dead_workers_marked_order_is_found_in_the_book_not_resent(kite):
    intent = _intent(kite, intended_at=timezone.now() - datetime.timedelta(seconds=10))
    dead = "deadhost:9:zz"
    sender.claims_take([intent.tag], owner=dead)
    sender.wire_marks_set([intent.tag], owner=dead)
    # The dead worker wrote it (the emulator has it), but never recorded the answer.
    from execution.intents.build import outgoing

    get_adapter(kite.account).place_order(sender.OutgoingOrder(**outgoing(intent)).request())
    kite.emulator.configure(book_lag_ms=60_000)
    assert open_orders_reconcile()["unknown"] == 1
    kite.emulator.configure(book_lag_ms=0)
    open_orders_reconcile()
    intent.refresh_from_db()
    assert intent.state in (IntentState.ACKNOWLEDGED, IntentState.FILLED)
    assert len(_posts(kite, intent.tag)) == 1
