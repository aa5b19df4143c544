"""Issuing, checking and revoking API tokens.

A token reads `trk_<prefix>_<secret>`. The prefix (public, unique) finds the row; the secret is
compared by its SHA-256 in constant time. The whole token is shown once, when it is created.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from trader.api.models import ApiToken, Scope

PREFIX = "trk"
MAX_DAYS = 366
MAX_LIVE_TOKENS = 20
# last_used_at is written at most this often per token (not one write per request).
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(*, user: Any, name: str, scopes: Sequence[str], days: int) -> tuple[ApiToken, str]:
    """A new token and its plain text (never stored; the caller shows it once)."""
    errors: dict[str, list[str]] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["Give the token a name (which program uses it)."]
    elif len(name) > 60:
        errors["name"] = ["At most 60 characters."]
    elif ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).exists():
        errors["name"] = ["You already have a live token of that name."]
    unknown = set(scopes) - set(Scope.values)
    if not scopes or unknown:
        errors["scopes"] = ["Choose one or more of: " + ", ".join(Scope.values) + "."]
    if not 1 <= days <= MAX_DAYS:
        errors["days"] = [f"Between 1 and {MAX_DAYS} days."]
    live = ApiToken.objects.filter(
        user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()
    )
    if live.count() >= MAX_LIVE_TOKENS:
        errors["__all__"] = [f"At most {MAX_LIVE_TOKENS} live tokens: revoke one first."]
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(4)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        secret_hash=_hash(secret),
        scopes=sorted(set(scopes)),
        expires_at=timezone.now() + datetime.timedelta(days=days),
    )
    return token, f"{PREFIX}_{prefix}_{secret}"


def token_check(raw: str) -> ApiToken | None:
    """The live token `raw` stands for, or None (unknown, wrong secret, expired, revoked)."""
    parts = (raw or "").split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash(parts[2])):
        return None
    now = timezone.now()
    if not token.is_live(now) or not token.user.is_active:
        return None
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def token_revoke(*, user: Any, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens (ApiToken.DoesNotExist for anyone else's)."""
    token = ApiToken.objects.get(pk=token_id, user=user)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token


def tokens_for_user(*, user: Any) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("revoked_at", "-created_at", "-id")
