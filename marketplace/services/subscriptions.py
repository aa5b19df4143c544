"""Writes for subscriptions: subscribe, deploy on the subscriber's own accounts, pause, resume,
cancel, rate, copy."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.models import AccountStatus, BrokerAccount
from marketplace.exceptions import MarketplaceError
from marketplace.models import (
    Deployment,
    Listing,
    Plan,
    Rating,
    Subscription,
    SubscriptionStatus,
)
from marketplace.performance import DEPLOYMENT_SOURCE
from marketplace.services.billing import fee_invoice_issue, ist_today
from marketplace.services.replan import deployments_replan
from marketplace.workflow import SUBSCRIBABLE_STATES, ListingState
from trader.india import rupees
from trader.models import User

OPEN_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.LAPSED)


def _audit(
    kind: str, message: str, *, user: User, account_id: int | None = None, **data: Any
) -> None:
    """One row of the execution audit trail, in the caller's transaction: subscribing and
    deploying decide what trades on a trader's accounts (the API adds the token's name)."""
    from execution.audit import event_record

    event_record(kind=kind, message=message, user_id=user.pk, account_id=account_id, data=data)


@transaction.atomic
def subscription_create(*, subscriber: User, listing: Listing, plan: Plan) -> Subscription:
    """Subscribe a trader to a published listing on one of its plans (the views ask for
    confirmation of `selectors.subscribe_terms` first).

    A plan with a fee issues the first month's invoice at once; the period starts today (IST).
    Raises MarketplaceError, saving nothing, for an unpublished or own listing, a plan of
    another listing, or an existing open subscription.
    """
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.state not in SUBSCRIBABLE_STATES or listing.live_version_id is None:
        raise MarketplaceError("This listing is not published, so it takes no subscribers.")
    if listing.creator_id == subscriber.pk:
        raise MarketplaceError("You cannot subscribe to your own listing.")
    if plan.listing_id != listing.pk or not plan.is_active:
        raise MarketplaceError({"plan": "Choose one of this listing's plans."})
    try:
        with transaction.atomic():
            subscription = Subscription.objects.create(
                subscriber=subscriber,
                listing=listing,
                plan=plan,
                monthly_fee=plan.monthly_fee,
                profit_share_percent=plan.profit_share_percent,
                version_id=listing.live_version_id,
            )
    except IntegrityError as exc:
        raise MarketplaceError("You are already subscribed to this listing.") from exc
    if subscription.monthly_fee > 0:
        fee_invoice_issue(subscription=subscription, period_start=ist_today())
    _audit(
        "subscription.created",
        f"Subscribed to {listing.title} ({plan.get_kind_display()}).",
        user=subscriber,
        subscription_id=subscription.pk,
        listing_id=listing.pk,
    )
    return subscription


def _own_open(subscription: Subscription, user: User) -> Subscription:
    locked = (
        Subscription.objects.select_for_update().select_related("listing").get(pk=subscription.pk)
    )
    if locked.subscriber_id != user.pk:
        raise MarketplaceError("This is not your subscription.")
    if locked.status == SubscriptionStatus.CANCELLED:
        raise MarketplaceError("This subscription is cancelled.")
    return locked


def _audit_status(subscription: Subscription, user: User, done: str) -> None:
    _audit(
        f"subscription.{done}",
        f"Subscription to {subscription.listing.title} {done}.",
        user=user,
        subscription_id=subscription.pk,
        listing_id=subscription.listing_id,
    )


def _set_status(subscription: Subscription, status: str, **extra: Any) -> Subscription:
    subscription.status = status
    for name, value in extra.items():
        setattr(subscription, name, value)
    subscription.save(update_fields=["status", "updated_at", *extra])
    return subscription


@transaction.atomic
def subscription_pause(*, subscription: Subscription, user: User) -> Subscription:
    """No new entries until resumed; open positions still exit at their planned times."""
    subscription = _own_open(subscription, user)
    if subscription.status != SubscriptionStatus.ACTIVE:
        raise MarketplaceError("Only an active subscription can be paused.")
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    _audit_status(subscription, user, "paused")
    return _set_status(subscription, SubscriptionStatus.PAUSED)


@transaction.atomic
def subscription_resume(*, subscription: Subscription, user: User) -> Subscription:
    """Resume a paused subscription; a lapsed one resumes only once its fee is paid."""
    subscription = _own_open(subscription, user)
    if subscription.status != SubscriptionStatus.PAUSED:
        raise MarketplaceError("Only a paused subscription can be resumed.")
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    _audit_status(subscription, user, "resumed")
    if subscription.monthly_fee > 0 and (
        subscription.paid_until is None or subscription.paid_until < ist_today()
    ):
        return _set_status(subscription, SubscriptionStatus.LAPSED)
    return _set_status(subscription, SubscriptionStatus.ACTIVE)


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, user: User) -> Subscription:
    """End the subscription: deployments stop entering; open positions still exit. Invoices
    already issued stay due."""
    subscription = _own_open(subscription, user)
    subscription.deployments.update(is_active=False, updated_at=timezone.now())
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    _audit_status(subscription, user, "cancelled")
    return _set_status(subscription, SubscriptionStatus.CANCELLED, ended_at=timezone.now())


def deployment_limits_check(
    *,
    subscription: Subscription,
    user: User,
    broker_account_id: int,
    multiplier: int,
    max_daily_loss: Decimal | None = None,
) -> None:
    """Raise MarketplaceError, keyed by field, for what the wizard would refuse about running
    the subscribed version on this account at this multiplier: the listing's minimum, the
    trader's risk limits capped by the admins' ceilings (lots per order; lots per strategy
    across the subscription's other active deployments; the daily loss). The same checks as
    a strategy's own allocations (trader.strategies.specs)."""
    from trader.strategies.selectors import risk_limits_for_user
    from trader.strategies.specs import (
        AllocationSpec,
        LegSpec,
        allocation_errors,
        allocations_total_errors,
    )

    minimum = subscription.listing.min_multiplier
    if multiplier < minimum:
        raise MarketplaceError(
            {"multiplier": f"This listing needs a multiplier of at least {minimum}."}
        )
    limits = risk_limits_for_user(user=user)
    legs = [
        LegSpec(side=leg["side"], option_type=leg["option_type"], lots=int(leg["lots"]))
        for leg in subscription.version.snapshot.get("legs", [])
    ]
    this = AllocationSpec(broker_account_id=broker_account_id, multiplier=Decimal(multiplier))
    errors = allocation_errors(this, legs=legs, limits=limits)
    others = [
        AllocationSpec(broker_account_id=d.broker_account_id, multiplier=Decimal(d.multiplier))
        for d in subscription.deployments.filter(is_active=True).exclude(
            broker_account_id=broker_account_id
        )
    ]
    totals = allocations_total_errors([*others, this], legs=legs, limits=limits)
    if totals:
        errors.setdefault("multiplier", []).extend(totals)
    if max_daily_loss is not None:
        if max_daily_loss <= 0:
            errors["max_daily_loss"] = ["A loss limit is a positive amount."]
        elif max_daily_loss > limits.max_daily_loss:
            errors["max_daily_loss"] = [
                f"Above your daily loss limit of {rupees(limits.max_daily_loss)}."
            ]
    if errors:
        raise MarketplaceError(errors)


def account_can_trade(account: BrokerAccount) -> bool:
    """Whether new deployments may use this account: connected (logged in) and not disabled."""
    return account.status == AccountStatus.CONNECTED


@transaction.atomic
def deployment_create(
    *,
    subscription: Subscription,
    user: User,
    broker_account: BrokerAccount,
    multiplier: int,
    max_daily_loss: Decimal | None = None,
) -> Deployment:
    """Run a subscription on one of the subscriber's own broker accounts, every leg's lots
    multiplied. Raises MarketplaceError for someone else's account or one that cannot trade,
    a multiplier below the listing's minimum or beyond the trader's risk limits and the admin
    ceilings (`deployment_limits_check`), or an account already used by this subscription."""
    subscription = _own_open(subscription, user)
    if broker_account.owner_id != user.pk:
        raise MarketplaceError({"broker_account": "Choose one of your own broker accounts."})
    if not account_can_trade(broker_account):
        raise MarketplaceError(
            {
                "broker_account": (
                    f"{broker_account.label} is {broker_account.get_status_display().lower()}: "
                    "log in to it first."
                )
            }
        )
    deployment_limits_check(
        subscription=subscription,
        user=user,
        broker_account_id=broker_account.pk,
        multiplier=multiplier,
        max_daily_loss=max_daily_loss,
    )
    deployment, created = Deployment.objects.get_or_create(
        subscription=subscription,
        broker_account=broker_account,
        defaults={"multiplier": multiplier, "max_daily_loss": max_daily_loss},
    )
    if not created:
        if deployment.is_active:
            raise MarketplaceError(
                {"broker_account": "This subscription already runs on that account."}
            )
        deployment.multiplier = multiplier
        deployment.max_daily_loss = max_daily_loss
        deployment.is_active = True
        deployment.save()
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    _audit(
        "deployment.created",
        f"{subscription.listing.title} runs on {broker_account.label} at x{multiplier}.",
        user=user,
        account_id=broker_account.pk,
        subscription_id=subscription.pk,
        deployment_id=deployment.pk,
    )
    return deployment


@transaction.atomic
def deployment_update(
    *, deployment: Deployment, user: User, multiplier: int, max_daily_loss: Decimal | None
) -> Deployment:
    """Change a deployment's multiplier and loss limit within the same limits as
    `deployment_create`; runs planned from now on use them (positions already open exit as
    they were opened)."""
    subscription = _own_open(deployment.subscription, user)
    deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
    deployment_limits_check(
        subscription=subscription,
        user=user,
        broker_account_id=deployment.broker_account_id,
        multiplier=multiplier,
        max_daily_loss=max_daily_loss,
    )
    deployment.multiplier = multiplier
    deployment.max_daily_loss = max_daily_loss
    deployment.save(update_fields=["multiplier", "max_daily_loss", "updated_at"])
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    _audit(
        "deployment.updated",
        f"{subscription.listing.title} on account {deployment.broker_account_id}: x{multiplier}.",
        user=user,
        account_id=deployment.broker_account_id,
        subscription_id=subscription.pk,
        deployment_id=deployment.pk,
    )
    return deployment


@transaction.atomic
def deployment_stop(*, deployment: Deployment, user: User) -> Deployment:
    """Stop new entries on this account; open positions still exit."""
    if deployment.subscription.subscriber_id != user.pk:
        raise MarketplaceError("This is not your deployment.")
    deployment.is_active = False
    deployment.save(update_fields=["is_active", "updated_at"])
    deployments_replan(strategy_ids=[deployment.subscription.listing.strategy_id])
    _audit(
        "deployment.stopped",
        f"{deployment.subscription.listing.title} stopped on account "
        f"{deployment.broker_account_id}.",
        user=user,
        account_id=deployment.broker_account_id,
        subscription_id=deployment.subscription_id,
        deployment_id=deployment.pk,
    )
    return deployment


def deployment_may_enter(*, deployment: Deployment, day: datetime.date) -> bool:
    """Whether the engine may open new positions for this deployment on `day` (IST).

    Exits are never gated by this: a lapsed, paused or cancelled subscription still closes
    what it opened.
    """
    subscription = deployment.subscription
    if not deployment.is_active or subscription.status != SubscriptionStatus.ACTIVE:
        return False
    if subscription.listing.state != ListingState.PUBLISHED:
        return False
    if subscription.monthly_fee > 0:
        return subscription.paid_until is not None and subscription.paid_until >= day
    return True


def subscription_has_executed(*, subscription: Subscription) -> bool:
    """Whether one of the subscription's deployments has had an order filled in a real (not
    test) run: what a review must rest on."""
    from execution.models import OrderIntent

    deployment_refs = [str(pk) for pk in subscription.deployments.values_list("pk", flat=True)]
    return OrderIntent.objects.filter(
        run__source=DEPLOYMENT_SOURCE,
        run__source_ref__in=deployment_refs,
        run__owner_id=subscription.subscriber_id,
        run__is_test=False,
        filled_quantity__gt=0,
    ).exists()


@transaction.atomic
def rating_submit(*, subscription: Subscription, user: User, stars: int, review: str) -> Rating:
    """Rate a listing; only its subscribers can, once each (a second call edits the first),
    and only once their deployment has executed at least one run."""
    if subscription.subscriber_id != user.pk:
        raise MarketplaceError("Only subscribers can rate a listing.")
    if not subscription_has_executed(subscription=subscription):
        raise MarketplaceError(
            "You can review this listing once it has executed at least one run for you."
        )
    if not 1 <= stars <= 5:
        raise MarketplaceError({"stars": "Give 1 to 5 stars."})
    rating, _ = Rating.objects.update_or_create(
        subscription=subscription,
        defaults={"listing_id": subscription.listing_id, "stars": stars, "review": review.strip()},
    )
    return rating


@transaction.atomic
def listing_copy(*, subscription: Subscription, user: User) -> Any:
    """Copy the approved version a subscriber runs into their own strategies (copy-allowed
    listings only). The copy is a new draft of theirs, without the creator's accounts."""
    from trader.strategies.services import StrategySpec, spec_from_version, strategy_create

    subscription = _own_open(subscription, user)
    listing = subscription.listing
    if listing.is_subscribe_only:
        raise MarketplaceError("This listing's logic is not shared: it can only be subscribed.")
    version = subscription.version.strategy_version
    spec = spec_from_version(listing.strategy, version, with_allocations=False)
    name = f"{listing.title} (copy)"[:80]
    return strategy_create(user=user, spec=StrategySpec(**{**spec.__dict__, "name": name}))
