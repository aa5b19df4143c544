"""Broker account services and pages: error classification onto status, expiry sweep,
database constraints, the list page's query count, no plaintext secret in any dump."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from brokers.base import (
    AmbiguousError,
    AuthError,
    InputRejectedError,
    RateLimitedError,
    StaticIPError,
)
from brokers.models import AccountEvent, AccountStatus, BrokerAccount
from brokers.services import (
    ProfileIncompleteError,
    account_record_broker_error,
    broker_account_create,
    broker_accounts_expire_tokens,
)
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def test_auth_error_marks_the_account_expired_with_the_reason():
    account = BrokerAccountFactory()
    status = account_record_broker_error(
        account=account, error=AuthError("Incorrect `api_key` or `access_token`.")
    )
    account.refresh_from_db()
    assert status == account.status == AccountStatus.EXPIRED
    assert "Incorrect `api_key` or `access_token`." in account.last_error
    assert "Log in again" in account.last_error
    assert AccountEvent.objects.filter(account=account, kind="status_changed").exists()


def test_static_ip_error_marks_the_account_in_error_with_what_to_do():
    account = BrokerAccountFactory()
    account_record_broker_error(account=account, error=StaticIPError("IP 198.51.100.7 denied"))
    account.refresh_from_db()
    assert account.status == AccountStatus.ERROR
    assert "198.51.100.7" in account.last_error and "static IP" in account.last_error


@pytest.mark.parametrize(
    "error",
    [InputRejectedError("bad qty"), RateLimitedError("429", retry_after=0.3), AmbiguousError("x")],
)
def test_order_level_errors_leave_the_account_alone(error):
    account = BrokerAccountFactory()
    account_record_broker_error(account=account, error=error)
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED and account.last_error == ""


def test_expiry_sweep_marks_only_sessions_past_their_cutoff():
    past = BrokerAccountFactory(token_expires_at=timezone.now() - timedelta(seconds=1))
    live = BrokerAccountFactory()
    assert broker_accounts_expire_tokens() == 1
    past.refresh_from_db()
    live.refresh_from_db()
    assert past.status == AccountStatus.EXPIRED and "Log in again" in past.last_error
    assert live.status == AccountStatus.CONNECTED
    assert broker_accounts_expire_tokens() == 0


def test_connected_without_a_token_is_refused_by_the_database():
    account = BrokerAccountFactory(status=AccountStatus.EXPIRED, access_token="")
    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerAccount.objects.filter(pk=account.pk).update(status=AccountStatus.CONNECTED)


@pytest.mark.parametrize("ops", [0, 101])
def test_orders_per_second_outside_range_is_refused(ops):
    with pytest.raises(IntegrityError), transaction.atomic():
        BrokerAccountFactory(orders_per_second=ops)


def test_account_needs_a_complete_profile():
    user = ProfileFactory(mobile="").user
    with pytest.raises(ProfileIncompleteError):
        broker_account_create(owner=user, broker="paper", label="Paper")
    assert not BrokerAccount.objects.filter(owner=user).exists()


def test_list_page_query_count_does_not_grow_with_accounts(client):
    owner = ProfileFactory().user
    client.force_login(owner)
    BrokerAccountFactory(owner=owner)
    with CaptureQueriesContext(connection) as few:
        assert client.get(reverse("brokers:list")).status_code == 200
    for _ in range(5):
        BrokerAccountFactory(owner=owner, token_expires_at=timezone.now() - timedelta(hours=1))
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("brokers:list"))
    assert response.status_code == 200
    assert response.content.decode().count("has ended") == 5
    assert len(many) == len(few)
    # session + user + accounts + banner accounts + kill switch state (header, on every page)
    assert len(many) <= 5


def test_list_shows_each_status_in_words(client):
    owner = ProfileFactory().user
    client.force_login(owner)
    BrokerAccountFactory(owner=owner, label="Fine")
    BrokerAccountFactory(
        owner=owner,
        label="Blocked",
        status=AccountStatus.ERROR,
        last_error="Zerodha Kite refused an order from an IP address that is not registered",
    )
    page = client.get(reverse("brokers:list")).content.decode()
    assert "Connected" in page and "Blocked" in page
    assert "refused an order from an IP address that is not registered" in page


def test_no_plaintext_secret_or_token_in_any_dump(owner_client, owner):
    """Connect the paper broker through the web, add real-broker credentials, then dump the
    database two ways and look for every secret in plain text."""
    owner_client.post(reverse("brokers:connect-paper"), follow=True)
    paper = BrokerAccount.objects.get(owner=owner)
    kite = BrokerAccountFactory(
        owner=owner,
        api_key="kiteappkey42",
        api_secret="kite-app-secret-do-not-leak",
        access_token="kite-session-token-do-not-leak",
        refresh_token="kite-refresh-token-do-not-leak",
    )
    secrets_in_play = [
        paper.access_token,
        kite.api_key,
        kite.api_secret,
        kite.access_token,
        kite.refresh_token,
    ]
    assert paper.access_token  # the paper login stored a token

    out = io.StringIO()
    call_command("dumpdata", "brokers", stdout=out)
    dump = out.getvalue()
    with connection.cursor() as cursor:
        rows = []
        for table in ("brokers_brokeraccount", "brokers_paperaccount", "brokers_accountevent"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608
            rows.extend(cursor.fetchall())
    raw = repr(rows)
    for secret in secrets_in_play:
        assert secret not in dump
        assert secret not in raw
    assert "gAAAAA" in dump and "gAAAAA" in raw  # ciphertext is what is stored and dumped
