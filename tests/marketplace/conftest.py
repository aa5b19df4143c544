"""Marketplace fixtures: a staff (superuser) client for Django admin pages, signed in with its
second factor as the admin requires."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.conftest import staff_client_for
from tests.trader.factories import ProfileFactory


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_user():
    """(client, user) of a logged-in admin."""
    user = ProfileFactory().user
    user.is_staff = True
    user.is_superuser = True
    user.save()
    return staff_client_for(user), user
