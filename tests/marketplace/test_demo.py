from __future__ import annotations

import pytest

from marketplace import demo
from marketplace.models import Listing
from marketplace.workflow import ListingState
from trader.demo import seed_users

pytestmark = pytest.mark.django_db


def test_seed_demo_publishes_the_creators_approved_listing_once():
    users = seed_users()
    demo.seed(users)
    demo.seed(users)
    listing = Listing.objects.get()
    assert listing.creator.email == "creator@demo.local"
    assert listing.state == ListingState.PUBLISHED
    assert listing.strategy.owner == listing.creator
    assert listing.live_version.snapshot["legs"]
    approver = listing.events.get(action="approve").actor
    assert approver.is_staff and approver != listing.creator
