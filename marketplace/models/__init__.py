"""Marketplace models, one module per sub-domain."""

from marketplace.models.billing import Invoice, InvoiceKind, InvoiceStatus, MonthlyLedger
from marketplace.models.listings import (
    Listing,
    ListingEvent,
    ListingVersion,
    Notification,
    Plan,
    PlanKind,
    ReviewComment,
    RiskLevel,
    VersionState,
    Visibility,
)
from marketplace.models.subscriptions import (
    Deployment,
    Rating,
    Subscription,
    SubscriptionStatus,
)

__all__ = [
    "Deployment",
    "Invoice",
    "InvoiceKind",
    "InvoiceStatus",
    "Listing",
    "ListingEvent",
    "ListingVersion",
    "MonthlyLedger",
    "Notification",
    "Plan",
    "PlanKind",
    "Rating",
    "ReviewComment",
    "RiskLevel",
    "Subscription",
    "SubscriptionStatus",
    "VersionState",
    "Visibility",
]
