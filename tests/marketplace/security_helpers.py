"""Shared set-ups for the security and subscriber-trap tests."""

from __future__ import annotations

from decimal import Decimal

from marketplace import services
from marketplace.models import PlanKind, Subscription
from tests.marketplace.factories import ListingFactory
from tests.trader.factories import ProfileFactory


def fee_subscription(**listing_fields) -> Subscription:
    """A trader subscribed to a published ₹499/month listing (first invoice issued)."""
    listing = ListingFactory(
        plan={"kind": PlanKind.FEE, "monthly_fee": Decimal("499")}, **listing_fields
    )
    subscriber = ProfileFactory().user
    return services.subscription_create(
        subscriber=subscriber, listing=listing, plan=listing.plans.get()
    )
