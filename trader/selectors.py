"""Reads for the trader domain."""

from __future__ import annotations

from trader.models import Profile, User


def profile_get_for_user(*, user: User) -> Profile | None:
    return Profile.objects.filter(user=user).first()
