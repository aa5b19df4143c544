"""The connect flow through HTTP: profile gate, paper one-click, signed single-use state,
test connection, disconnect, the expired-session banner."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from brokers.models import AccountEvent, AccountStatus, Broker, BrokerAccount, LoginState
from tests.brokers.factories import BrokerAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def _start_paper(client: Client) -> str:
    """Press the one-click button; returns the paper login URL (our callback, with a request
    token and the signed state)."""
    response = client.post(reverse("brokers:connect-paper"))
    assert response.status_code == 302
    assert response.url.startswith("http://testserver/brokers/callback/paper/?")
    return response.url


def test_incomplete_profile_is_sent_to_the_profile_page(client):
    user = ProfileFactory(city="").user
    client.force_login(user)
    response = client.post(reverse("brokers:connect-paper"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("trader:profile")
    assert "Complete your profile" in response.content.decode()
    assert not BrokerAccount.objects.filter(owner=user).exists()
    response = client.get(reverse("brokers:connect"))
    assert response.status_code == 302 and response.url == reverse("trader:profile")


def test_paper_connects_in_one_click_and_shows_funds(owner_client, owner):
    response = owner_client.post(reverse("brokers:connect-paper"), follow=True)
    page = response.content.decode()
    assert "Paper is connected." in page
    account = BrokerAccount.objects.get(owner=owner)
    assert account.broker == Broker.PAPER and account.status == AccountStatus.CONNECTED
    assert account.access_token and account.token_expires_at > timezone.now()
    response = owner_client.post(reverse("brokers:test", args=[account.pk]), follow=True)
    assert "Connection works: ₹10,00,000.00 available, ₹0.00 in use." in (response.content.decode())


def test_reused_state_is_refused_and_stores_nothing(owner_client, owner):
    login_url = _start_paper(owner_client)
    first = owner_client.get(login_url, follow=True)
    assert "Paper is connected." in first.content.decode()
    account = BrokerAccount.objects.get(owner=owner)
    token_before = account.access_token
    second = owner_client.get(login_url, follow=True)
    assert "already used or has expired" in second.content.decode()
    account.refresh_from_db()
    assert account.access_token == token_before
    assert AccountEvent.objects.filter(account=account, kind="connected").count() == 1


@pytest.mark.parametrize("tamper", ["signature", "nonce", "missing"])
def test_tampered_state_is_refused_and_stores_nothing(owner_client, owner, tamper):
    login_url = _start_paper(owner_client)
    params = {k: v[0] for k, v in parse_qs(urlsplit(login_url).query).items()}
    if tamper == "signature":
        params["state"] = params["state"][:-2] + ("AA" if params["state"][-2:] != "AA" else "BB")
    elif tamper == "nonce":
        nonce, _, rest = params["state"].partition(":")
        params["state"] = f"{nonce[:-1]}{'x' if nonce[-1] != 'x' else 'y'}:{rest}"
    else:
        del params["state"]
        # the session copy is also gone, as for an attacker's browser
        session = owner_client.session
        session.pop("brokers:login-state:paper", None)
        session.save()
    response = owner_client.get(
        reverse("brokers:callback", args=["paper"]) + "?" + urlencode(params), follow=True
    )
    assert "not issued by us or was altered" in response.content.decode()
    account = BrokerAccount.objects.get(owner=owner)
    assert account.access_token == "" and account.status == AccountStatus.EXPIRED
    assert LoginState.objects.get(account=account).used_at is None


def test_state_of_another_user_is_refused(owner_client, stranger_client, owner):
    login_url = _start_paper(owner_client)
    response = stranger_client.get(login_url, follow=True)
    assert "already used or has expired" in response.content.decode()
    assert BrokerAccount.objects.get(owner=owner).access_token == ""


def test_expired_state_is_refused(owner_client, owner, settings):
    login_url = _start_paper(owner_client)
    LoginState.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = owner_client.get(login_url, follow=True)
    assert "already used or has expired" in response.content.decode()
    assert BrokerAccount.objects.get(owner=owner).status == AccountStatus.EXPIRED


def test_disconnect_forgets_the_token(owner_client, owner):
    owner_client.get(_start_paper(owner_client))
    account = BrokerAccount.objects.get(owner=owner)
    response = owner_client.post(reverse("brokers:disconnect", args=[account.pk]), follow=True)
    assert "disconnected" in response.content.decode()
    account.refresh_from_db()
    assert account.status == AccountStatus.DISABLED and account.access_token == ""
    assert account.token_expires_at is None


def test_stranger_cannot_touch_an_account(stranger_client):
    account = BrokerAccountFactory()
    for name in ("detail", "login", "test", "disconnect"):
        url = reverse(f"brokers:{name}", args=[account.pk])
        response = stranger_client.post(url) if name != "detail" else stranger_client.get(url)
        assert response.status_code == 404, name
    account.refresh_from_db()
    assert account.status == AccountStatus.CONNECTED


def test_expired_session_banner_on_every_page_with_one_click_relogin(client):
    account = BrokerAccountFactory(
        token_expires_at=timezone.now() - timedelta(minutes=1), label="Morning Kite"
    )
    client.force_login(account.owner)
    for url in (reverse("trader:dashboard"), reverse("brokers:list")):
        page = client.get(url).content.decode()
        assert "Morning Kite" in page and "has ended" in page
        assert reverse("brokers:login", args=[account.pk]) in page
    other = BrokerAccountFactory()
    client.force_login(other.owner)
    assert "has ended" not in client.get(reverse("trader:dashboard")).content.decode()


def test_settings_form_rerenders_with_errors_and_saves_nothing(owner_client, owner):
    account = BrokerAccountFactory(owner=owner, label="Main")
    BrokerAccountFactory(owner=owner, label="Other")
    response = owner_client.post(
        reverse("brokers:detail", args=[account.pk]),
        {
            "label": "Other",
            "static_ip_primary": "",
            "static_ip_secondary": "203.0.113.9",
            "orders_per_second": 10,
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "already have an account with this label" in page
    assert "Enter the primary static IP first" in page
    account.refresh_from_db()
    assert account.label == "Main" and account.static_ip_secondary is None


def test_new_app_credentials_end_the_session(owner_client, owner):
    account = BrokerAccountFactory(owner=owner, label="Main")
    response = owner_client.post(
        reverse("brokers:detail", args=[account.pk]),
        {
            "label": "Main",
            "api_key": "newkey",
            "api_secret": "newsecret",
            "static_ip_primary": "203.0.113.9",
            "orders_per_second": 8,
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.api_key == "newkey" and account.api_secret == "newsecret"
    assert account.status == AccountStatus.EXPIRED and account.access_token == ""
    assert account.static_ip_primary == "203.0.113.9" and account.orders_per_second == 8
