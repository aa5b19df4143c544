"""Reads for the marketplace. Views reach a user's objects only through `*_get_for_user`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.db.models import Avg, Count, Prefetch, Q, QuerySet, Sum
from django.http import Http404

from marketplace.models import (
    Deployment,
    Invoice,
    Listing,
    ListingVersion,
    MonthlyLedger,
    Notification,
    Plan,
    Rating,
    ReviewComment,
    Subscription,
    SubscriptionStatus,
)
from marketplace.workflow import SUBSCRIBABLE_STATES
from trader.models import User

OPEN = [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.LAPSED]

SORTS = {
    "recommended": ["-featured", "-recommended_score", "-published_at"],
    "newest": ["-published_at", "-id"],
    "subscribers": ["-subscriber_count", "-published_at"],
    "return": ["-verified_return_percent", "-published_at"],
}


def _with_counts(queryset: QuerySet[Listing]) -> QuerySet[Listing]:
    return queryset.annotate(
        subscriber_count=Count("subscriptions", filter=Q(subscriptions__status__in=OPEN)),
        average_rating=Avg("ratings__stars"),
        rating_count=Count("ratings", distinct=True),
    )


def listing_browse(
    *,
    query: str = "",
    underlying: str = "",
    pricing: str = "",
    risk: str = "",
    max_capital: Decimal | None = None,
    sort: str = "recommended",
) -> QuerySet[Listing]:
    """Published listings, filtered and sorted; a constant number of queries whatever the size
    (counts are annotated, plans prefetched in one query)."""
    listings = Listing.objects.filter(state__in=SUBSCRIBABLE_STATES).select_related(
        "underlying", "creator__profile"
    )
    if query:
        listings = listings.filter(
            Q(title__icontains=query) | Q(description__icontains=query) | Q(tags__icontains=query)
        )
    if underlying:
        listings = listings.filter(underlying__symbol=underlying)
    if pricing:
        listings = listings.filter(plans__kind=pricing, plans__is_active=True)
    if risk:
        listings = listings.filter(risk_level=risk)
    if max_capital is not None:
        listings = listings.filter(capital_required__lte=max_capital)
    # Subqueries keep the annotations correct when the plan filter joins plans.
    listings = Listing.objects.filter(pk__in=listings.values("pk")).select_related(
        "underlying", "creator__profile"
    )
    return (
        _with_counts(listings)
        .prefetch_related(Prefetch("plans", queryset=Plan.objects.filter(is_active=True)))
        .order_by(*SORTS.get(sort, SORTS["recommended"]))
    )


def listing_get_public(*, listing_id: int) -> Listing:
    """A published listing for its public page, with counts; Http404 otherwise."""
    listing = (
        _with_counts(Listing.objects.filter(pk=listing_id, state__in=SUBSCRIBABLE_STATES))
        .select_related("underlying", "creator__profile", "live_version")
        .prefetch_related(Prefetch("plans", queryset=Plan.objects.filter(is_active=True)))
        .first()
    )
    if listing is None:
        raise Http404("No such published listing.")
    return listing


def listing_get_for_user(*, user: User, listing_id: int) -> Listing:
    """A listing its creator manages (any state); Http404 for anyone else."""
    listing = (
        _with_counts(Listing.objects.filter(pk=listing_id, creator=user))
        .select_related("underlying", "strategy", "live_version")
        .first()
    )
    if listing is None:
        raise Http404("No such listing of yours.")
    return listing


def listings_of_creator(*, user: User) -> QuerySet[Listing]:
    return (
        _with_counts(Listing.objects.filter(creator=user))
        .select_related("underlying")
        .order_by("-updated_at")
    )


def review_thread(*, listing: Listing) -> QuerySet[ReviewComment]:
    return listing.comments.select_related("author__profile")


def listing_versions(*, listing: Listing) -> QuerySet[ListingVersion]:
    return listing.versions.order_by("-number")


def reviews_for_listing(*, listing: Listing, limit: int = 20) -> list[Rating]:
    return list(listing.ratings.order_by("-created_at")[:limit])


def subscription_get_for_user(*, user: User, subscription_id: int) -> Subscription:
    subscription = (
        Subscription.objects.filter(pk=subscription_id, subscriber=user)
        .select_related("listing", "plan", "version")
        .first()
    )
    if subscription is None:
        raise Http404("No such subscription of yours.")
    return subscription


def subscription_open_for(*, user: User | AnonymousUser, listing: Listing) -> Subscription | None:
    if not user.is_authenticated:
        return None
    return Subscription.objects.filter(subscriber=user, listing=listing, status__in=OPEN).first()


def subscriptions_of_user(*, user: User) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(subscriber=user)
        .select_related("listing", "plan")
        .prefetch_related(
            Prefetch("deployments", queryset=Deployment.objects.select_related("broker_account")),
            "invoices",
        )
        .order_by("-started_at")
    )


def invoices_of_user(*, user: User) -> QuerySet[Invoice]:
    return Invoice.objects.filter(subscription__subscriber=user).select_related(
        "subscription__listing"
    )


def notifications_for_user(*, user: User, limit: int = 20) -> list[Notification]:
    return list(
        Notification.objects.filter(user=user)
        .select_related("listing")
        .order_by("-created_at")[:limit]
    )


def creator_earnings(*, user: User) -> list[Mapping[str, Any]]:
    """Per month: fees, profit share, commission and payout across the creator's listings."""
    return list(
        MonthlyLedger.objects.filter(listing__creator=user)
        .values("month")
        .annotate(
            fee=Sum("fee"),
            profit_share=Sum("profit_share"),
            commission=Sum("commission"),
            payout=Sum("creator_payout"),
            subscriptions=Count("subscription", distinct=True),
        )
        .order_by("-month")
    )


def payout_rows(
    *, months: Iterable[Any] | None = None
) -> QuerySet[MonthlyLedger, Mapping[str, Any]]:
    """Ledger rows for the admins' payout CSV, one per listing and month."""
    rows = MonthlyLedger.objects.all()
    if months is not None:
        rows = rows.filter(month__in=list(months))
    return (
        rows.values(
            "month",
            "listing_id",
            "listing__title",
            "listing__creator__email",
            "listing__sebi_ra_number",
        )
        .annotate(
            subscriptions=Count("subscription", distinct=True),
            fee=Sum("fee"),
            profit_share=Sum("profit_share"),
            commission=Sum("commission"),
            payout=Sum("creator_payout"),
        )
        .order_by("month", "listing_id")
    )


@dataclass(frozen=True)
class TrackRecordDay:
    day: Any
    pnl: Decimal
    cumulative_pnl: Decimal
    cumulative_return_percent: Decimal
    drawdown_percent: Decimal


@dataclass(frozen=True)
class TrackRecord:
    mode: str  # "live" or "paper"
    days: list[TrackRecordDay]
    executions: int
    winning_days: int
    # Brokerage, taxes and fees of these executions and their gross P&L, both at the creator's
    # own size (the daily figures above are scaled to a multiplier of 1 and before costs).
    costs: Decimal | None = None
    gross_at_size: Decimal | None = None
    orders_without_rate: int = 0

    @property
    def first_day(self) -> Any:
        return self.days[0].day if self.days else None

    @property
    def last_day(self) -> Any:
        return self.days[-1].day if self.days else None

    @property
    def net_at_size(self) -> Decimal | None:
        if self.costs is None or self.gross_at_size is None:
            return None
        return self.gross_at_size - self.costs

    @property
    def total_pnl(self) -> Decimal:
        return self.days[-1].cumulative_pnl if self.days else Decimal(0)

    @property
    def cumulative_return_percent(self) -> Decimal:
        return self.days[-1].cumulative_return_percent if self.days else Decimal(0)

    @property
    def max_drawdown_percent(self) -> Decimal:
        return max((d.drawdown_percent for d in self.days), default=Decimal(0))

    @property
    def win_rate_percent(self) -> Decimal:
        if not self.days:
            return Decimal(0)
        return (Decimal(self.winning_days) * 100 / len(self.days)).quantize(Decimal("0.1"))


def track_record_from_daily(
    *, mode: str, daily: list[tuple[Any, Decimal]], executions: int, capital: Decimal
) -> TrackRecord:
    """Cumulative return and drawdown (in % of the listing's capital) from daily P&L; the curve
    itself is the one the trader's analytics draw (execution.analytics.reports.equity_curve)."""
    from execution.analytics.reports import equity_curve

    curve = equity_curve(daily)
    days = [
        TrackRecordDay(
            day=point.day,
            pnl=point.pnl,
            cumulative_pnl=point.cumulative,
            cumulative_return_percent=(point.cumulative * 100 / capital).quantize(Decimal("0.01")),
            drawdown_percent=(point.drawdown * 100 / capital).quantize(Decimal("0.01")),
        )
        for point in curve.points
    ]
    return TrackRecord(mode=mode, days=days, executions=executions, winning_days=curve.winning_days)


@dataclass(frozen=True)
class SubscribeTerms:
    """What a trader agrees to on a plan, shown before they confirm."""

    plan: Plan
    first_period_start: Any
    first_period_end: Any
    next_invoice_on: Any

    @property
    def has_fee(self) -> bool:
        return self.plan.monthly_fee > 0

    @property
    def has_share(self) -> bool:
        return self.plan.profit_share_percent > 0


def subscribe_terms(*, plan: Plan, today: Any) -> SubscribeTerms:
    """The plan's price and billing dates if the trader subscribes on `today` (IST): the first
    month runs from today and is invoiced at once; each later month is invoiced the day it
    starts (marketplace.services.billing)."""
    import datetime

    from marketplace.services.billing import add_month

    end = add_month(today) - datetime.timedelta(days=1)
    return SubscribeTerms(
        plan=plan,
        first_period_start=today,
        first_period_end=end,
        next_invoice_on=end + datetime.timedelta(days=1),
    )


@dataclass(frozen=True)
class FeeStatus:
    """A fee subscription's money in words that agree with its invoices: "paid until" counts
    only paid invoices; a month on credit shows as due."""

    paid_until: Any  # last day covered by a paid fee invoice, or None
    due: list[Invoice]


def fee_status(*, subscription: Subscription) -> FeeStatus | None:
    if subscription.monthly_fee <= 0:
        return None
    invoices = [i for i in subscription.invoices.all() if i.kind == "fee"]
    paid = [i.period_end for i in invoices if i.status == "paid"]
    return FeeStatus(
        paid_until=max(paid, default=None),
        due=sorted((i for i in invoices if i.status == "issued"), key=lambda i: i.period_start),
    )
