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


def totp_code(secret: str) -> str:
    """The current code of an authenticator app holding `secret`."""
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    return format_hotp_value(hotp_value(secret, next(yield_hotp_counters_from_time())))


def staff_enrol_totp(user) -> str:
    """Enrol an authenticator app for `user`; returns its secret."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def staff_client_for(user) -> Client:
    """A client signed in as staff `user` who enrolled TOTP and gave a code this session, as
    the admin requires (trader.staff_auth)."""
    from trader.staff_auth import SECOND_FACTOR_SESSION_KEY

    staff_enrol_totp(user)
    client = Client()
    client.force_login(user)
    session = client.session
    session[SECOND_FACTOR_SESSION_KEY] = str(user.pk)
    session.save()
    return client


@pytest.fixture
def admin_client(admin_user) -> Client:
    """pytest-django's admin_client, with the second factor the admin requires."""
    return staff_client_for(admin_user)


@pytest.fixture
def calendar_loaded_today(db):
    """For tests whose subject trades on today's date but is not the calendar (broker
    adapters, paper fills): the admin has loaded the holiday list of today's year, as a running
    platform would have. Tests of the calendar itself never use this (an unloaded year must not
    trade), and nothing else here depends on which day today is."""
    from django.utils import timezone

    from execution.markettime import IST
    from execution.models import HolidayCalendarYear

    year = timezone.now().astimezone(IST).year
    for exchange in ("NSE", "BSE"):
        for loaded in (year, year + 1):  # late December looks into next year
            HolidayCalendarYear.objects.get_or_create(
                exchange=exchange,
                year=loaded,
                defaults={"source": "TEST: loaded so that tests can trade on today's date"},
            )
