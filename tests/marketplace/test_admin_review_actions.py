"""Django admin review actions as an admin uses them: a new version approved, or refused only
with a reason the creator reads; listings featured and unfeatured in bulk; a reviewer's comment
added from the listing's page; the workflow link of one listing."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from marketplace import services
from marketplace.models import Listing, ListingVersion, ReviewComment
from marketplace.workflow import ListingState
from tests.marketplace.factories import ListingFactory
from trader.models import StrategyVersion

pytestmark = pytest.mark.django_db


def _submitted_version(listing) -> ListingVersion:
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
    version = services.version_create(listing=listing, user=listing.creator, notes="")
    return services.version_submit(version=version, user=listing.creator)


def test_a_version_is_refused_only_with_a_reason_and_approved_in_one_step(admin_client_user):
    client, _admin = admin_client_user
    listing = ListingFactory()
    version = _submitted_version(listing)
    changelist = reverse("admin:marketplace_listingversion_changelist")
    selected = {"action": "version_reject", ACTION_CHECKBOX_NAME: [version.pk]}

    page = client.post(changelist, selected)
    assert page.status_code == 200 and b"reason" in page.content.lower()
    blank = client.post(changelist, {**selected, "apply": "1", "reason": " "})
    assert b"A reason is required" in blank.content
    assert ListingVersion.objects.get(pk=version.pk).state == "submitted"

    approve = {"action": "version_approve", ACTION_CHECKBOX_NAME: [version.pk], "apply": "1"}
    done = client.post(changelist, {**approve, "reason": ""})
    assert done.status_code == 302
    assert ListingVersion.objects.get(pk=version.pk).state == "approved"
    assert Listing.objects.get(pk=listing.pk).live_version_id == version.pk
    # Applied again: the version is no longer submitted, so nothing changes.
    client.post(changelist, {**approve, "reason": ""})
    assert ListingVersion.objects.get(pk=version.pk).state == "approved"


def test_listings_are_featured_and_unfeatured_in_bulk(admin_client_user):
    client, _admin = admin_client_user
    listings = [ListingFactory(), ListingFactory()]
    changelist = reverse("admin:marketplace_listing_changelist")
    ids = [listing.pk for listing in listings]
    client.post(changelist, {"action": "feature", ACTION_CHECKBOX_NAME: ids})
    assert set(Listing.objects.filter(pk__in=ids).values_list("featured", flat=True)) == {True}
    client.post(changelist, {"action": "unfeature", ACTION_CHECKBOX_NAME: ids[:1]})
    assert Listing.objects.get(pk=ids[0]).featured is False
    assert Listing.objects.get(pk=ids[1]).featured is True


def test_the_admin_refuses_featuring_their_own_listing_in_words(admin_client_user):
    client, admin = admin_client_user
    own = ListingFactory(strategy__owner=admin)
    response = client.post(
        reverse("admin:marketplace_listing_changelist"),
        {"action": "feature", ACTION_CHECKBOX_NAME: [own.pk]},
        follow=True,
    )
    assert b"other than the creator" in response.content
    assert Listing.objects.get(pk=own.pk).featured is False


def test_a_workflow_step_on_one_listing_asks_then_applies(admin_client_user):
    client, _admin = admin_client_user
    listing = ListingFactory(state=ListingState.SUBMITTED)
    url = reverse("admin:marketplace_listing_workflow", args=[listing.pk, "request_changes"])
    page = client.post(url)
    assert page.status_code == 200
    done = client.post(url, {"apply": "1", "reason": "Say what the exit is"})
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:marketplace_listing_change", args=[listing.pk])
    listing.refresh_from_db()
    assert listing.state == ListingState.CHANGES_REQUESTED
    unknown = client.post(
        reverse("admin:marketplace_listing_workflow", args=[listing.pk, "explode"]), follow=True
    )
    assert b"Unknown action" in unknown.content
    assert ReviewComment.objects.filter(listing=listing, by_reviewer=True).exists()
