"""Root fixtures: the three personas and a client logged in as each."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.trader.factories import ProfileFactory


@pytest.fixture(autouse=True)
def _fast_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _isolated_cache():
    """Tests share one Redis: clear our cache keys (throttles, rate limits) between tests."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def owner(db):
    return ProfileFactory().user


@pytest.fixture
def stranger(db):
    return ProfileFactory().user


@pytest.fixture
def owner_client(owner) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def stranger_client(stranger) -> Client:
    client = Client()
    client.force_login(stranger)
    return client
