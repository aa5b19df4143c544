"""Marketplace changes re-plan today's runs of the engine, after they commit.

The engine's re-plan task is replaced by a recorder (which services ask for a re-plan, and only
once committed) or by the planner itself on a session still ahead (what the re-plan does to the
deployment's runs).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from brokers.models import Broker
from execution.enqueue import DAY_PLAN
from execution.markettime import IST
from execution.models import ScheduledRun
from execution.planning.plan import day_plan
from execution.reference import calendar
from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import InvoiceKind, ListingVersion, SubscriptionStatus
from tests.execution.engine_factories import VersionFactory, strategy_with_accounts
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def _deployed(*, plan=None):
    strategy, _, _ = strategy_with_accounts(brokers=(Broker.PAPER,))
    listing = ListingFactory(strategy=strategy, plan=plan)
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    deployment = services.deployment_create(
        subscription=subscription,
        user=trader,
        broker_account=PaperAccountFactory(owner=trader),
        multiplier=2,
    )
    return subscription, deployment


@pytest.fixture
def replans(monkeypatch):
    calls: list[dict] = []
    monkeypatch.setattr(
        "execution.enqueue.task_enqueue",
        lambda name, **options: calls.append(options["kwargs"]) if name == DAY_PLAN else None,
    )
    return calls


def _admin():
    user = ProfileFactory().user
    user.is_staff = user.is_superuser = True
    user.save()
    return user


def _pause(subscription, deployment):
    services.subscription_pause(subscription=subscription, user=subscription.subscriber)


def _resume(subscription, deployment):
    _pause(subscription, deployment)
    services.subscription_resume(subscription=subscription, user=subscription.subscriber)


def _cancel(subscription, deployment):
    services.subscription_cancel(subscription=subscription, user=subscription.subscriber)


def _add(subscription, deployment):
    services.deployment_create(
        subscription=subscription,
        user=subscription.subscriber,
        broker_account=PaperAccountFactory(owner=subscription.subscriber),
        multiplier=3,
    )


def _change(subscription, deployment):
    services.deployment_stop(deployment=deployment, user=subscription.subscriber)
    services.deployment_create(
        subscription=subscription,
        user=subscription.subscriber,
        broker_account=deployment.broker_account,
        multiplier=5,
        max_daily_loss=Decimal("2000"),
    )


def _stop(subscription, deployment):
    services.deployment_stop(deployment=deployment, user=subscription.subscriber)


def _suspend(subscription, deployment):
    services.listing_transition(
        listing=subscription.listing, user=_admin(), action="suspend", reason="Under review."
    )


@pytest.mark.parametrize("change", [_pause, _resume, _cancel, _add, _change, _stop, _suspend])
def test_each_change_re_plans_the_listed_strategy_once_committed(
    change, replans, django_capture_on_commit_callbacks
):
    subscription, deployment = _deployed()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        change(subscription, deployment)
        assert replans == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert replans
    assert {tuple(call.items()) for call in replans} == {
        (("strategy_id", subscription.listing.strategy_id),)
    }


def test_a_refused_change_re_plans_nothing(replans, django_capture_on_commit_callbacks):
    subscription, _ = _deployed()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(MarketplaceError):
        services.subscription_resume(subscription=subscription, user=subscription.subscriber)
    assert replans == []


def test_a_recorded_payment_and_a_lapse_re_plan(replans, django_capture_on_commit_callbacks):
    subscription, _ = _deployed(plan={"kind": "fee", "monthly_fee": Decimal("500")})
    strategy_id = subscription.listing.strategy_id
    invoice = subscription.invoices.get(kind=InvoiceKind.FEE)
    with django_capture_on_commit_callbacks(execute=True):
        services.subscriptions_renew_or_lapse(today=invoice.period_end + datetime.timedelta(1))
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.LAPSED
    assert replans == [{"strategy_id": strategy_id}]
    with django_capture_on_commit_callbacks(execute=True):
        services.invoice_mark_paid(invoice=invoice, admin=_admin(), reference="UTR123")
    assert replans == [{"strategy_id": strategy_id}] * 2


# --- what the re-plan does, on a session still ahead ----------------------------------------


@pytest.fixture
def ahead(monkeypatch, calendar_loaded_today):
    """A session a week or more ahead; the re-plan task plans that day."""
    today = timezone.now().astimezone(IST).date()
    day = calendar.sessions_between(
        today + datetime.timedelta(days=7), today + datetime.timedelta(days=21)
    )[0]
    monkeypatch.setattr(
        "execution.enqueue.task_enqueue",
        lambda name, **options: (
            day_plan(day=day, **options["kwargs"]) if name == DAY_PLAN else None
        ),
    )
    return day


def _runs(day, deployment):
    return {
        run.boundary: run
        for run in ScheduledRun.objects.filter(
            session_date=day, source="deployment", source_ref=str(deployment.pk)
        )
    }


def test_pause_withdraws_the_runs_and_resume_plans_them_again(
    ahead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscription, deployment = _deployed()
    assert {b: r.state for b, r in _runs(ahead, deployment).items()} == {
        "entry": "planned",
        "exit": "planned",
    }
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_pause(subscription=subscription, user=subscription.subscriber)
    assert {r.state for r in _runs(ahead, deployment).values()} == {"skipped"}
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_resume(subscription=subscription, user=subscription.subscriber)
    runs = _runs(ahead, deployment)
    assert {r.state for r in runs.values()} == {"planned"}
    assert runs["exit"].entry_run_id == runs["entry"].pk
    with django_capture_on_commit_callbacks(execute=True):
        services.subscription_cancel(subscription=subscription, user=subscription.subscriber)
    assert {r.state for r in _runs(ahead, deployment).values()} == {"skipped"}


def test_an_added_or_changed_deployment_is_planned_with_its_multiplier(
    ahead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscription, deployment = _deployed()
        _change(subscription, deployment)
    runs = _runs(ahead, deployment)
    assert {r.state for r in runs.values()} == {"planned"}
    assert [a["multiplier"] for a in runs["entry"].allocations] == ["5"]
    second = PaperAccountFactory(owner=subscription.subscriber)
    with django_capture_on_commit_callbacks(execute=True):
        added = services.deployment_create(
            subscription=subscription,
            user=subscription.subscriber,
            broker_account=second,
            multiplier=3,
        )
    runs = _runs(ahead, added)
    assert {r.state for r in runs.values()} == {"planned"}
    assert [(a["account_id"], a["multiplier"]) for a in runs["entry"].allocations] == [
        (second.pk, "3")
    ]


def test_a_dispatched_run_is_never_re_planned(ahead, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subscription, deployment = _deployed()
    entry = _runs(ahead, deployment)["entry"]
    ScheduledRun.objects.filter(pk=entry.pk).update(
        state="skipped", dispatched_at=timezone.now(), note="Kill switch engaged."
    )
    with django_capture_on_commit_callbacks(execute=True):
        _pause(subscription, deployment)
        services.subscription_resume(subscription=subscription, user=subscription.subscriber)
    entry.refresh_from_db()
    assert (entry.state, entry.note) == ("skipped", "Kill switch engaged.")


def test_a_version_approved_mid_day_keeps_the_exit_of_what_the_old_one_opened(
    ahead, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscription, deployment = _deployed()
    runs = _runs(ahead, deployment)
    old_version = runs["entry"].strategy_version_id
    ScheduledRun.objects.filter(pk=runs["entry"].pk).update(
        state="dispatched", dispatched_at=timezone.now()
    )
    listing = subscription.listing
    newer = VersionFactory(strategy=listing.strategy, number=2)
    approved = ListingVersion.objects.create(
        listing=listing, number=2, strategy_version=newer, snapshot={}, state="approved"
    )
    subscription.version = approved
    subscription.save()
    day_plan(day=ahead, strategy_id=listing.strategy_id)
    runs = ScheduledRun.objects.filter(
        session_date=ahead, source="deployment", source_ref=str(deployment.pk)
    )
    assert {(r.boundary, r.strategy_version_id, r.state) for r in runs} == {
        ("entry", old_version, "dispatched"),
        ("exit", old_version, "planned"),
    }
