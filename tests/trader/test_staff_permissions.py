"""The named staff permissions, decided in one place (trader.permissions): staff status alone
grants nothing, each action needs its own permission, and a misspelt name fails loudly."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.core.exceptions import PermissionDenied

from tests.trader.factories import ProfileFactory
from trader.permissions import (
    OPERATE_GLOBAL_KILL_SWITCH,
    RECORD_PAYMENTS,
    REVIEW_LISTINGS,
    staff_may,
    staff_permission_require,
)

pytestmark = pytest.mark.django_db


def _staff(*codenames: str):
    user = ProfileFactory(user__is_staff=True).user
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return type(user).objects.get(pk=user.pk)  # permissions are cached per instance


def test_staff_without_the_permission_may_not_and_is_told_which_one_is_missing():
    user = _staff()
    assert not staff_may(user=user, permission=RECORD_PAYMENTS)
    with pytest.raises(PermissionDenied, match=r"record payments \(record_payments\)"):
        staff_permission_require(user=user, permission=RECORD_PAYMENTS)


def test_each_permission_grants_only_its_own_action():
    user = _staff("review_listings")
    assert staff_may(user=user, permission=REVIEW_LISTINGS)
    staff_permission_require(user=user, permission=REVIEW_LISTINGS)  # does not raise
    assert not staff_may(user=user, permission=OPERATE_GLOBAL_KILL_SWITCH)


def test_a_permission_held_by_someone_no_longer_staff_or_active_counts_for_nothing():
    user = _staff("record_payments")
    user.is_staff = False
    user.save()
    assert not staff_may(user=type(user).objects.get(pk=user.pk), permission=RECORD_PAYMENTS)
    inactive = _staff("record_payments")
    inactive.is_active = False
    inactive.save()
    assert not staff_may(user=inactive, permission=RECORD_PAYMENTS)
    assert not staff_may(user=AnonymousUser(), permission=RECORD_PAYMENTS)


def test_a_misspelt_permission_fails_loudly_rather_than_denying_quietly():
    with pytest.raises(ValueError, match="Unknown staff permission"):
        staff_may(user=_staff(), permission="trader.record_payment")
