"""API tokens: shown once, stored hashed, scoped, expiring, revocable, throttled per token."""

from __future__ import annotations

import datetime
import hashlib
import re

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import token_client
from trader.api.models import ApiToken
from trader.api.tokens import token_create

pytestmark = pytest.mark.django_db

PROFILE = "/api/v1/profile/"
KILL_ENGAGE = "/api/v1/kill-switch/engage/"
LISTINGS = "/api/v1/marketplace/listings/"


def test_token_is_stored_as_a_hash_and_shown_once_on_the_page(owner, owner_client):
    page = owner_client.post(
        reverse("trader:api-tokens"), {"name": "Sheet bot", "scopes": ["read"], "days": 30}
    )
    assert page.status_code == 200
    raw = re.search(r'id="new-token">(trk_[\w-]+)<', page.text).group(1)
    token = ApiToken.objects.get(user=owner)
    prefix, secret = raw.split("_", 2)[1:]
    assert token.prefix == prefix and token.name == "Sheet bot" and token.scopes == ["read"]
    assert secret not in str(ApiToken.objects.filter(pk=token.pk).values().get())
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    # Never again: the list shows only the public prefix.
    again = owner_client.get(reverse("trader:api-tokens"))
    assert secret not in again.text and f"trk_{prefix}_…" in again.text
    # The token works, and its last use is shown.
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(PROFILE).json()["email"] == owner.email
    token.refresh_from_db()
    assert token.last_used_at is not None
    assert "never" not in owner_client.get(reverse("trader:api-tokens")).text.split("<tbody>")[1]


def test_token_form_errors_are_field_errors(owner, owner_client):
    token_create(user=owner, name="dup", scopes=["read"], days=30)
    url = reverse("trader:api-tokens")
    page = owner_client.post(url, {"name": "dup", "days": 30})
    assert page.status_code == 200 and "This field is required." in page.text  # no scope
    page = owner_client.post(url, {"name": "dup", "scopes": ["read"], "days": 30})
    assert "You already have a live token of that name." in page.text
    assert 'id="new-token"' not in page.text
    assert ApiToken.objects.filter(user=owner).count() == 1


def test_revoked_token_is_refused_and_only_its_owner_may_revoke_it(owner, stranger_client):
    token, raw = token_create(user=owner, name="phone", scopes=["read"], days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(PROFILE).status_code == 200
    revoke = reverse("trader:api-token-revoke", args=[token.pk])
    assert stranger_client.post(revoke).status_code == 404
    owner_page = APIClient()
    owner_page.force_login(owner)
    assert owner_page.post(revoke).status_code == 302
    answer = client.get(PROFILE)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid, expired or revoked token."}
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_refused():
    from tests.trader.factories import ProfileFactory

    start = datetime.datetime(2026, 6, 1, 10, 0, tzinfo=datetime.UTC)
    with time_machine.travel(start, tick=False):
        user = ProfileFactory().user
        client = token_client(user, "read", days=7)
        assert client.get(PROFILE).status_code == 200
    with time_machine.travel(start + datetime.timedelta(days=7, seconds=1), tick=False):
        assert client.get(PROFILE).status_code == 401


@pytest.mark.parametrize(
    "raw", ["", "trk_", "trk_abcd_", "nonsense", "trk_deadbeef_wrong", "Bearer x", "a b"]
)
def test_malformed_or_unknown_tokens_are_401_not_500(owner, raw):
    token_create(user=owner, name="real", scopes=["read"], days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get(PROFILE).status_code == 401


def test_wrong_secret_of_a_real_prefix_is_refused(owner):
    token, _ = token_create(user=owner, name="real", scopes=["read"], days=30)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer trk_{token.prefix}_{'x' * 43}")
    assert client.get(PROFILE).status_code == 401


def test_no_credentials_is_401_or_403():
    assert APIClient().get(PROFILE).status_code in (401, 403)


def test_scopes_read_trade_marketplace(owner):
    reader = token_client(owner, "read", name="reader")
    assert reader.get("/api/v1/kill-switch/").status_code == 200
    refused = reader.post(KILL_ENGAGE, {}, format="json")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This token lacks the “trade” scope."}
    assert reader.get(LISTINGS).status_code == 403
    trader = token_client(owner, "trade", name="trader")
    assert trader.get(PROFILE).status_code == 403  # trade alone does not read
    shopper = token_client(owner, "marketplace", name="shopper")
    assert shopper.get(LISTINGS).status_code == 200
    assert shopper.get(PROFILE).status_code == 403


def test_session_keeps_working_for_the_browser_with_csrf(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(PROFILE).status_code == 200
    # A session write without the CSRF token is refused; a token needs none.
    assert client.post(KILL_ENGAGE, {}, format="json").status_code == 403


def test_throttled_per_token(owner, settings):
    settings.API_THROTTLE_RATE = "3/min"
    first = token_client(owner, "read", name="first")
    second = token_client(owner, "read", name="second")
    assert [first.get(PROFILE).status_code for _ in range(3)] == [200, 200, 200]
    refused = first.get(PROFILE)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # Another token of the same user has its own budget.
    assert second.get(PROFILE).status_code == 200


def test_token_creation_validates_its_arguments(owner):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as caught:
        token_create(user=owner, name=" ", scopes=["admin"], days=0)
    assert set(caught.value.message_dict) == {"name", "scopes", "days"}
    token, _ = token_create(user=owner, name="ok", scopes=["read"], days=366)
    assert token.expires_at > timezone.now() + datetime.timedelta(days=365)
