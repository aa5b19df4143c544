"""Broker accounts: one row per trader and broker login, with its credentials encrypted at rest."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from brokers.crypto import EncryptedTextField


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

    # App credentials the trader registered with the broker (where the broker needs them).
    api_key = EncryptedTextField(blank=True)
    api_secret = EncryptedTextField(blank=True)
    # The daily session; tokens die at each broker's cut-off (06:00 IST at Kite, 03:30 at Upstox).
    access_token = EncryptedTextField(blank=True)
    refresh_token = EncryptedTextField(blank=True)
    token_issued_at = models.DateTimeField(null=True, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    broker_user_id = models.CharField(
        "broker client ID",
        max_length=40,
        blank=True,
        help_text="Your user/client ID at the broker.",
    )
    # SEBI (from 1-Apr-2026): order writes only from the IPs registered with the broker.
    static_ip_primary = models.GenericIPAddressField("registered static IP", null=True, blank=True)
    static_ip_secondary = models.GenericIPAddressField("secondary static IP", null=True, blank=True)
    algo_id = models.CharField(
        "exchange algo ID", max_length=40, blank=True, help_text="Only for registered algos."
    )
    orders_per_second = models.PositiveSmallIntegerField(
        default=10,
        help_text="Without exchange registration SEBI allows at most 10 orders a second.",
    )
    last_checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner_id", "broker", "label"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "label"], name="brokeraccount_unique_label"),
            models.CheckConstraint(
                condition=Q(orders_per_second__gte=1) & Q(orders_per_second__lte=100),
                name="brokeraccount_ops_range",
            ),
            # A connected account always has a token and knows when it dies.
            models.CheckConstraint(
                condition=~Q(status="connected")
                | (~Q(access_token="") & Q(token_expires_at__isnull=False)),
                name="brokeraccount_connected_has_token",
            ),
            models.CheckConstraint(
                condition=Q(static_ip_secondary__isnull=True)
                | (
                    Q(static_ip_primary__isnull=False)
                    & ~Q(static_ip_secondary=models.F("static_ip_primary"))
                ),
                name="brokeraccount_secondary_ip_needs_distinct_primary",
            ),
        ]
        indexes = [models.Index(fields=["owner", "status"], name="brokeracct_owner_status")]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_broker_display()})"

    @property
    def is_paper(self) -> bool:
        return self.broker == Broker.PAPER


class LoginState(models.Model):
    """The server-side half of an OAuth `state`: single use, expiring, bound to one account."""

    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"], name="loginstate_expires")]

    def __str__(self) -> str:
        return f"login state for account {self.account_id}"


class AccountEvent(models.Model):
    """Audit trail of what happened to a broker account, written with each change."""

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        LOGIN_STARTED = "login_started", "Login started"
        CONNECTED = "connected", "Connected"
        LOGIN_FAILED = "login_failed", "Login failed"
        STATUS_CHANGED = "status_changed", "Status changed"
        TESTED = "tested", "Connection tested"
        SETTINGS_CHANGED = "settings_changed", "Settings changed"
        DISCONNECTED = "disconnected", "Disconnected"

    account = models.ForeignKey(BrokerAccount, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"], name="accountevent_account_time")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.account_id})"


# The paper broker's own book lives in brokers/paper/models.py; importing it here registers it.
from brokers.paper.models import PaperAccount, PaperOrder, PaperPosition  # noqa: E402

__all__ = [
    "AccountEvent",
    "AccountStatus",
    "Broker",
    "BrokerAccount",
    "LoginState",
    "PaperAccount",
    "PaperOrder",
    "PaperPosition",
]
