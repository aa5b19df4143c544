"""Broker account services at their edges: labels of further paper accounts, new app
credentials ending the session, a connection test that fails in words, daily token expiry that
never overwrites a fresh login, and disconnecting. Each change leaves its audit event."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.models import AccountEvent, AccountStatus, BrokerAccount, PaperAccount
from brokers.services import (
    broker_account_disconnect,
    broker_account_test,
    broker_account_update,
    broker_accounts_expire_tokens,
    paper_account_log_in,
    paper_label_for,
)
from tests.brokers.factories import BrokerAccountFactory, PaperBookFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def test_further_paper_accounts_get_the_next_free_label():
    owner = ProfileFactory().user
    assert paper_label_for(owner=owner) == "Paper"
    BrokerAccountFactory(owner=owner, label="Paper")
    BrokerAccountFactory(owner=owner, label="Paper 2")
    assert paper_label_for(owner=owner) == "Paper 3"


def _settings(account, **changes):
    values = {
        "label": " Main ",
        "broker_user_id": " AB1234 ",
        "static_ip_primary": "203.0.113.10",
        "static_ip_secondary": "",
        "algo_id": " ALGO9 ",
        "orders_per_second": 8,
    }
    values.update(changes)
    return broker_account_update(account=account, actor=account.owner, **values)


def test_new_app_credentials_end_the_session_and_blank_ones_keep_the_stored():
    account = BrokerAccountFactory(broker="kite")
    assert account.status == AccountStatus.CONNECTED
    kept = _settings(account)
    assert (kept.label, kept.algo_id, kept.orders_per_second) == ("Main", "ALGO9", 8)
    assert kept.static_ip_secondary is None
    assert kept.status == AccountStatus.CONNECTED and kept.access_token
    changed = _settings(kept, api_key="newkey", api_secret=" ")
    assert changed.status == AccountStatus.EXPIRED and changed.access_token == ""
    assert "log in to the broker again" in changed.last_error
    stored = BrokerAccount.objects.get(pk=account.pk)
    assert stored.api_key == "newkey" and stored.api_secret == account.api_secret


def test_a_connection_test_says_in_words_what_is_wrong():
    not_logged_in = BrokerAccountFactory(
        broker="kite", access_token="", status=AccountStatus.EXPIRED, token_expires_at=None
    )
    check = broker_account_test(account=not_logged_in, actor=not_logged_in.owner)
    assert not check.ok and "not logged in" in check.message

    book = PaperBookFactory()
    account = paper_account_log_in(account=book.account, actor=book.account.owner)
    good = broker_account_test(account=account, actor=account.owner)
    assert good.ok and good.funds.available == book.cash and "available" in good.message
    # The paper broker's session ends (as brokers end theirs daily): the test says so.
    PaperAccount.objects.filter(pk=book.pk).update(
        token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    ended = broker_account_test(account=account, actor=account.owner)
    assert not ended.ok and ended.message.startswith("Paper")
    assert AccountEvent.objects.filter(account=account, kind="tested").count() == 2


def test_expired_tokens_are_marked_once_and_a_fresh_login_is_left_alone():
    now = timezone.now()
    stale = BrokerAccountFactory(broker="kite", token_expires_at=now - timedelta(minutes=1))
    fresh = BrokerAccountFactory(broker="kite", token_expires_at=now + timedelta(hours=8))
    assert broker_accounts_expire_tokens(now=now) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == AccountStatus.EXPIRED and "Log in again" in stale.last_error
    assert fresh.status == AccountStatus.CONNECTED
    assert broker_accounts_expire_tokens(now=now) == 0  # once
    assert AccountEvent.objects.filter(account=stale, kind="status_changed").count() == 1


def test_disconnecting_forgets_the_session_but_keeps_the_app_credentials():
    account = BrokerAccountFactory(broker="kite")
    done = broker_account_disconnect(account=account, actor=account.owner)
    assert done.status == AccountStatus.DISABLED and done.access_token == ""
    assert BrokerAccount.objects.get(pk=account.pk).api_key == account.api_key
    assert AccountEvent.objects.filter(account=account, kind="disconnected").exists()
