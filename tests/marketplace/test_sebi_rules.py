"""SEBI's marketplace rules (reference/india-market.md § 0.5): no guaranteed or consistent
return claims, track records only from platform executions with dates, costs and drawdown, and a
PaRRVA reference for black-box (RA) listings."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from marketplace import services
from marketplace.claims import return_claims
from marketplace.exceptions import MarketplaceError
from marketplace.models import Listing
from marketplace.performance import listing_track_records
from marketplace.workflow import ListingState
from tests.conftest import staff_client_for
from tests.execution.factories import SuperuserFactory
from tests.marketplace.factories import ListingFactory, StrategyFactory
from tests.marketplace.test_http import _executions

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _publish_form(strategy, **overrides):
    data = {
        "strategy": strategy.pk,
        "title": "Weekly condor",
        "description": "Sells a NIFTY iron condor; loses money in strong trends.",
        "tags": "condor",
        "risk_level": "high",
        "capital_required": "200000",
        "min_multiplier": "1",
        "visibility": "subscribe_only",
        "sebi_ra_number": "INH000098765",
        "plan_kind": "free",
        "monthly_fee": "0",
        "profit_share_percent": "0",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Guaranteed returns every month", "Guaranteed returns"),
        ("Consistent profits, week after week", "Consistent profits"),
        ("assured 5% monthly returns", "assured 5% monthly returns"),
        ("A risk-free way to trade", "risk-free"),
        ("No loss since launch", "No loss"),
    ],
)
def test_a_return_claim_is_refused_at_submission_naming_the_phrase(text, phrase):
    strategy = StrategyFactory()
    page = _client(strategy.owner).post(
        reverse("marketplace:listing-new"), _publish_form(strategy, description=text)
    )
    assert page.status_code == 200
    assert f"“{phrase}”" in page.text and "SEBI does not allow" in page.text
    assert not Listing.objects.exists()


def test_honest_descriptions_pass_the_screen():
    assert return_claims("No guarantee of returns. A consistent exit rule; high risk.") == []


def test_a_claim_that_got_in_is_caught_at_submit_and_in_review():
    listing = ListingFactory(state=ListingState.DRAFT)
    Listing.objects.filter(pk=listing.pk).update(description="Guaranteed profit every week.")
    creator = _client(listing.creator)
    page = creator.post(
        reverse("marketplace:listing-action", args=[listing.pk, "submit"]), follow=True
    )
    assert "“Guaranteed profit”" in page.text
    listing.refresh_from_db()
    assert listing.state == ListingState.DRAFT

    Listing.objects.filter(pk=listing.pk).update(state=ListingState.SUBMITTED)
    reviewer = staff_client_for(SuperuserFactory())
    page = reviewer.post(
        reverse("admin:marketplace_listing_workflow", args=[listing.pk, "approve"]),
        {"apply": "1", "reason": ""},
        follow=True,
    )
    assert "“Guaranteed profit”" in page.text
    listing.refresh_from_db()
    assert listing.state == ListingState.SUBMITTED
    with pytest.raises(MarketplaceError):
        services.listing_update(
            listing=ListingFactory(state=ListingState.DRAFT, strategy=listing.strategy),
            user=listing.creator,
            title="Sure-shot straddle",
            description="x",
            tags="",
            risk_level="low",
            capital_required=100000,
            min_multiplier=1,
            visibility="copy_allowed",
            sebi_ra_number="",
        )


def test_a_parrva_reference_is_recorded_and_shown():
    strategy = StrategyFactory()
    creator = _client(strategy.owner)
    bad = creator.post(
        reverse("marketplace:listing-new"), _publish_form(strategy, parrva_reference="<x>")
    )
    assert bad.status_code == 200 and not Listing.objects.exists()
    creator.post(
        reverse("marketplace:listing-new"),
        _publish_form(strategy, parrva_reference="PRV/2026/000123"),
    )
    listing = Listing.objects.get()
    assert listing.parrva_reference == "PRV/2026/000123"
    Listing.objects.filter(pk=listing.pk).update(
        state=ListingState.PUBLISHED, live_version=listing.versions.get()
    )
    page = Client().get(reverse("marketplace:listing", args=[listing.pk]))
    assert "verified by PaRRVA, reference <strong>PRV/2026/000123</strong>" in page.text


def test_the_track_record_is_dated_with_costs_and_drawdown():
    listing = ListingFactory()
    _executions(listing, days=3)
    page = Client().get(reverse("marketplace:listing", args=[listing.pk])).text
    assert "on this platform of the creator's own runs" in page
    (record, *_) = listing_track_records(listing=listing)
    assert f"{record.first_day:%d %b %Y} to {record.last_day:%d %b %Y}" in page
    assert record.first_day < record.last_day
    assert "Maximum drawdown" in page
    assert "Costs (brokerage, taxes and fees)" in page and "after costs" in page
    assert "Past results do not guarantee future returns" in page
