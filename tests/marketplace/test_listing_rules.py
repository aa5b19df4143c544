"""Listing services at their edges: plan terms per kind, versions reviewed by an admin (never
the creator, a reason for any refusal, subscribers moved on approval), featuring, retiring
plans, and the checks of SEBI RA and PaRRVA references."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
from django.contrib.auth.models import Permission

from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import (
    ListingEvent,
    ListingVersion,
    Notification,
    Plan,
    ReviewComment,
    Subscription,
)
from marketplace.workflow import ListingState
from tests.marketplace.factories import ListingFactory
from tests.trader.factories import ProfileFactory
from trader.models import StrategyVersion

pytestmark = pytest.mark.django_db


def _reviewer():
    user = ProfileFactory(user__is_staff=True).user
    user.user_permissions.add(Permission.objects.get(codename="review_listings"))
    return type(user).objects.get(pk=user.pk)


@pytest.mark.parametrize(
    ("kind", "fee", "share", "field"),
    [
        ("fee", D("-1"), D("0"), "monthly_fee"),
        ("share", D("0"), D("51"), "profit_share_percent"),
        ("fee", D("0"), D("0"), "monthly_fee"),
        ("free", D("100"), D("0"), "monthly_fee"),
        ("share", D("0"), D("0"), "profit_share_percent"),
        ("fee", D("500"), D("10"), "profit_share_percent"),
    ],
)
def test_plan_terms_that_do_not_fit_their_kind_are_refused_by_field(kind, fee, share, field):
    with pytest.raises(MarketplaceError) as refused:
        services.plan_terms_check(kind=kind, monthly_fee=fee, profit_share_percent=share)
    assert field in refused.value.message_dict


def test_plan_terms_that_fit_pass():
    services.plan_terms_check(kind="fee_share", monthly_fee=D("999"), profit_share_percent=D("20"))


def _submitted_version(listing):
    strategy = listing.strategy
    changed = StrategyVersion.objects.create(
        strategy=strategy,
        number=2,
        entry_time=datetime.time(9, 30),
        exit_time=datetime.time(15, 0),
        effective_from=datetime.date(2026, 1, 1),
    )
    strategy.current_version = changed
    strategy.save(update_fields=["current_version"])
    version = services.version_create(listing=listing, user=listing.creator, notes="later entry")
    return services.version_submit(version=version, user=listing.creator)


def test_an_approved_version_becomes_live_and_moves_every_open_subscription():
    listing = ListingFactory()
    subscriber = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=subscriber, listing=listing, plan=listing.plans.get()
    )
    first = listing.live_version
    version = _submitted_version(listing)

    with pytest.raises(MarketplaceError, match="never reviews"):
        services.version_review(version=version, reviewer=listing.creator, decision="approve")
    services.version_review(version=version, reviewer=_reviewer(), decision="approve")

    listing.refresh_from_db()
    assert listing.live_version == version
    assert ListingVersion.objects.get(pk=first.pk).state == "superseded"
    assert Subscription.objects.get(pk=subscription.pk).version == version
    # Subscribers and the creator are told (a notification each; mailed after the commit).
    told = set(Notification.objects.filter(listing=listing).values_list("user_id", flat=True))
    assert {subscriber.pk, listing.creator_id} <= told
    with pytest.raises(MarketplaceError, match="Only a submitted version"):
        services.version_review(version=version, reviewer=_reviewer(), decision="approve")


def test_a_refused_version_needs_a_reason_which_the_creator_reads_in_the_thread():
    listing = ListingFactory()
    version = _submitted_version(listing)
    reviewer = _reviewer()
    with pytest.raises(MarketplaceError) as missing:
        services.version_review(version=version, reviewer=reviewer, decision="reject", reason=" ")
    assert "reason" in missing.value.message_dict
    with pytest.raises(MarketplaceError, match="Unknown decision"):
        services.version_review(version=version, reviewer=reviewer, decision="maybe")
    services.version_review(
        version=version, reviewer=reviewer, decision="request_changes", reason="Explain the exit"
    )
    version.refresh_from_db()
    assert version.state == "changes_requested"
    comment = ReviewComment.objects.get(listing=listing)
    assert comment.by_reviewer and comment.body == "Explain the exit"
    listing.refresh_from_db()
    assert listing.live_version.number == 1


def test_staff_without_the_review_permission_cannot_review_or_feature():
    listing = ListingFactory()
    version = _submitted_version(listing)
    staff = ProfileFactory(user__is_staff=True).user
    with pytest.raises(MarketplaceError, match="review_listings"):
        services.version_review(version=version, reviewer=staff, decision="approve")
    with pytest.raises(MarketplaceError, match="review_listings"):
        services.listing_feature(listing=listing, admin=staff, featured=True)
    stranger = ProfileFactory().user
    with pytest.raises(MarketplaceError, match="someone else's"):
        services.comment_add(listing=listing, author=stranger, body="hello")


def test_featuring_is_an_admins_audited_choice():
    listing = ListingFactory()
    reviewer = _reviewer()
    services.listing_feature(listing=listing, admin=reviewer, featured=True)
    listing.refresh_from_db()
    assert listing.featured
    services.listing_feature(listing=listing, admin=reviewer, featured=False)
    listing.refresh_from_db()
    assert not listing.featured
    actions = list(
        ListingEvent.objects.filter(listing=listing).order_by("pk").values_list("action", flat=True)
    )
    assert actions[-2:] == ["feature", "unfeature"]
    with pytest.raises(MarketplaceError, match="other than the creator"):
        services.listing_feature(listing=listing, admin=listing.creator, featured=True)


def test_the_last_offered_plan_cannot_be_retired_and_a_retired_one_not_twice():
    listing = ListingFactory()
    (free,) = listing.plans.all()
    with pytest.raises(MarketplaceError, match="at least one plan"):
        services.plan_retire(plan=free, user=listing.creator)
    paid = services.plan_add(
        listing=listing,
        user=listing.creator,
        kind="fee",
        monthly_fee=D("499"),
        profit_share_percent=D("0"),
    )
    services.plan_retire(plan=free, user=listing.creator)
    assert not Plan.objects.get(pk=free.pk).is_active and Plan.objects.get(pk=paid.pk).is_active
    with pytest.raises(MarketplaceError, match="no longer offered"):
        services.plan_retire(plan=free, user=listing.creator)
    with pytest.raises(MarketplaceError, match="Only the creator"):
        services.plan_retire(plan=paid, user=ProfileFactory().user)


def test_a_retired_listings_plans_cannot_change():
    listing = ListingFactory(state=ListingState.RETIRED)
    with pytest.raises(MarketplaceError, match="retired"):
        services.plan_add(
            listing=listing,
            user=listing.creator,
            kind="fee",
            monthly_fee=D("100"),
            profit_share_percent=D("0"),
        )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sebi_ra_number": "INH12"}, "sebi_ra_number"),
        ({"visibility": "subscribe_only", "sebi_ra_number": ""}, "sebi_ra_number"),
        ({"parrva_reference": "a b"}, "parrva_reference"),
        ({"description": "Guaranteed returns every month"}, "description"),
    ],
)
def test_listing_terms_sebi_would_not_accept_are_refused_by_field(changes, field):
    listing = ListingFactory(state=ListingState.DRAFT)
    terms = {
        "title": listing.title,
        "description": listing.description,
        "tags": listing.tags,
        "risk_level": listing.risk_level,
        "capital_required": listing.capital_required,
        "min_multiplier": 1,
        "visibility": "copy_allowed",
        "sebi_ra_number": "",
        "parrva_reference": "",
        **changes,
    }
    with pytest.raises(MarketplaceError) as refused:
        services.listing_update(listing=listing, user=listing.creator, **terms)
    assert field in refused.value.message_dict
    with pytest.raises(MarketplaceError, match="Only the creator"):
        services.listing_update(listing=listing, user=ProfileFactory().user, **terms)
