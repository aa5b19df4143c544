"""Alerts: a user's channels (email, Telegram, web push, outgoing webhook), which engine events
go to which channel, and every delivery with its outcome."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    TELEGRAM = "telegram", "Telegram"
    WEBPUSH = "webpush", "Web push (this app on a phone or desktop)"
    WEBHOOK = "webhook", "Webhook (HMAC-signed POST)"


class AlertEvent(models.TextChoices):
    FILL = "fill", "Fills"
    REJECTION = "rejection", "Rejections"
    FAILOVER = "failover", "Failover to another account"
    NEEDS_ATTENTION = "needs_attention", "Orders needing attention, strategy halted"
    KILL_SWITCH = "kill_switch", "Kill switch"
    STOP_TARGET_EXIT = "stop_target_exit", "Stop-loss, target and square-off exits"
    MISSED_BOUNDARY = "missed_boundary", "Missed or skipped entries and exits"
    READY_CHECK = "ready_check", "Ready-check problems before the open"


class AlertChannel(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_channels"
    )
    kind = models.CharField(max_length=10, choices=ChannelKind.choices)
    label = models.CharField(max_length=60)
    enabled = models.BooleanField(default=True)
    # The address: an email, a Telegram chat id, a webhook URL or a push endpoint.
    target = models.CharField(max_length=1000, blank=True)
    # Encrypted (brokers.crypto): the Telegram bot token, the webhook's signing secret, or the
    # push subscription's keys.
    secret_encrypted = models.TextField(blank=True)
    # A Telegram channel is usable once the chat sent "/start <link_code>" to the bot.
    link_code = models.CharField(max_length=32, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["email", "telegram", "webpush", "webhook"]),
                name="alertchannel_kind_valid",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.label}"

    @property
    def usable(self) -> bool:
        return self.enabled and self.verified_at is not None


class AlertRule(models.Model):
    """Send `event` to `channel` (one row per ticked box of the settings page)."""

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="rules")
    event = models.CharField(max_length=20, choices=AlertEvent.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["channel", "event"], name="alertrule_once"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.channel}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Waiting"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Failed, will retry"
    SENT = "sent", "Delivered"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):
    """One alert to one channel. Made once per channel and engine event (the constraint), so a
    router run twice never alerts twice; a sender claims it with a conditional UPDATE."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_deliveries"
    )
    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=20, choices=AlertEvent.choices, blank=True)
    # The execution.ExecutionEvent it reports (a plain id, like the audit trail); none for a
    # test message.
    source_event_id = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    state = models.CharField(
        max_length=8, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "source_event_id"],
                condition=models.Q(source_event_id__isnull=False),
                name="alertdelivery_once_per_event",
            ),
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "sending", "retrying", "sent", "failed"]),
                name="alertdelivery_state_valid",
            ),
        ]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.subject} → {self.channel} ({self.state})"
