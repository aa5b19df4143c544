"""Liveness of the three things the platform needs (database, Redis, a Celery worker), and
whether it can trade: a holiday calendar that runs out makes the platform degraded, not down.

The database and Redis are asked on every call (a millisecond each). Asking Celery workers to
answer a ping takes up to a second, so the answer is cached: a call reads the last one and,
when it is older than WORKER_PING_REFRESH seconds, starts one background ping (one at a time
across processes, by a cache lock) whose answer the next calls read. /healthz therefore answers
in a few milliseconds whatever the workers do.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection

WORKER_PING_KEY = "health:worker"
WORKER_PING_LOCK = "health:worker:lock"
WORKER_PING_REFRESH = 15  # seconds before a cached answer is refreshed
WORKER_PING_STALE = 60  # seconds after which an answer no longer counts


def _timed(check: Any) -> dict[str, Any]:
    started = time.monotonic()
    try:
        detail = check()
        status: dict[str, Any] = {"ok": True}
        if detail:
            status.update(detail)
    except Exception as exc:  # report the failure, never raise from a health check
        status = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    status["ms"] = round((time.monotonic() - started) * 1000, 1)
    return status


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def worker_ping() -> dict[str, Any]:
    """Ping the Celery workers now (up to 1 s) and cache the answer."""
    from trader.celery import app

    try:
        replies = app.control.ping(timeout=1.0)
        answer: dict[str, Any] = {
            "ok": bool(replies),
            "workers": sorted(name for reply in replies or [] for name in reply),
        }
        if not replies:
            answer["error"] = "no Celery worker answered within 1 s"
    except Exception as exc:  # a broker outage is an answer too
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
    answer["at"] = time.time()
    cache.set(WORKER_PING_KEY, answer, timeout=WORKER_PING_STALE)
    return answer


class WorkerPingPendingError(RuntimeError):
    """No worker ping has been answered yet (just after start): degraded, not down."""


def _ping_in_background() -> None:
    try:
        worker_ping()
    finally:
        cache.delete(WORKER_PING_LOCK)


def check_worker() -> dict[str, Any]:
    """The last cached worker ping; a refresh is started when it is due."""
    answer = cache.get(WORKER_PING_KEY)
    due = answer is None or time.time() - answer["at"] > WORKER_PING_REFRESH
    if due and cache.add(WORKER_PING_LOCK, 1, timeout=5):
        threading.Thread(target=_ping_in_background, name="health-ping", daemon=True).start()
    if answer is None:
        raise WorkerPingPendingError("not known yet: the first ping is under way")
    if not answer["ok"]:
        raise RuntimeError(answer.get("error", "no Celery worker answered"))
    return {"workers": answer["workers"], "age_s": round(time.time() - answer["at"], 1)}


def check_calendar() -> dict[str, Any]:
    """Raises when an exchange's holiday calendar is not loaded for today or runs out within
    30 days (`execution.reference.calendar.coverage_warnings`)."""
    from django.utils import timezone

    from execution.markettime import IST
    from execution.reference.calendar import coverage_warnings

    warnings = coverage_warnings(timezone.now().astimezone(IST).date())
    if warnings:
        raise RuntimeError(" ".join(warnings))
    return {}


# Without these the platform is down; the rest only degrade it.
ESSENTIAL = ("database", "redis", "worker")


def health_report() -> tuple[str, dict[str, Any]]:
    """("up" | "degraded" | "down", one entry per check). Down: an essential part does not
    answer; degraded: the calendar runs out, or the first worker ping is still under way."""
    report = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "worker": _timed(check_worker),
    }
    if report["database"]["ok"]:
        report["calendar"] = _timed(check_calendar)
    pending = report["worker"].get("error", "").startswith(WorkerPingPendingError.__name__)
    if not all(report[name]["ok"] or (name == "worker" and pending) for name in ESSENTIAL):
        return "down", report
    return ("up" if all(part["ok"] for part in report.values()) else "degraded"), report
