"""Liveness of the three things the platform needs (database, Redis, a Celery worker), and
whether it can trade: a holiday calendar that runs out makes the platform degraded, not down."""

from __future__ import annotations

import time
from typing import Any

import redis
from django.conf import settings
from django.db import connection


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


def check_worker() -> dict[str, Any]:
    from trader.celery import app

    replies = app.control.ping(timeout=1.0)
    if not replies:
        raise RuntimeError("no Celery worker answered within 1 s")
    return {"workers": sorted(name for reply in replies for name in reply)}


def check_calendar() -> dict[str, Any]:
    """Raises when an exchange's holiday calendar is not loaded for today or runs out within
    30 days (`execution.calendar.coverage_warnings`)."""
    from django.utils import timezone

    from execution.calendar import IST, coverage_warnings

    warnings = coverage_warnings(timezone.now().astimezone(IST).date())
    if warnings:
        raise RuntimeError(" ".join(warnings))
    return {}


# Without these the platform is down; the rest only degrade it.
ESSENTIAL = ("database", "redis", "worker")


def health_report() -> tuple[str, dict[str, Any]]:
    """("ok" | "degraded" | "down", one entry per check)."""
    report = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "worker": _timed(check_worker),
    }
    if report["database"]["ok"]:
        report["calendar"] = _timed(check_calendar)
    if not all(report[name]["ok"] for name in ESSENTIAL):
        return "down", report
    return ("ok" if all(part["ok"] for part in report.values()) else "degraded"), report
