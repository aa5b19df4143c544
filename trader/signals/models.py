"""Signal webhooks: a strategy whose entries and exits are triggered by a POST (TradingView
alerts and similar), and every signal received with what came of it."""

from __future__ import annotations

from django.db import models


class SignalWebhook(models.Model):
    """Makes its strategy a signal strategy while enabled: the planner no longer schedules its
    entry and exit times; a signal to the webhook's URL does. Only the SHA-256 of the secret is
    kept (it is shown once, when made or rotated)."""

    strategy = models.OneToOneField(
        "trader.Strategy", on_delete=models.CASCADE, related_name="signal_webhook"
    )
    # The public part of the URL: finds the row, proves nothing.
    public_id = models.CharField(max_length=32, unique=True)
    secret_hash = models.CharField(max_length=64)
    # Refuse signals without a valid HMAC header (for senders that can sign).
    require_signature = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField()
    auth_failures = models.PositiveIntegerField(default=0)
    last_auth_failure_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"webhook of strategy {self.strategy_id}"


class SignalAction(models.TextChoices):
    ENTRY = "entry", "Entry"
    EXIT = "exit", "Exit"


class SignalOutcome(models.TextChoices):
    ACCEPTED = "accepted", "Accepted: orders written"
    NOT_SENT = "not_sent", "Accepted, no order sent"
    REFUSED = "refused", "Refused"


class Signal(models.Model):
    """One authenticated signal. A signal id is answered once: sent again, it gets the first
    answer and trades nothing (the unique constraint settles two at once)."""

    webhook = models.ForeignKey(SignalWebhook, on_delete=models.CASCADE, related_name="signals")
    signal_id = models.CharField(max_length=64)
    action = models.CharField(max_length=5, choices=SignalAction.choices)
    sent_at = models.DateTimeField(help_text="The sender's timestamp.")
    received_at = models.DateTimeField()
    signed = models.BooleanField(default=False, help_text="Came with a valid HMAC header.")
    outcome = models.CharField(max_length=8, choices=SignalOutcome.choices)
    reason = models.TextField(blank=True)
    run_ids = models.JSONField(default=list, blank=True)
    orders = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["webhook", "signal_id"], name="signal_id_once"),
            models.CheckConstraint(
                condition=models.Q(outcome__in=["accepted", "not_sent", "refused"]),
                name="signal_outcome_valid",
            ),
        ]
        indexes = [models.Index(fields=["webhook", "-received_at"])]

    def __str__(self) -> str:
        return f"{self.action} {self.signal_id} ({self.outcome})"
