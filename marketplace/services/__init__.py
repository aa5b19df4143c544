"""Writes for the marketplace, one module per sub-domain; import from here."""

from marketplace.services.billing import (
    fee_invoice_issue,
    invoice_mark_paid,
    ledger_close_month,
    subscriptions_renew_or_lapse,
)
from marketplace.services.listings import (
    comment_add,
    listing_create,
    listing_feature,
    listing_transition,
    listing_update,
    plan_terms_check,
    version_create,
    version_review,
    version_submit,
)
from marketplace.services.subscriptions import (
    deployment_create,
    deployment_may_enter,
    deployment_stop,
    deployment_update,
    listing_copy,
    rating_submit,
    subscription_cancel,
    subscription_create,
    subscription_has_executed,
    subscription_pause,
    subscription_resume,
)

__all__ = [
    "comment_add",
    "deployment_create",
    "deployment_may_enter",
    "deployment_stop",
    "deployment_update",
    "fee_invoice_issue",
    "invoice_mark_paid",
    "ledger_close_month",
    "listing_copy",
    "listing_create",
    "listing_feature",
    "listing_transition",
    "listing_update",
    "plan_terms_check",
    "rating_submit",
    "subscription_cancel",
    "subscription_create",
    "subscription_has_executed",
    "subscription_pause",
    "subscription_resume",
    "subscriptions_renew_or_lapse",
    "version_create",
    "version_review",
    "version_submit",
]
