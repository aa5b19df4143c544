"""How a task is started: its ETA, countdown and queue reach the broker as given, and an empty
set of account batches publishes nothing."""

from __future__ import annotations

import datetime

import pytest

from execution import enqueue


class _Signature:
    def __init__(self, published, name, args, kwargs) -> None:
        self.published, self.name, self.args, self.kwargs = published, name, args, kwargs

    def apply_async(self, **options):
        self.published.append((self.name, self.args, self.kwargs, options))


@pytest.fixture
def published(monkeypatch):
    from celery import current_app

    sent: list = []
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False  # published, not run here
    monkeypatch.setattr(
        current_app,
        "signature",
        lambda name, args=(), kwargs=None: _Signature(sent, name, args, kwargs),
    )
    yield sent
    current_app.conf.task_always_eager = eager


def test_eta_countdown_and_queue_are_passed_to_the_broker(published):
    at = datetime.datetime(2026, 12, 4, 3, 50, tzinfo=datetime.UTC)
    enqueue.task_enqueue(enqueue.DAY_PLAN, kwargs={"day": "2026-12-04"}, eta=at, queue="engine")
    enqueue.task_enqueue(enqueue.DAY_PLAN, args=[1], countdown=2.5)
    assert published == [
        (enqueue.DAY_PLAN, (), {"day": "2026-12-04"}, {"eta": at, "queue": "engine"}),
        (enqueue.DAY_PLAN, (1,), {}, {"countdown": 2.5}),
    ]


def test_no_account_batches_publish_nothing(published):
    enqueue.account_sends_enqueue([])
    assert published == []
