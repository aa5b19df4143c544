"""Creator and subscriber pages through HTTP, with the three personas: editing a draft,
commenting, new versions of a live listing and their submission, and a subscriber pausing,
resuming, cancelling, stopping a deployment and copying. Each post is checked in the page's
message and in the database; another user's objects are 404."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from marketplace import services
from marketplace.models import (
    Deployment,
    Listing,
    ListingEvent,
    ListingVersion,
    ReviewComment,
    Subscription,
)
from marketplace.workflow import ListingState
from tests.marketplace.conftest import client_for
from tests.marketplace.factories import ListingFactory, PaperAccountFactory, StrategyFactory
from tests.trader.factories import ProfileFactory
from trader.models import StrategyVersion

pytestmark = pytest.mark.django_db

TERMS = {
    "title": "Wider straddle",
    "description": "Sells the straddle two strikes out.",
    "tags": "straddle",
    "risk_level": "high",
    "capital_required": "200000",
    "min_multiplier": "2",
    "visibility": "copy_allowed",
    "sebi_ra_number": "",
    "parrva_reference": "",
}


def _messages(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def test_the_creator_edits_a_draft_and_a_stranger_cannot(stranger_client):
    listing = ListingFactory(state=ListingState.DRAFT)
    creator = client_for(listing.creator)
    page = creator.get(reverse("marketplace:listing-edit", args=[listing.pk]))
    assert page.status_code == 200 and listing.title.encode() in page.content
    response = creator.post(reverse("marketplace:listing-edit", args=[listing.pk]), TERMS)
    assert response.status_code == 302
    listing.refresh_from_db()
    assert (listing.title, listing.min_multiplier, listing.risk_level) == (
        "Wider straddle",
        2,
        "high",
    )
    assert ListingEvent.objects.filter(listing=listing, action="edit").exists()
    assert (
        stranger_client.post(reverse("marketplace:listing-edit", args=[listing.pk]), TERMS)
    ).status_code == 404


def test_a_published_listing_cannot_be_edited_and_says_why():
    listing = ListingFactory(state=ListingState.PUBLISHED)
    creator = client_for(listing.creator)
    page = creator.post(reverse("marketplace:listing-edit", args=[listing.pk]), TERMS)
    assert page.status_code == 200 and b"only as a draft" in page.content
    listing.refresh_from_db()
    assert listing.title != "Wider straddle"


def test_comments_need_words_and_are_kept_in_the_thread():
    listing = ListingFactory(state=ListingState.SUBMITTED)
    creator = client_for(listing.creator)
    url = reverse("marketplace:comment", args=[listing.pk])
    empty = creator.post(url, {"body": ""}, follow=True)
    assert "Write a comment first." in _messages(empty)
    creator.post(url, {"body": "The exit is at 15:10 to avoid the close."})
    (comment,) = ReviewComment.objects.filter(listing=listing)
    assert comment.author == listing.creator and not comment.by_reviewer


def test_a_new_version_of_a_live_listing_is_drafted_submitted_once_and_kept_off_the_live(
    stranger_client,
):
    listing = ListingFactory(state=ListingState.PUBLISHED)
    creator = client_for(listing.creator)
    new_url = reverse("marketplace:version-new", args=[listing.pk])
    unchanged = creator.post(new_url, {"notes": "nothing new"}, follow=True)
    assert "has not changed" in _messages(unchanged)
    strategy = listing.strategy
    changed = StrategyVersion.objects.create(
        strategy=strategy,
        number=2,
        entry_time=datetime.time(9, 25),
        exit_time=datetime.time(15, 0),
        effective_from=datetime.date(2026, 1, 1),
    )
    strategy.current_version = changed
    strategy.save(update_fields=["current_version"])
    drafted = creator.post(new_url, {"notes": "Entry five minutes later"}, follow=True)
    assert "New draft version saved" in _messages(drafted)
    version = ListingVersion.objects.get(listing=listing, number=2)
    assert version.strategy_version == changed and version.notes == "Entry five minutes later"
    again = creator.post(new_url, {"notes": "one more"}, follow=True)
    assert "already in review" in _messages(again)

    submit = reverse("marketplace:version-submit", args=[version.pk])
    assert stranger_client.post(submit).status_code == 404
    done = creator.post(submit, follow=True)
    assert "submitted for review" in _messages(done)
    version.refresh_from_db()
    assert version.state == "submitted"
    twice = creator.post(submit, follow=True)
    assert "Only a draft version" in _messages(twice)
    listing.refresh_from_db()
    assert listing.live_version.number == 1  # subscribers stay on the live version


def test_a_draft_takes_no_versions_until_its_first_is_approved():
    listing = ListingFactory(state=ListingState.DRAFT)
    response = client_for(listing.creator).post(
        reverse("marketplace:version-new", args=[listing.pk]), {"notes": ""}, follow=True
    )
    assert "Edit the listing itself" in _messages(response)
    assert listing.versions.count() == 1


@pytest.fixture
def subscribed():
    listing = ListingFactory()
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    return trader, subscription


def test_a_subscriber_pauses_resumes_and_cancels_and_a_stranger_cannot(subscribed, stranger_client):
    trader, subscription = subscribed
    client = client_for(trader)

    def act(action):
        url = reverse("marketplace:subscription-action", args=[subscription.pk, action])
        return client.post(url, follow=True)

    assert (
        stranger_client.post(
            reverse("marketplace:subscription-action", args=[subscription.pk, "pause"])
        ).status_code
        == 404
    )
    assert "Paused" in _messages(act("pause"))
    assert Subscription.objects.get(pk=subscription.pk).status == "paused"
    assert "Resumed" in _messages(act("resume"))
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert act("explode").status_code == 404
    assert "Cancelled" in _messages(act("cancel"))
    assert Subscription.objects.get(pk=subscription.pk).status == "cancelled"
    refused = act("resume")
    assert Subscription.objects.get(pk=subscription.pk).status == "cancelled"
    assert _messages(refused)  # said in words, nothing changed


def test_a_subscriber_stops_a_deployment_and_only_their_own(subscribed, stranger_client):
    trader, subscription = subscribed
    account = PaperAccountFactory(owner=trader)
    deployment = services.deployment_create(
        subscription=subscription, user=trader, broker_account=account, multiplier=1
    )
    url = reverse("marketplace:deployment-stop", args=[deployment.pk])
    assert stranger_client.post(url).status_code == 404
    response = client_for(trader).post(url, follow=True)
    assert "Stopped on that account" in _messages(response)
    deployment.refresh_from_db()
    assert not deployment.is_active
    assert Deployment.objects.filter(pk=deployment.pk).exists()


def test_copying_a_copy_allowed_listing_makes_a_draft_and_a_subscribe_only_one_refuses():
    listing = ListingFactory()
    trader = ProfileFactory().user
    subscription = services.subscription_create(
        subscriber=trader, listing=listing, plan=listing.plans.get()
    )
    client = client_for(trader)
    copied = client.post(reverse("marketplace:copy", args=[subscription.pk]))
    assert copied.status_code == 302 and copied["Location"] == reverse("strategies:list")
    copy = trader.strategies.get()
    assert copy.status == "draft" and copy.current_version.legs.count() == 2

    hidden = ListingFactory(
        strategy=StrategyFactory(), visibility="subscribe_only", sebi_ra_number="INH000012345"
    )
    other = services.subscription_create(subscriber=trader, listing=hidden, plan=hidden.plans.get())
    refused = client.post(reverse("marketplace:copy", args=[other.pk]), follow=True)
    assert refused.redirect_chain[-1][0] == reverse("marketplace:subscription", args=[other.pk])
    assert _messages(refused)
    assert trader.strategies.count() == 1
    assert Listing.objects.get(pk=hidden.pk).visibility == "subscribe_only"
