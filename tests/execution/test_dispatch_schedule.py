"""Scheduling of a boundary's dispatch on real Redis: once per instant (SET NX), started the
lead before T (the ETA of the queued Celery message), never in the past; planning schedules
each instant of the day once. The message is read back from the broker's queue in Redis."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
import redis
import time_machine
from django.conf import settings

from brokers.models import Broker
from execution import conf
from execution.markettime import IST
from execution.services import dispatch_schedule, plan_and_schedule
from tests.execution.engine_factories import strategy_with_accounts

pytestmark = pytest.mark.django_db

DAY = datetime.date(2026, 11, 19)  # Thursday, a session
T = datetime.datetime.combine(DAY, datetime.time(9, 20), tzinfo=IST)
QUEUE = "execution"  # trader/celery.py routes the dispatch task (the hot path) here


@pytest.fixture
def broker_redis():
    """The Celery broker's Redis (the test database's own), emptied of what these tests write."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def clean():
        client.delete(QUEUE)
        for key in client.scan_iter("execution:dispatch:*"):
            client.delete(key)

    clean()
    yield client
    clean()


def _queued(client) -> list[dict]:
    """The dispatch messages waiting in the execution queue: task, args and ETA."""
    messages = []
    for raw in client.lrange(QUEUE, 0, -1):
        envelope = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        headers = envelope["headers"]
        messages.append(
            {
                "task": headers["task"],
                "args": args,
                "eta": datetime.datetime.fromisoformat(headers["eta"]),
            }
        )
    return messages


def test_an_instant_is_scheduled_once_to_start_the_lead_before_t(broker_redis):
    with time_machine.travel(T - datetime.timedelta(minutes=30), tick=False):
        assert dispatch_schedule(fire_at=T) is True
        assert dispatch_schedule(fire_at=T) is False  # SET NX: a second planner adds nothing
    (message,) = _queued(broker_redis)
    assert message["task"] == "execution.tasks.boundary_dispatch_task"
    assert message["args"] == [T.isoformat()]
    assert message["eta"] == T - datetime.timedelta(seconds=conf.dispatch_lead_seconds())
    key = f"execution:dispatch:{T.isoformat()}"
    # The marker outlives the day's boundaries and then expires on its own.
    assert 86000 < broker_redis.ttl(key) <= 86400


def test_scheduling_inside_the_lead_starts_now_not_in_the_past(broker_redis):
    now = T - datetime.timedelta(seconds=2)
    with time_machine.travel(now, tick=False):
        assert dispatch_schedule(fire_at=T) is True
    (message,) = _queued(broker_redis)
    assert message["eta"] == now


def test_each_instant_has_its_own_marker(broker_redis):
    later = T + datetime.timedelta(seconds=1)
    with time_machine.travel(T - datetime.timedelta(hours=1), tick=False):
        assert dispatch_schedule(fire_at=T) and dispatch_schedule(fire_at=later)
    assert sorted(m["args"][0] for m in _queued(broker_redis)) == [
        T.isoformat(),
        later.isoformat(),
    ]


def test_planning_schedules_each_instant_once_and_skips_the_past(broker_redis):
    for entry in (datetime.time(9, 20), datetime.time(9, 20), datetime.time(10, 5)):
        strategy_with_accounts(brokers=(Broker.PAPER,), entry=entry)
    # Before the open: three instants (09:20, 10:05 and the 15:10 exit shared by all).
    with time_machine.travel(datetime.datetime.combine(DAY, datetime.time(8), IST), tick=False):
        result = plan_and_schedule(day=DAY)
        assert (result["created"], result["scheduled"]) == (6, 3)
        # Planning again (a strategy edited) schedules nothing twice.
        assert plan_and_schedule(day=DAY)["scheduled"] == 0
    etas = sorted(m["eta"].astimezone(IST).time() for m in _queued(broker_redis))
    lead = datetime.timedelta(seconds=conf.dispatch_lead_seconds())
    expected = [
        (datetime.datetime.combine(DAY, t) - lead).time()
        for t in (datetime.time(9, 20), datetime.time(10, 5), datetime.time(15, 10))
    ]
    assert etas == expected


def test_planning_after_an_instant_has_passed_does_not_schedule_it(broker_redis):
    strategy_with_accounts(brokers=(Broker.PAPER,))
    # 31 s after 09:20 is past the late tolerance: only the exit is still to come.
    past = T + datetime.timedelta(seconds=conf.late_tolerance_seconds() + 1)
    with time_machine.travel(past, tick=False):
        result = plan_and_schedule(day=DAY.isoformat())  # as the beat task passes it
    assert result["scheduled"] == 1
    (message,) = _queued(broker_redis)
    assert message["args"] == [
        datetime.datetime.combine(DAY, datetime.time(15, 10), IST).isoformat()
    ]
