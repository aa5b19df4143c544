"""API fixtures: a client carrying a token of chosen scopes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from trader.api.tokens import token_create

ALL_SCOPES = ("read", "trade", "marketplace")


def token_client(user, *scopes: str, name: str = "bot", days: int = 30) -> APIClient:
    _, raw = token_create(user=user, name=name, scopes=scopes or ALL_SCOPES, days=days)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def owner_api(owner) -> APIClient:
    return token_client(owner)


@pytest.fixture
def stranger_api(stranger) -> APIClient:
    return token_client(stranger)
