"""Encryption at rest and key rotation."""

from __future__ import annotations

import io

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from brokers.crypto import DecryptionError, decrypt, encrypt, needs_rotation
from brokers.models import BrokerAccount
from tests.brokers.factories import BrokerAccountFactory

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


def _raw(account: BrokerAccount, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM brokers_brokeraccount WHERE id = %s", [account.pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_values_round_trip_and_empty_stays_empty(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    token = encrypt("s3cret")
    assert token != "s3cret" and token.startswith("gAAAAA")
    assert decrypt(token) == "s3cret"
    assert encrypt("") == "" and decrypt("") == ""


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_new_key_so_the_old_one_can_go(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    account = BrokerAccountFactory(api_secret="app-secret", access_token="day-token")
    before = _raw(account, "api_secret")
    assert "app-secret" not in before

    settings.FIELD_ENCRYPTION_KEYS = [NEW, OLD]
    assert needs_rotation(before)
    out = io.StringIO()
    call_command("rotate_broker_secrets", stdout=out)
    assert "1 of 1 accounts" in out.getvalue()
    after = _raw(account, "api_secret")
    assert after != before and not needs_rotation(after)

    settings.FIELD_ENCRYPTION_KEYS = [NEW]  # the old key is gone
    fresh = BrokerAccount.objects.get(pk=account.pk)
    assert fresh.api_secret == "app-secret" and fresh.access_token == "day-token"

    out = io.StringIO()
    call_command("rotate_broker_secrets", stdout=out)  # nothing left to do
    assert "0 of 1 accounts" in out.getvalue()


@pytest.mark.django_db
def test_removing_a_key_before_rotation_fails_loudly_without_leaking(settings):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    account = BrokerAccountFactory(api_secret="app-secret")
    settings.FIELD_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(DecryptionError) as excinfo:
        BrokerAccount.objects.get(pk=account.pk)
    assert "app-secret" not in str(excinfo.value)


@pytest.mark.django_db
def test_dumpdata_then_loaddata_round_trips_the_plaintext(settings, tmp_path):
    settings.FIELD_ENCRYPTION_KEYS = [OLD]
    account = BrokerAccountFactory(api_secret="app-secret")
    out = io.StringIO()
    call_command("dumpdata", "brokers.brokeraccount", stdout=out)
    assert "app-secret" not in out.getvalue()
    fixture = tmp_path / "accounts.json"
    fixture.write_text(out.getvalue())
    BrokerAccount.objects.filter(pk=account.pk).update(api_secret="")
    call_command("loaddata", str(fixture), verbosity=0)
    assert BrokerAccount.objects.get(pk=account.pk).api_secret == "app-secret"
