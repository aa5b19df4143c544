"""Verified performance, read only from the execution engine's records.

A listing's track record is what the creator's own runs of the listed strategy actually did
(positions the engine opened and closed at a broker, paper or live), scaled to a multiplier of
1. A subscription's P&L is what its deployments' runs did. Nothing here is simulated or typed in.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, Q
from django.utils import timezone

from marketplace.models import Deployment, Listing, SubscriptionStatus
from marketplace.ranking import RankingInput, recommended_score
from marketplace.selectors import TrackRecord, track_record_from_daily

DEPLOYMENT_SOURCE = "deployment"
ALLOCATION_SOURCE = "allocation"


def _scale(row: dict[str, Any]) -> Decimal:
    """How many times the listed size this position traded: the run's multiplier times the
    account's allocation (a multiplier, or fixed lots against the leg's own lots)."""
    scale = Decimal(row["run__multiplier"] or 1)
    for allocation in row["run__allocations"] or []:
        if allocation.get("account_id") != row["account_id"]:
            continue
        if allocation.get("multiplier") not in (None, ""):
            scale *= Decimal(str(allocation["multiplier"]))
        elif allocation.get("fixed_lots") and row["leg__lots"]:
            scale *= Decimal(allocation["fixed_lots"]) / Decimal(row["leg__lots"])
    return scale if scale > 0 else Decimal(1)


def _closed_positions(**filters: Any) -> list[dict[str, Any]]:
    # The same closed-position rows the trader's own analytics read (one query).
    from execution.analytics.reports import closed_position_rows

    return closed_position_rows(**filters)


def listing_track_records(*, listing: Listing) -> list[TrackRecord]:
    """The live and the paper track record (whichever exist, live first), in one query."""
    rows = _closed_positions(
        run__source=ALLOCATION_SOURCE,
        run__owner_id=listing.creator_id,
        run__strategy_version__strategy_id=listing.strategy_id,
        run__is_test=False,
    )
    daily: dict[str, dict[datetime.date, Decimal]] = {
        "live": defaultdict(Decimal),
        "paper": defaultdict(Decimal),
    }
    runs: dict[str, set[int]] = {"live": set(), "paper": set()}
    for row in rows:
        mode = "paper" if row["account__broker"] == "paper" else "live"
        pnl = (row["sell_value"] - row["buy_value"]) / _scale(row)
        daily[mode][row["run__session_date"]] += pnl
        runs[mode].add(row["run_id"])
    records = []
    for mode in ("live", "paper"):
        if runs[mode]:
            series = [
                (day, pnl.quantize(Decimal("0.01"))) for day, pnl in sorted(daily[mode].items())
            ]
            records.append(
                track_record_from_daily(
                    mode=mode,
                    daily=series,
                    executions=len(runs[mode]),
                    capital=listing.capital_required,
                )
            )
    return [_with_costs(record, listing=listing) for record in records]


def _with_costs(record: TrackRecord, *, listing: Listing) -> TrackRecord:
    """The record with the charges of its executions (execution.analytics.reports.costs_for_user,
    the trader's own cost report) over its period, for the listing's strategy and mode."""
    from dataclasses import replace

    from execution.analytics.reports import costs_for_user

    rows = [
        row
        for row in costs_for_user(user=listing.creator, start=record.first_day, end=record.last_day)
        if row.strategy_id == listing.strategy_id and row.mode == record.mode
    ]
    return replace(
        record,
        costs=sum((row.charges.total for row in rows), Decimal(0)),
        gross_at_size=sum((row.gross_pnl for row in rows), Decimal(0)),
        orders_without_rate=sum(row.orders_without_rate for row in rows),
    )


def subscription_pnl_between(first: datetime.date, last: datetime.date) -> dict[int, Decimal]:
    """Realised P&L per subscription of its deployments' runs on sessions first..last (IST)."""
    rows = _closed_positions(
        run__source=DEPLOYMENT_SOURCE,
        run__session_date__range=(first, last),
        run__is_test=False,
    )
    by_deployment: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        by_deployment[row["run__source_ref"]] += row["sell_value"] - row["buy_value"]
    subscription_of = dict(
        Deployment.objects.filter(
            pk__in=[int(ref) for ref in by_deployment if ref.isdigit()]
        ).values_list("pk", "subscription_id")
    )
    result: dict[int, Decimal] = defaultdict(Decimal)
    for ref, pnl in by_deployment.items():
        if ref.isdigit() and int(ref) in subscription_of:
            result[subscription_of[int(ref)]] += pnl
    return dict(result)


@transaction.atomic
def listing_stats_refresh(*, listing: Listing) -> Listing:
    """Recompute the verified figures and the recommended score stored on the listing."""
    records = listing_track_records(listing=listing)
    record = records[0] if records else None
    counts = listing.subscriptions.aggregate(
        ever=Count("pk"),
        retained=Count(
            "pk", filter=Q(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED])
        ),
    )
    rating = listing.ratings.aggregate(avg=Avg("stars"))["avg"]
    score = recommended_score(
        RankingInput(
            return_percent=record.cumulative_return_percent if record else Decimal(0),
            max_drawdown_percent=record.max_drawdown_percent if record else Decimal(0),
            traded_days=len(record.days) if record else 0,
            subscribers_ever=counts["ever"],
            subscribers_retained=counts["retained"],
            average_rating=Decimal(str(rating)) if rating is not None else None,
        )
    )
    Listing.objects.filter(pk=listing.pk).update(
        verified_return_percent=record.cumulative_return_percent if record else None,
        max_drawdown_percent=record.max_drawdown_percent if record else None,
        executions_count=sum(r.executions for r in records),
        track_record_is_live=bool(record and record.mode == "live"),
        recommended_score=score,
        stats_updated_at=timezone.now(),
    )
    listing.refresh_from_db()
    return listing


# Fewer subscribers than this and an aggregate would tell one subscriber's result.
MIN_SUBSCRIBERS_FOR_AGGREGATE = 3


def listing_subscribers_aggregate(
    *, listing: Listing, first: datetime.date, last: datetime.date
) -> dict[str, Any]:
    """What a creator may know of their subscribers' results on sessions first..last: how many
    traded and, once at least MIN_SUBSCRIBERS_FOR_AGGREGATE did, their total realised P&L and
    how many ended in profit. Never one subscriber's figures or runs."""
    ids = set(listing.subscriptions.values_list("pk", flat=True))
    results = [pnl for pk, pnl in subscription_pnl_between(first, last).items() if pk in ids]
    shown = len(results) >= MIN_SUBSCRIBERS_FOR_AGGREGATE
    return {
        "traded": len(results),
        "shown": shown,
        "total_pnl": sum(results, Decimal(0)) if shown else None,
        "in_profit": sum(pnl > 0 for pnl in results) if shown else None,
        "minimum": MIN_SUBSCRIBERS_FOR_AGGREGATE,
        "first": first,
        "last": last,
    }
