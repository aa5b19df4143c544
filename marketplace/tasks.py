"""Scheduled marketplace work (beat entries in marketplace/schedule.py). Thin: each calls one
service."""

from __future__ import annotations

import datetime

from celery import shared_task

from marketplace.models import Listing
from marketplace.performance import listing_stats_refresh, subscription_pnl_between
from marketplace.services import ledger_close_month, subscriptions_renew_or_lapse
from marketplace.services.billing import ist_today
from marketplace.workflow import ListingState


@shared_task
def subscriptions_renew_or_lapse_task() -> dict[str, int]:
    """Daily, before planning: invoice the next month of fee subscriptions and lapse unpaid
    ones, so the planner makes no new entries for them that day. Idempotent."""
    return subscriptions_renew_or_lapse(today=ist_today())


@shared_task
def ledger_close_month_task(month: str | None = None) -> int:
    """On the 1st (IST): close last month's ledger from executed P&L. `month` is YYYY-MM-DD of
    any day in the month to close; a month already closed is left as it is."""
    if month:
        day = datetime.date.fromisoformat(month)
    else:
        day = ist_today().replace(day=1) - datetime.timedelta(days=1)
    return len(ledger_close_month(month=day, pnl_source=subscription_pnl_between))


@shared_task
def listing_stats_refresh_task() -> int:
    """After the close: recompute verified figures and the recommended score of every listing
    that takes subscribers."""
    count = 0
    for listing in Listing.objects.filter(
        state__in=[ListingState.PUBLISHED, ListingState.SUSPENDED]
    ):
        listing_stats_refresh(listing=listing)
        count += 1
    return count
