"""Broker accounts: one row per trader × broker login."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Broker(models.TextChoices):
    PAPER = "paper", "Paper (simulated)"
    KITE = "kite", "Zerodha Kite"
    UPSTOX = "upstox", "Upstox"
    ANGELONE = "angelone", "Angel One"
    FYERS = "fyers", "Fyers"
    DHAN = "dhan", "Dhan"


class AccountStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    EXPIRED = "expired", "Login expired"
    ERROR = "error", "Error"
    DISABLED = "disabled", "Disabled"


class BrokerAccount(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="broker_accounts"
    )
    broker = models.CharField(max_length=16, choices=Broker.choices)
    label = models.CharField(max_length=60)
    status = models.CharField(
        max_length=12, choices=AccountStatus.choices, default=AccountStatus.EXPIRED
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["owner_id", "broker", "label"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "label"], name="brokeraccount_unique_label"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_broker_display()})"
