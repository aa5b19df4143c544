"""Writes for the trader domain."""

from __future__ import annotations

from django.db import transaction

from trader.models import Profile, User


def profile_get_or_create(*, user: User) -> Profile:
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


@transaction.atomic
def profile_update(
    *,
    user: User,
    full_name: str,
    mobile: str,
    state: str,
    city: str,
    pin_code: str,
    pan: str = "",
) -> Profile:
    """Save a trader's profile; inputs are already normalized by ProfileForm."""
    profile, _ = Profile.objects.select_for_update().get_or_create(user=user)
    profile.full_name = full_name.strip()
    profile.mobile = mobile
    profile.state = state
    profile.city = city.strip()
    profile.pin_code = pin_code
    profile.pan = pan
    profile.full_clean()
    profile.save()
    return profile
