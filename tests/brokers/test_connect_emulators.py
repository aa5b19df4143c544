"""The full OAuth round trip through the web UI against the Kite and Upstox emulators."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from brokers.models import AccountStatus, BrokerAccount
from tests.brokers.contract.venues import EmulatorVenue

pytestmark = [pytest.mark.django_db, pytest.mark.network]


@pytest.fixture(params=["kite", "upstox"])
def emulator(request, settings):
    venue = EmulatorVenue(request.param, settings)
    # The venue's own account is not used here: the trader creates one through the form.
    venue.account.delete()
    yield venue
    venue.stop()


def test_oauth_round_trip_through_the_web(emulator, owner_client, owner):
    broker = emulator.broker
    response = owner_client.post(
        reverse("brokers:connect"),
        {
            "broker": broker,
            "label": "Main",
            "api_key": f"{broker}key",
            "api_secret": emulator.secret,
            "broker_user_id": "AB1234",
            "orders_per_second": 10,
        },
    )
    assert response.status_code == 302
    assert response.url.startswith(emulator.emulator.login_url.split("?")[0])
    callback = emulator.emulator.approve_login(response.url)
    assert urlsplit(callback).path == reverse("brokers:callback", args=[broker])

    page = owner_client.get(callback, follow=True).content.decode()
    assert "Main is connected." in page
    account = BrokerAccount.objects.get(owner=owner)
    assert account.status == AccountStatus.CONNECTED and account.access_token
    token = account.access_token

    # The same callback again (a reused state and code) is refused and changes nothing.
    page = owner_client.get(callback, follow=True).content.decode()
    assert "already used or has expired" in page
    account.refresh_from_db()
    assert account.access_token == token

    page = owner_client.post(reverse("brokers:test", args=[account.pk]), follow=True)
    assert "Connection works" in page.content.decode()


def test_wrong_secret_is_refused_in_words(emulator, owner_client, owner):
    broker = emulator.broker
    response = owner_client.post(
        reverse("brokers:connect"),
        {
            "broker": broker,
            "label": "Main",
            "api_key": f"{broker}key",
            "api_secret": "not-the-secret",
            "broker_user_id": "AB1234",
            "orders_per_second": 10,
        },
    )
    callback = emulator.emulator.approve_login(response.url)
    page = owner_client.get(callback, follow=True).content.decode()
    assert "refused the login" in page
    account = BrokerAccount.objects.get(owner=owner)
    assert account.status == AccountStatus.ERROR and account.access_token == ""
