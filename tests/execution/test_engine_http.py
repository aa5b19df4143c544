"""Engine pages through HTTP: runs with timings, isolation, paper test run, admin audit."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from brokers.services import paper_account_log_in
from execution.audit import event_record
from execution.models import AccountReadiness, ExecutionEvent, OrderIntent, ScheduledRun
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.conftest import staff_client_for
from tests.execution.engine_factories import IntentFactory, RunFactory, strategy_with_accounts
from trader.models import User

# These trade contracts of today's date: today's holiday year is loaded, as on a live platform.
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("calendar_loaded_today")]


def test_run_pages_show_orders_and_timings_to_their_owner_only(
    owner_client, owner, stranger_client
):
    run = RunFactory(strategy_version__strategy__owner=owner, owner=owner)
    intent = IntentFactory(run=run, intended_at=run.fire_at)
    OrderIntent.objects.filter(pk=intent.pk).update(
        state="acknowledged",
        sent_at=run.fire_at + datetime.timedelta(milliseconds=7),
        acked_at=run.fire_at + datetime.timedelta(milliseconds=41),
    )
    listing = owner_client.get(reverse("execution:runs"))
    assert listing.status_code == 200 and run.strategy_version.strategy.name in listing.text
    detail = owner_client.get(reverse("execution:run-detail", args=[run.pk]))
    assert intent.tag in detail.text and "+7.0 ms" in detail.text and "+41.0 ms" in detail.text
    assert stranger_client.get(reverse("execution:run-detail", args=[run.pk])).status_code == 404
    assert (
        run.strategy_version.strategy.name
        not in stranger_client.get(reverse("execution:runs")).text
    )


def test_runs_page_tells_what_the_ready_check_found_missing(owner_client, owner):
    account = BrokerAccountFactory(owner=owner)
    from execution.planning.plan import today_ist

    AccountReadiness.objects.create(
        session_date=today_ist(),
        account=account,
        ready=False,
        problems=["Account 1: no static IP registered (SEBI requires one)."],
        checked_at=datetime.datetime.now(datetime.UTC),
    )
    page = owner_client.get(reverse("execution:runs"))
    assert "Not ready to trade today" in page.text and "no static IP" in page.text


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_test_now_on_paper_runs_the_strategy_at_the_next_second(owner, owner_client, monkeypatch):
    sent = []
    monkeypatch.setattr("execution.dispatch._start_group", lambda payloads: sent.extend(payloads))
    book = PaperBookFactory(account__owner=owner)
    paper_account_log_in(account=book.account, actor=owner)
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    response = owner_client.post(reverse("execution:paper-test", args=[strategy.pk]))
    run = ScheduledRun.objects.get(is_test=True)
    assert response.status_code == 302 and response.url.endswith(f"/runs/{run.pk}/")
    assert run.fire_at.microsecond == 0 and run.source == "paper_test"
    assert [p["account_id"] for p in sent] == [book.account.pk]
    assert OrderIntent.objects.filter(run=run).count() == 4
    assert "TEST on paper" in owner_client.get(response.url).text


def test_runs_page_offers_test_now_on_paper_for_each_strategy(owner_client, owner):
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    page = owner_client.get(reverse("execution:runs"))
    assert reverse("execution:paper-test", args=[strategy.pk]) in page.text


def test_paper_test_of_someone_elses_strategy_is_404(stranger_client, owner):
    strategy, _, _ = strategy_with_accounts(brokers=(), owner=owner)
    response = stranger_client.post(reverse("execution:paper-test", args=[strategy.pk]))
    assert response.status_code == 404 and not ScheduledRun.objects.exists()


def test_admin_cannot_change_or_delete_execution_events():
    admin = User.objects.create_superuser("root@example.com", "pw-123456789")
    client = staff_client_for(admin)
    event = event_record(kind="order.sent", message="hello")
    change = reverse("admin:execution_executionevent_change", args=[event.pk])
    page = client.get(change)
    assert page.status_code == 200 and 'name="_save"' not in page.text
    client.post(change, {"kind": "tampered", "message": "tampered"})
    delete = client.post(
        reverse("admin:execution_executionevent_delete", args=[event.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert ExecutionEvent.objects.get(pk=event.pk).message == "hello"
