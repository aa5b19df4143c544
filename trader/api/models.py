"""API tokens: per user, several, named, scoped, expiring; only a hash of the secret is kept."""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Scope(models.TextChoices):
    READ = "read", "Read (profile, accounts, strategies, runs, positions, kill switch state)"
    TRADE = (
        "trade",
        "Trade (strategies: create, edit, activate, pause, archive, test on paper; exit a run; "
        "the kill switch; with marketplace: run subscriptions on your accounts)",
    )
    MARKETPLACE = "marketplace", "Marketplace (browse listings, subscribe, cancel)"


class ApiToken(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=60)
    # The public part of the token, for lookup; the secret part is kept only as its SHA-256.
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=models.Q(revoked_at__isnull=True),
                name="apitoken_live_name_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_live(self, now: datetime.datetime | None = None) -> bool:
        return self.revoked_at is None and self.expires_at > (now or timezone.now())

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes
