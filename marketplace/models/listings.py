"""Listings, their frozen versions, pricing plans, the review thread and the audit trail."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from marketplace.workflow import ListingState
from trader.india import rupees

# SEBI Research Analyst registration numbers are "INH" followed by nine digits.
SEBI_RA_REGEX = r"^INH[0-9]{9}$"
# A reference issued by SEBI's Past Risk and Return Verification Agency (format not published
# in detail: letters, digits and the usual separators).
PARRVA_REGEX = r"^[A-Za-z0-9/.-]{4,40}$"


class RiskLevel(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class Visibility(models.TextChoices):
    # Subscribe only is a black box in SEBI's sense: its provider must be a registered RA.
    SUBSCRIBE_ONLY = "subscribe_only", "Subscribe only (logic hidden)"
    COPY_ALLOWED = "copy_allowed", "Copy allowed (subscribers may duplicate the strategy)"


class PlanKind(models.TextChoices):
    FREE = "free", "Free"
    FEE = "fee", "Monthly fee"
    SHARE = "share", "Profit share"
    FEE_AND_SHARE = "fee_share", "Monthly fee + profit share"


class VersionState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted for review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    SUPERSEDED = "superseded", "Superseded by a newer version"


class Listing(models.Model):
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="listings"
    )
    strategy = models.ForeignKey(
        "trader.Strategy", on_delete=models.PROTECT, related_name="listings"
    )
    title = models.CharField(max_length=100)
    description = models.TextField()
    tags = models.CharField(max_length=200, blank=True, help_text="Comma-separated.")
    underlying = models.ForeignKey(
        "execution.Underlying", on_delete=models.PROTECT, related_name="listings"
    )
    risk_level = models.CharField(max_length=8, choices=RiskLevel.choices)
    capital_required = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="Rupees needed at a multiplier of 1."
    )
    min_multiplier = models.PositiveSmallIntegerField(default=1)
    visibility = models.CharField(max_length=16, choices=Visibility.choices)
    sebi_ra_number = models.CharField(
        "SEBI Research Analyst registration number", max_length=12, blank=True
    )
    # SEBI: past risk and return figures shown to investors are verified by PaRRVA (from
    # 4-May-2026); a registered RA's black box records the reference when it has one.
    parrva_reference = models.CharField(
        "PaRRVA verification reference",
        max_length=40,
        blank=True,
        help_text="The reference under which PaRRVA verified this strategy's past risk and return.",
    )
    state = models.CharField(
        max_length=20, choices=ListingState.choices, default=ListingState.DRAFT
    )
    featured = models.BooleanField(default=False, help_text="Shown first by admins' choice.")
    # The approved version subscribers run; null until the first approval.
    live_version = models.ForeignKey(
        "ListingVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Verified statistics, recomputed from executions by listing_stats_refresh so that browse
    # pages can sort and filter on them with one query.
    verified_return_percent = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    max_drawdown_percent = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    executions_count = models.PositiveIntegerField(default=0)
    track_record_is_live = models.BooleanField(default=False)
    recommended_score = models.DecimalField(max_digits=6, decimal_places=2, default=Decimal(0))
    stats_updated_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-recommended_score"], name="listing_state_score"),
            models.Index(fields=["creator", "state"], name="listing_creator_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=ListingState.values), name="listing_state_valid"
            ),
            models.CheckConstraint(
                condition=Q(visibility__in=Visibility.values), name="listing_visibility_valid"
            ),
            models.CheckConstraint(
                condition=Q(risk_level__in=RiskLevel.values), name="listing_risk_level_valid"
            ),
            models.CheckConstraint(
                condition=Q(capital_required__gt=0), name="listing_capital_positive"
            ),
            models.CheckConstraint(condition=Q(min_multiplier__gte=1), name="listing_min_mult"),
            models.CheckConstraint(
                condition=Q(sebi_ra_number="") | Q(sebi_ra_number__regex=SEBI_RA_REGEX),
                name="listing_sebi_ra_format",
            ),
            # A black box needs its provider's RA registration (SEBI retail algo framework).
            models.CheckConstraint(
                condition=~Q(visibility=Visibility.SUBSCRIBE_ONLY) | ~Q(sebi_ra_number=""),
                name="listing_subscribe_only_needs_ra",
            ),
            models.CheckConstraint(condition=~Q(title=""), name="listing_title_not_empty"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_subscribe_only(self) -> bool:
        return self.visibility == Visibility.SUBSCRIBE_ONLY

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]


class Plan(models.Model):
    """A way to pay for a listing. Subscriptions copy the terms, so later edits never reprice
    an existing subscriber."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="plans")
    kind = models.CharField(max_length=10, choices=PlanKind.choices)
    monthly_fee = models.DecimalField(max_digits=10, decimal_places=2, default=Decimal(0))
    profit_share_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(0))
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing_id", "monthly_fee", "profit_share_percent", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PlanKind.values), name="plan_kind_valid"),
            models.CheckConstraint(condition=Q(monthly_fee__gte=0), name="plan_fee_not_negative"),
            models.CheckConstraint(
                condition=Q(profit_share_percent__gte=0, profit_share_percent__lte=50),
                name="plan_share_0_to_50",
            ),
            # Each kind uses exactly the terms its name says.
            models.CheckConstraint(
                condition=(
                    Q(kind=PlanKind.FREE, monthly_fee=0, profit_share_percent=0)
                    | Q(kind=PlanKind.FEE, monthly_fee__gt=0, profit_share_percent=0)
                    | Q(kind=PlanKind.SHARE, monthly_fee=0, profit_share_percent__gt=0)
                    | Q(kind=PlanKind.FEE_AND_SHARE, monthly_fee__gt=0, profit_share_percent__gt=0)
                ),
                name="plan_terms_match_kind",
            ),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def description(self) -> str:
        parts = []
        if self.monthly_fee:
            parts.append(f"{rupees(self.monthly_fee)} a month")
        if self.profit_share_percent:
            parts.append(
                f"{self.profit_share_percent.normalize():f} % of profit above the high-water mark"
            )
        return " + ".join(parts) or "Free"


class ListingVersion(models.Model):
    """A frozen snapshot of one strategy version, as reviewed. Never edited once submitted."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    strategy_version = models.ForeignKey(
        "trader.StrategyVersion", on_delete=models.PROTECT, related_name="listing_versions"
    )
    # The legs, times and exits as they were when the version was made: what the reviewer saw
    # and what subscribers run, even if the strategy is later edited.
    snapshot = models.JSONField()
    notes = models.TextField(blank=True, help_text="What changed, for the reviewer.")
    state = models.CharField(
        max_length=20, choices=VersionState.choices, default=VersionState.DRAFT
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["listing", "number"], name="listingversion_unique"),
            models.CheckConstraint(
                condition=Q(state__in=VersionState.values), name="listingversion_state_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.listing} v{self.number}"


class ReviewComment(models.Model):
    """The thread between reviewers and the creator; reasons of workflow actions land here."""

    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    by_reviewer = models.BooleanField(default=False)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["listing_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.author} on {self.listing}"


class AppendOnlyError(Exception):
    pass


class ListingEvent(models.Model):
    """Audit of every workflow transition and version change. Append-only."""

    listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="events")
    version = models.ForeignKey(
        ListingVersion, on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    action = models.CharField(max_length=30)
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["listing_id", "created_at", "id"]

    def __str__(self) -> str:
        return f"{self.listing_id}: {self.action} {self.from_state}→{self.to_state}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("Listing events are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise AppendOnlyError("Listing events are never deleted.")


class Notification(models.Model):
    """A message shown in the UI (and also emailed) about a listing or a subscription."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="marketplace_notes"
    )
    listing = models.ForeignKey(Listing, on_delete=models.CASCADE, related_name="+")
    message = models.TextField()
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at"], name="mpnote_user_read")]

    def __str__(self) -> str:
        return self.message[:60]
