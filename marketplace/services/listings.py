"""Writes for listings: create, edit, versions, the review workflow and its thread."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketplace.claims import return_claims, return_claims_message
from marketplace.exceptions import MarketplaceError, StaleStateError
from marketplace.models import (
    Listing,
    ListingEvent,
    ListingVersion,
    Plan,
    PlanKind,
    ReviewComment,
    Subscription,
    SubscriptionStatus,
    VersionState,
    Visibility,
)
from marketplace.models.listings import PARRVA_REGEX, SEBI_RA_REGEX
from marketplace.revenue import MAX_PROFIT_SHARE_PERCENT
from marketplace.services.notify import notify_users
from marketplace.services.replan import deployments_replan
from marketplace.workflow import (
    EDITABLE_STATES,
    Actor,
    ListingState,
    TransitionError,
    transition_for,
)
from trader.models import User
from trader.models.strategies import Strategy, StrategyVersion
from trader.permissions import REVIEW_LISTINGS, staff_may


def strategy_version_snapshot(*, version: StrategyVersion) -> dict[str, Any]:
    """The frozen copy of a strategy version that a listing version keeps."""
    legs = [
        {
            "position": leg.position,
            "side": leg.side,
            "option_type": leg.option_type,
            "lots": leg.lots,
            "expiry_choice": leg.expiry_choice,
            "strike_mode": leg.strike_mode,
            "strike_offset": leg.strike_offset,
            "strike_price": _text(leg.strike_price),
            "target_premium": _text(leg.target_premium),
            "target_delta": _text(leg.target_delta),
            "stop_loss": _text(leg.stop_loss),
            "stop_loss_unit": leg.stop_loss_unit,
            "target": _text(leg.target),
            "target_unit": leg.target_unit,
        }
        for leg in version.legs.order_by("position")
    ]
    return {
        "strategy_version_id": version.pk,
        "strategy_version_number": version.number,
        "entry_time": version.entry_time.isoformat(),
        "exit_time": version.exit_time.isoformat(),
        "trading_days": version.trading_days,
        "stop_loss_mtm": _text(version.stop_loss_mtm),
        "target_mtm": _text(version.target_mtm),
        "trailing_stop_mtm": _text(version.trailing_stop_mtm),
        "legs": legs,
    }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def plan_terms_check(*, kind: str, monthly_fee: Decimal, profit_share_percent: Decimal) -> None:
    """Raise MarketplaceError (keyed by field) unless the terms fit the plan kind and limits."""
    errors: dict[str, str] = {}
    if monthly_fee < 0:
        errors["monthly_fee"] = "The monthly fee cannot be negative."
    if not Decimal(0) <= profit_share_percent <= MAX_PROFIT_SHARE_PERCENT:
        errors["profit_share_percent"] = "The profit share must be between 0 and 50 %."
    if not errors:
        has_fee = kind in (PlanKind.FEE, PlanKind.FEE_AND_SHARE)
        has_share = kind in (PlanKind.SHARE, PlanKind.FEE_AND_SHARE)
        if has_fee and monthly_fee <= 0:
            errors["monthly_fee"] = "Enter the monthly fee in rupees for this plan."
        if not has_fee and monthly_fee:
            errors["monthly_fee"] = "This plan has no monthly fee; leave it at 0."
        if has_share and profit_share_percent <= 0:
            errors["profit_share_percent"] = "Enter the profit share in % for this plan."
        if not has_share and profit_share_percent:
            errors["profit_share_percent"] = "This plan has no profit share; leave it at 0."
    if errors:
        raise MarketplaceError(errors)


def _visibility_check(*, visibility: str, sebi_ra_number: str) -> None:
    if sebi_ra_number and not re.fullmatch(SEBI_RA_REGEX, sebi_ra_number):
        raise MarketplaceError(
            {"sebi_ra_number": "A SEBI RA registration number is INH followed by 9 digits."}
        )
    if visibility == Visibility.SUBSCRIBE_ONLY and not sebi_ra_number:
        raise MarketplaceError(
            {
                "sebi_ra_number": (
                    "SEBI treats hidden logic as a black-box algo: a subscribe-only listing "
                    "needs your Research Analyst registration number."
                )
            }
        )


def _claims_check(**texts: str) -> None:
    """Raise MarketplaceError, on each field that has one, naming every return claim SEBI does
    not allow (marketplace.claims)."""
    errors = {
        field: return_claims_message(phrases)
        for field, text in texts.items()
        if (phrases := return_claims(text))
    }
    if errors:
        raise MarketplaceError(errors)


def _parrva_check(*, parrva_reference: str) -> None:
    if parrva_reference and not re.fullmatch(PARRVA_REGEX, parrva_reference):
        raise MarketplaceError(
            {
                "parrva_reference": (
                    "A PaRRVA reference is 4 to 40 letters, digits, '/', '-' or '.', as PaRRVA "
                    "issued it."
                )
            }
        )


def _record(
    *,
    listing: Listing,
    actor: User | None,
    action: str,
    from_state: str = "",
    to_state: str = "",
    reason: str = "",
    version: ListingVersion | None = None,
) -> ListingEvent:
    return ListingEvent.objects.create(
        listing=listing,
        version=version,
        actor=actor,
        action=action,
        from_state=from_state,
        to_state=to_state,
        reason=reason,
    )


@transaction.atomic
def listing_create(
    *,
    creator: User,
    strategy: Strategy,
    title: str,
    description: str,
    tags: str,
    risk_level: str,
    capital_required: Decimal,
    min_multiplier: int,
    visibility: str,
    sebi_ra_number: str,
    plan_kind: str,
    monthly_fee: Decimal,
    profit_share_percent: Decimal,
    parrva_reference: str = "",
) -> Listing:
    """Create a draft listing of one of the creator's own strategies with its first plan and a
    frozen snapshot of the strategy's current version. Raises MarketplaceError, saving nothing.
    """
    if strategy.owner_id != creator.pk:
        raise MarketplaceError({"strategy": "You can only publish your own strategies."})
    version = strategy.current_version
    if version is None:
        raise MarketplaceError({"strategy": "Save the strategy's legs before publishing it."})
    _visibility_check(visibility=visibility, sebi_ra_number=sebi_ra_number)
    _parrva_check(parrva_reference=parrva_reference)
    _claims_check(title=title, description=description, tags=tags)
    plan_terms_check(
        kind=plan_kind, monthly_fee=monthly_fee, profit_share_percent=profit_share_percent
    )
    listing = Listing.objects.create(
        creator=creator,
        strategy=strategy,
        title=title.strip(),
        description=description.strip(),
        tags=tags.strip(),
        underlying_id=strategy.underlying_id,
        risk_level=risk_level,
        capital_required=capital_required,
        min_multiplier=min_multiplier,
        visibility=visibility,
        sebi_ra_number=sebi_ra_number,
        parrva_reference=parrva_reference.strip(),
    )
    Plan.objects.create(
        listing=listing,
        kind=plan_kind,
        monthly_fee=monthly_fee,
        profit_share_percent=profit_share_percent,
    )
    first = ListingVersion.objects.create(
        listing=listing,
        number=1,
        strategy_version=version,
        snapshot=strategy_version_snapshot(version=version),
    )
    _record(listing=listing, actor=creator, action="create", to_state=listing.state, version=first)
    return listing


@transaction.atomic
def listing_update(
    *,
    listing: Listing,
    user: User,
    title: str,
    description: str,
    tags: str,
    risk_level: str,
    capital_required: Decimal,
    min_multiplier: int,
    visibility: str,
    sebi_ra_number: str,
    parrva_reference: str = "",
) -> Listing:
    """Edit the listing's text and terms while it is a draft or changes were requested."""
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.creator_id != user.pk:
        raise MarketplaceError("Only the creator can edit this listing.")
    if listing.state not in EDITABLE_STATES:
        raise MarketplaceError(
            "A listing can be edited only as a draft or when changes were requested."
        )
    _visibility_check(visibility=visibility, sebi_ra_number=sebi_ra_number)
    _parrva_check(parrva_reference=parrva_reference)
    _claims_check(title=title, description=description, tags=tags)
    listing.title = title.strip()
    listing.description = description.strip()
    listing.tags = tags.strip()
    listing.risk_level = risk_level
    listing.capital_required = capital_required
    listing.min_multiplier = min_multiplier
    listing.visibility = visibility
    listing.sebi_ra_number = sebi_ra_number
    listing.parrva_reference = parrva_reference.strip()
    listing.save()
    _record(listing=listing, actor=user, action="edit", from_state=listing.state)
    return listing


def _actor_for(*, listing: Listing, user: User) -> Actor:
    # The creator is always the creator, even with staff rights: nobody approves their own work.
    if listing.creator_id == user.pk:
        return Actor.CREATOR
    if staff_may(user=user, permission=REVIEW_LISTINGS):
        return Actor.ADMIN
    if user.is_staff:
        raise MarketplaceError("You need the permission to review listings (review_listings).")
    raise MarketplaceError("You cannot act on someone else's listing.")


def _pending_version(listing: Listing) -> ListingVersion | None:
    versions = listing.versions.exclude(state__in=[VersionState.SUPERSEDED, VersionState.REJECTED])
    if listing.live_version_id is not None:
        versions = versions.exclude(pk=listing.live_version_id)
    return versions.order_by("-number").first()


_VERSION_STATE_AFTER = {
    "submit": VersionState.SUBMITTED,
    "resubmit": VersionState.SUBMITTED,
    "request_changes": VersionState.CHANGES_REQUESTED,
    "reject": VersionState.REJECTED,
    "approve": VersionState.APPROVED,
}


@transaction.atomic
def listing_transition(
    *,
    listing: Listing,
    user: User,
    action: str,
    reason: str = "",
    ra_number_verified: bool = False,
) -> Listing:
    """Move a listing along the review workflow, audit it, and tell the creator.

    Raises MarketplaceError when the action is not allowed for this user in this state, when a
    required reason is missing, or when a subscribe-only listing is approved without its SEBI
    RA number having been checked; StaleStateError when someone else moved it first.
    """
    actor = _actor_for(listing=listing, user=user)
    try:
        transition = transition_for(action=action, state=listing.state, actor=actor)
    except TransitionError as exc:
        raise MarketplaceError(str(exc)) from exc
    reason = reason.strip()
    if transition.reason_required and not reason:
        raise MarketplaceError({"reason": f"Give the creator a reason to {transition.label}."})
    if action in ("submit", "resubmit", "approve", "publish"):
        # Screened again here: text saved before the rule, or edited in admin, is caught too.
        phrases = return_claims(listing.title, listing.description, listing.tags)
        if phrases:
            raise MarketplaceError(return_claims_message(phrases))
    if action == "approve" and listing.is_subscribe_only:
        if not re.fullmatch(SEBI_RA_REGEX, listing.sebi_ra_number or ""):
            raise MarketplaceError("This subscribe-only listing has no valid SEBI RA number.")
        if not ra_number_verified:
            raise MarketplaceError(
                {
                    "ra_number_verified": (
                        f"Confirm that {listing.sebi_ra_number} is on SEBI's register of "
                        "Research Analysts before approving a subscribe-only listing."
                    )
                }
            )
    now = timezone.now()
    changes: dict[str, Any] = {"state": transition.target, "updated_at": now}
    version = _pending_version(listing) if action in _VERSION_STATE_AFTER else None
    if action == "approve":
        if version is None:
            raise MarketplaceError("There is no version waiting for approval.")
        changes["live_version"] = version
    if transition.target == ListingState.PUBLISHED and listing.published_at is None:
        changes["published_at"] = now
    # Conditional update: two admins acting at once cannot both move it.
    moved = Listing.objects.filter(pk=listing.pk, state=listing.state).update(**changes)
    if not moved:
        raise StaleStateError("Someone else changed this listing first; reload and try again.")
    if version is not None:
        version.state = _VERSION_STATE_AFTER[action]
        if action == "approve":
            version.approved_at = now
        if action in ("submit", "resubmit"):
            # The reviewer sees the strategy as it is when sent, including fixes made after
            # changes were requested; from here on the snapshot stays frozen.
            current = listing.strategy.current_version
            if current is not None:
                version.strategy_version = current
                version.snapshot = strategy_version_snapshot(version=current)
        version.save(update_fields=["state", "approved_at", "strategy_version", "snapshot"])
    from_state = listing.state
    listing.refresh_from_db()
    _record(
        listing=listing,
        actor=user,
        action=action,
        from_state=from_state,
        to_state=listing.state,
        reason=reason,
        version=version,
    )
    if reason:
        ReviewComment.objects.create(
            listing=listing, author=user, by_reviewer=actor == Actor.ADMIN, body=reason
        )
    if actor == Actor.ADMIN:
        message = f"“{listing.title}” is now {listing.get_state_display().lower()}."
        if reason:
            message += f" Reason: {reason}"
        notify_users(
            users=[listing.creator],
            listing=listing,
            subject=f"Your listing: {listing.get_state_display()}",
            message=message,
        )
    if ListingState.PUBLISHED in (from_state, listing.state):
        # Subscribers' deployments enter only while the listing is published.
        deployments_replan(strategy_ids=[listing.strategy_id])
    if transition.target in (ListingState.SUSPENDED, ListingState.RETIRED):
        _tell_subscribers(
            listing=listing,
            message=(
                f"“{listing.title}” was {listing.get_state_display().lower()}: it makes no new "
                "entries for you; open positions still exit as planned."
            ),
        )
    return listing


def _tell_subscribers(*, listing: Listing, message: str) -> None:
    subscribers = User.objects.filter(
        subscriptions__listing=listing,
        subscriptions__status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED],
    ).distinct()
    notify_users(users=subscribers, listing=listing, subject=listing.title, message=message)


@transaction.atomic
def version_create(*, listing: Listing, user: User, notes: str) -> ListingVersion:
    """Snapshot the strategy's current version as a new draft listing version.

    Subscribers stay on the live version until this one is approved.
    """
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.creator_id != user.pk:
        raise MarketplaceError("Only the creator can add a version.")
    if listing.live_version_id is None:
        raise MarketplaceError("Edit the listing itself until its first version is approved.")
    if listing.state == ListingState.RETIRED:
        raise MarketplaceError("A retired listing takes no new versions.")
    if _pending_version(listing) is not None:
        raise MarketplaceError("A newer version is already in review; finish that one first.")
    strategy_version = listing.strategy.current_version
    live_version = listing.live_version
    assert live_version is not None  # live_version_id was checked above
    if strategy_version is None or strategy_version.pk == live_version.strategy_version_id:
        raise MarketplaceError("The strategy has not changed since the live version.")
    last = listing.versions.order_by("-number").first()
    version = ListingVersion.objects.create(
        listing=listing,
        number=(last.number if last else 0) + 1,
        strategy_version=strategy_version,
        snapshot=strategy_version_snapshot(version=strategy_version),
        notes=notes.strip(),
    )
    _record(listing=listing, actor=user, action="version_create", version=version)
    return version


@transaction.atomic
def version_submit(*, version: ListingVersion, user: User) -> ListingVersion:
    """Send a new version of a live listing to review."""
    if version.listing.creator_id != user.pk:
        raise MarketplaceError("Only the creator can submit a version.")
    moved = ListingVersion.objects.filter(
        pk=version.pk,
        state__in=[VersionState.DRAFT, VersionState.CHANGES_REQUESTED],
        listing__live_version__isnull=False,
    ).update(state=VersionState.SUBMITTED)
    if not moved:
        raise MarketplaceError("Only a draft version of a live listing can be submitted.")
    version.refresh_from_db()
    _record(listing=version.listing, actor=user, action="version_submit", version=version)
    return version


VERSION_DECISIONS = {
    "approve": VersionState.APPROVED,
    "request_changes": VersionState.CHANGES_REQUESTED,
    "reject": VersionState.REJECTED,
}


@transaction.atomic
def version_review(
    *, version: ListingVersion, reviewer: User, decision: str, reason: str = ""
) -> ListingVersion:
    """An admin's decision on a submitted version of a live listing.

    On approval, every open subscription moves to it and its subscribers are told.
    """
    listing = Listing.objects.select_for_update().get(pk=version.listing_id)
    if _actor_for(listing=listing, user=reviewer) != Actor.ADMIN:
        raise MarketplaceError("A creator never reviews their own version.")
    if decision not in VERSION_DECISIONS:
        raise MarketplaceError(f"Unknown decision “{decision}”.")
    reason = reason.strip()
    if decision != "approve" and not reason:
        raise MarketplaceError({"reason": "Give the creator a reason."})
    now = timezone.now()
    moved = ListingVersion.objects.filter(pk=version.pk, state=VersionState.SUBMITTED).update(
        state=VERSION_DECISIONS[decision], approved_at=now if decision == "approve" else None
    )
    if not moved:
        raise MarketplaceError("Only a submitted version can be reviewed.")
    version.refresh_from_db()
    if decision == "approve":
        if listing.live_version_id is not None:
            ListingVersion.objects.filter(pk=listing.live_version_id).update(
                state=VersionState.SUPERSEDED
            )
        listing.live_version = version
        listing.save(update_fields=["live_version", "updated_at"])
        Subscription.objects.filter(listing=listing).exclude(
            status=SubscriptionStatus.CANCELLED
        ).update(version=version, updated_at=now)
        deployments_replan(strategy_ids=[listing.strategy_id])
        _tell_subscribers(
            listing=listing,
            message=(
                f"“{listing.title}” has an approved version {version.number}; your deployments "
                "run it from their next entry (positions already open exit as planned)."
            ),
        )
    _record(
        listing=listing,
        actor=reviewer,
        action=f"version_{decision}",
        reason=reason,
        version=version,
    )
    if reason:
        ReviewComment.objects.create(
            listing=listing, author=reviewer, by_reviewer=True, body=reason
        )
    notify_users(
        users=[listing.creator],
        listing=listing,
        subject=f"Version {version.number}: {version.get_state_display()}",
        message=(
            f"Version {version.number} of “{listing.title}” is "
            f"{version.get_state_display().lower()}." + (f" Reason: {reason}" if reason else "")
        ),
    )
    return version


@transaction.atomic
def comment_add(*, listing: Listing, author: User, body: str) -> ReviewComment:
    """Add to the review thread: the creator or a reviewer (staff), nobody else."""
    actor = _actor_for(listing=listing, user=author)
    body = body.strip()
    if not body:
        raise MarketplaceError({"body": "Write a comment first."})
    comment = ReviewComment.objects.create(
        listing=listing, author=author, by_reviewer=actor == Actor.ADMIN, body=body
    )
    _record(listing=listing, actor=author, action="comment", from_state=listing.state)
    if actor == Actor.ADMIN:
        notify_users(
            users=[listing.creator],
            listing=listing,
            subject=f"Review comment on “{listing.title}”",
            message=body,
        )
    return comment


@transaction.atomic
def listing_feature(*, listing: Listing, admin: User, featured: bool) -> Listing:
    """Set the admin "featured" flag (curation); audited like every other change."""
    if _actor_for(listing=listing, user=admin) != Actor.ADMIN:
        raise MarketplaceError("Only an admin other than the creator can feature a listing.")
    Listing.objects.filter(pk=listing.pk).update(featured=featured)
    listing.featured = featured
    _record(
        listing=listing,
        actor=admin,
        action="feature" if featured else "unfeature",
        from_state=listing.state,
    )
    return listing


def _own_listing_for_plans(listing: Listing, user: User) -> Listing:
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    if listing.creator_id != user.pk:
        raise MarketplaceError("Only the creator can change this listing's plans.")
    if listing.state == ListingState.RETIRED:
        raise MarketplaceError("A retired listing's plans cannot change.")
    return listing


@transaction.atomic
def plan_add(
    *, listing: Listing, user: User, kind: str, monthly_fee: Decimal, profit_share_percent: Decimal
) -> Plan:
    """Offer one more plan on the listing; audited. Raises MarketplaceError for terms that do
    not fit the kind or the limits."""
    listing = _own_listing_for_plans(listing, user)
    plan_terms_check(kind=kind, monthly_fee=monthly_fee, profit_share_percent=profit_share_percent)
    plan = Plan.objects.create(
        listing=listing,
        kind=kind,
        monthly_fee=monthly_fee,
        profit_share_percent=profit_share_percent,
    )
    _record(listing=listing, actor=user, action="plan_add", reason=plan.description)
    return plan


@transaction.atomic
def plan_update(
    *, plan: Plan, user: User, monthly_fee: Decimal, profit_share_percent: Decimal
) -> Plan:
    """Change a plan's price (its kind stays). New subscribers pay the new terms at once;
    existing subscribers keep the terms they subscribed on until their next renewal (the next
    monthly fee invoice; see billing.subscriptions_renew_or_lapse) and are told now."""
    listing = _own_listing_for_plans(plan.listing, user)
    plan = Plan.objects.select_for_update().get(pk=plan.pk, listing=listing)
    plan_terms_check(
        kind=plan.kind, monthly_fee=monthly_fee, profit_share_percent=profit_share_percent
    )
    before = plan.description
    plan.monthly_fee, plan.profit_share_percent = monthly_fee, profit_share_percent
    plan.save(update_fields=["monthly_fee", "profit_share_percent"])
    _record(
        listing=listing, actor=user, action="plan_edit", reason=f"{before} → {plan.description}"
    )
    subscribers = User.objects.filter(
        subscriptions__plan=plan,
        subscriptions__status__in=[
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PAUSED,
            SubscriptionStatus.LAPSED,
        ],
    ).distinct()
    notify_users(
        users=subscribers,
        listing=listing,
        subject=f"{listing.title}: plan price changes at your renewal",
        message=(
            f"The plan you subscribed on (“{before}”) becomes “{plan.description}”. You keep "
            "your current terms until your next renewal; cancel before then if you do not "
            "agree."
        ),
    )
    return plan


@transaction.atomic
def plan_retire(*, plan: Plan, user: User) -> Plan:
    """Stop offering a plan to new subscribers (its subscribers keep it). The last offered plan
    of a listing cannot be retired."""
    listing = _own_listing_for_plans(plan.listing, user)
    plan = Plan.objects.select_for_update().get(pk=plan.pk, listing=listing)
    if not plan.is_active:
        raise MarketplaceError("This plan is no longer offered.")
    if not listing.plans.filter(is_active=True).exclude(pk=plan.pk).exists():
        raise MarketplaceError("A listing needs at least one plan: add another one first.")
    plan.is_active = False
    plan.save(update_fields=["is_active"])
    _record(listing=listing, actor=user, action="plan_retire", reason=plan.description)
    return plan
