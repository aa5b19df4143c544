"""With a real Celery worker: a paper boundary dispatched and sent by the worker's tasks."""

from __future__ import annotations

import datetime
import time
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.services import paper_account_log_in
from execution.models import IntentState, OrderIntent, RunState, ScheduledRun
from tests.brokers.factories import PaperBookFactory
from tests.execution.engine_factories import strategy_with_accounts
from tests.execution.test_engine_lifecycle import _test_run
from trader.models import BrokerAllocation


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.celery_worker
def test_a_real_worker_dispatches_and_sends_a_paper_boundary(settings, calendar_loaded_today):
    from celery.contrib.testing.worker import start_worker

    from execution.tasks import boundary_dispatch_task
    from trader.celery import app

    settings.EXECUTION_SPOT_EPSILON_SECONDS = 0.5
    book = PaperBookFactory()
    account = paper_account_log_in(account=book.account, actor=book.account.owner)
    strategy, version, _ = strategy_with_accounts(brokers=(), owner=account.owner)
    BrokerAllocation.objects.create(
        strategy=strategy, broker_account=account, multiplier=Decimal("1"), priority=1
    )
    fire_at = (timezone.now() + datetime.timedelta(seconds=2)).replace(microsecond=0)
    run = _test_run(strategy, version, account, fire_at=fire_at)
    with start_worker(
        app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=["execution"],
    ):
        result = boundary_dispatch_task.apply_async(args=[fire_at.isoformat()], queue="execution")
        outcome = result.get(timeout=20)
        assert outcome["intents"] == 4, (outcome, ScheduledRun.objects.get(pk=run.pk).note)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            states = set(OrderIntent.objects.filter(run=run).values_list("state", flat=True))
            if states == {IntentState.FILLED}:
                break
            time.sleep(0.2)
    # The paper broker's fills are recorded with the outcomes, without a reconciliation pass.
    intents = list(OrderIntent.objects.filter(run=run))
    assert {i.state for i in intents} == {IntentState.FILLED}
    assert all(i.sent_at >= fire_at for i in intents)
    run.refresh_from_db()
    assert run.state == RunState.DISPATCHED
