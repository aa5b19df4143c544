"""Subscriptions, their deployments onto the subscriber's own broker accounts, and ratings."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    # The paid period ended unpaid: no new entries, open positions still exit.
    LAPSED = "lapsed", "Lapsed (unpaid)"
    CANCELLED = "cancelled", "Cancelled"


class Subscription(models.Model):
    subscriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    listing = models.ForeignKey(
        "marketplace.Listing", on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey("marketplace.Plan", on_delete=models.PROTECT, related_name="+")
    # Terms copied from the plan at subscription time.
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2)
    profit_share_percent = models.DecimalField(max_digits=5, decimal_places=2)
    # The listing version this subscriber runs; moved when a newer version is approved.
    version = models.ForeignKey(
        "marketplace.ListingVersion", on_delete=models.PROTECT, related_name="subscriptions"
    )
    status = models.CharField(
        max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    # Last IST day covered by the fee; null on plans without a fee.
    paid_until = models.DateField(null=True, blank=True)
    # State of the high-water mark after the last closed month.
    cumulative_pnl = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    high_water_mark = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal(0))
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values),
                name="subscription_status_valid",
            ),
            # One live subscription per trader and listing; cancelled ones stay as history.
            models.UniqueConstraint(
                fields=["subscriber", "listing"],
                condition=~Q(status=SubscriptionStatus.CANCELLED),
                name="subscription_one_open_per_listing",
            ),
            models.CheckConstraint(
                condition=Q(monthly_fee__gte=0, profit_share_percent__gte=0)
                & Q(profit_share_percent__lte=50),
                name="subscription_terms_valid",
            ),
        ]
        indexes = [models.Index(fields=["listing", "status"], name="subscription_listing_st")]

    def __str__(self) -> str:
        return f"{self.subscriber} → {self.listing}"


class Deployment(models.Model):
    """A subscription running on one of the subscriber's broker accounts.

    The execution engine reads these as a run source: every leg's lots times the multiplier,
    within the subscriber's own risk limits and the deployment's daily loss limit.
    """

    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, related_name="deployments"
    )
    broker_account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="marketplace_deployments"
    )
    multiplier = models.PositiveIntegerField()
    max_daily_loss = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Stop this deployment for the day once its loss reaches this many rupees.",
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subscription_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "broker_account"], name="deployment_unique_account"
            ),
            models.CheckConstraint(condition=Q(multiplier__gte=1), name="deployment_mult_gte_1"),
            models.CheckConstraint(
                condition=Q(max_daily_loss__isnull=True) | Q(max_daily_loss__gt=0),
                name="deployment_max_loss_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription} on {self.broker_account} x{self.multiplier}"


class Rating(models.Model):
    """A subscriber's review; one per subscription, so only subscribers can write one."""

    subscription = models.OneToOneField(
        Subscription, on_delete=models.CASCADE, related_name="rating"
    )
    listing = models.ForeignKey(
        "marketplace.Listing", on_delete=models.CASCADE, related_name="ratings"
    )
    stars = models.PositiveSmallIntegerField()
    review = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(stars__gte=1, stars__lte=5), name="rating_stars_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stars}★ {self.listing}"
