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


def deployment_run(subscription: Subscription, **run_fields):
    """(deployment, run): the subscription deployed on a new paper account of the subscriber,
    and one real (not test) run of that deployment."""
    from tests.execution.engine_factories import RunFactory
    from tests.marketplace.factories import PaperAccountFactory

    deployment = services.deployment_create(
        subscription=subscription,
        user=subscription.subscriber,
        broker_account=PaperAccountFactory(owner=subscription.subscriber),
        multiplier=subscription.listing.min_multiplier,
    )
    run = RunFactory(
        strategy_version=subscription.version.strategy_version,
        owner=subscription.subscriber,
        source="deployment",
        source_ref=str(deployment.pk),
        **run_fields,
    )
    return deployment, run


def executed_run_for(subscription: Subscription):
    """A deployment of the subscription with one real run whose order filled."""
    from execution.models import OrderIntent
    from tests.execution.engine_factories import IntentFactory

    deployment, run = deployment_run(subscription)
    intent = IntentFactory(run=run, account=deployment.broker_account, intended_at=run.fire_at)
    OrderIntent.objects.filter(pk=intent.pk).update(state="filled", filled_quantity=75)
    return run
