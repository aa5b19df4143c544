"""Writes for money: fee invoices, recorded payments, lapses and the monthly revenue ledger.

There is no payment gateway. A fee plan's first month starts on credit when the trader
subscribes; each later month is invoiced when the previous one ends, and a subscription whose
fee invoice is unpaid after its period began lapses: no new entries, open positions still exit.
An admin records a payment received off-platform, which extends the paid period.
"""

from __future__ import annotations

import calendar
import datetime
import logging
from collections.abc import Callable, Mapping
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from execution.markettime import IST
from marketplace.exceptions import MarketplaceError
from marketplace.models import (
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    MonthlyLedger,
    Subscription,
    SubscriptionStatus,
)
from marketplace.revenue import MonthInput, month_charges
from marketplace.services.notify import notify_users
from marketplace.services.replan import deployments_replan
from trader.models import User
from trader.permissions import RECORD_PAYMENTS, staff_may

logger = logging.getLogger(__name__)

# subscription id -> net realised P&L of its deployments in the month
OPEN_STATUSES = [SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED, SubscriptionStatus.LAPSED]

PnlSource = Callable[[datetime.date, datetime.date], Mapping[int, Decimal]]


def ist_today() -> datetime.date:
    return timezone.now().astimezone(IST).date()


def commission_percent() -> Decimal:
    return Decimal(str(settings.MARKETPLACE_COMMISSION_PERCENT))


def add_month(day: datetime.date) -> datetime.date:
    """The same day next month, clipped to the month's length (31 Jan → 28/29 Feb)."""
    year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
    return day.replace(
        year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1])
    )


def month_bounds(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    first = month.replace(day=1)
    return first, first.replace(day=calendar.monthrange(first.year, first.month)[1])


def fee_invoice_issue(*, subscription: Subscription, period_start: datetime.date) -> Invoice:
    """Invoice one month of the subscription's fee from `period_start`; idempotent per period.

    The first period is granted at once (the subscriber has just agreed to pay); later periods
    count as paid only when an admin records the payment.
    """
    period_end = add_month(period_start) - datetime.timedelta(days=1)
    invoice, created = Invoice.objects.get_or_create(
        subscription=subscription,
        kind=InvoiceKind.FEE,
        period_start=period_start,
        defaults={"period_end": period_end, "amount": subscription.monthly_fee},
    )
    if created and subscription.paid_until is None:
        subscription.paid_until = period_end
        subscription.save(update_fields=["paid_until", "updated_at"])
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, admin: User, reference: str) -> Invoice:
    """Record a payment received outside the platform; a lapsed subscription whose fees are
    now all paid becomes active again."""
    if not staff_may(user=admin, permission=RECORD_PAYMENTS):
        raise MarketplaceError("Only an admin with the permission to record payments can.")
    reference = reference.strip()
    if not reference:
        raise MarketplaceError({"reference": "Enter the payment reference (UTR, receipt…)."})
    moved = Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.ISSUED).update(
        status=InvoiceStatus.PAID,
        paid_at=timezone.now(),
        payment_reference=reference,
        recorded_by=admin,
    )
    if not moved:
        raise MarketplaceError("Only an issued invoice can be marked paid.")
    invoice.refresh_from_db()
    subscription = Subscription.objects.select_for_update().get(pk=invoice.subscription_id)
    if invoice.kind == InvoiceKind.FEE and (
        subscription.paid_until is None or subscription.paid_until < invoice.period_end
    ):
        subscription.paid_until = invoice.period_end
        subscription.save(update_fields=["paid_until", "updated_at"])
    if subscription.status == SubscriptionStatus.LAPSED and not _overdue_fees(
        subscription, ist_today()
    ):
        subscription.status = SubscriptionStatus.ACTIVE
        subscription.save(update_fields=["status", "updated_at"])
    # A payment can let a lapsed (or renewed) subscription enter again today.
    deployments_replan(strategy_ids=[subscription.listing.strategy_id])
    return invoice


def _overdue_fees(subscription: Subscription, today: datetime.date) -> bool:
    if subscription.monthly_fee <= 0:
        return False
    if subscription.paid_until is None or subscription.paid_until < today:
        return True
    # The first month runs on credit; it still has to be paid once it is over.
    return subscription.invoices.filter(
        kind=InvoiceKind.FEE, status=InvoiceStatus.ISSUED, period_end__lt=today
    ).exists()


def _renew_terms(subscription: Subscription) -> None:
    """At renewal a subscriber moves to the plan's current price (a creator's change applies
    to existing subscribers from their next period only; they were told when it changed)."""
    plan = subscription.plan
    if plan.monthly_fee <= 0:
        return  # never turn a fee subscription into a free one mid-way: it keeps its terms
    if (subscription.monthly_fee, subscription.profit_share_percent) != (
        plan.monthly_fee,
        plan.profit_share_percent,
    ):
        subscription.monthly_fee = plan.monthly_fee
        subscription.profit_share_percent = plan.profit_share_percent
        subscription.save(update_fields=["monthly_fee", "profit_share_percent", "updated_at"])


@transaction.atomic
def subscriptions_renew_or_lapse(*, today: datetime.date) -> dict[str, int]:
    """Invoice the next month of every fee subscription whose paid period is over, and lapse
    those with an unpaid fee. Safe to run any number of times a day."""
    renewed = lapsed = 0
    due_ids = (
        Subscription.objects.filter(monthly_fee__gt=0, status__in=OPEN_STATUSES)
        .filter(
            Q(paid_until__lt=today)
            | Q(invoices__status=InvoiceStatus.ISSUED, invoices__period_end__lt=today)
        )
        .values("pk")
    )
    # Locked rows, not a DISTINCT join: PostgreSQL refuses FOR UPDATE with DISTINCT.
    due = (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("listing", "subscriber", "plan")
        .filter(pk__in=due_ids)
        .order_by("pk")
    )
    for subscription in due:
        paid_until = subscription.paid_until
        start = paid_until + datetime.timedelta(days=1) if paid_until else today
        if start <= today:
            _renew_terms(subscription)
            _, created = Invoice.objects.get_or_create(
                subscription=subscription,
                kind=InvoiceKind.FEE,
                period_start=start,
                defaults={
                    "period_end": add_month(start) - datetime.timedelta(days=1),
                    "amount": subscription.monthly_fee,
                },
            )
            renewed += int(created)
        if subscription.status == SubscriptionStatus.ACTIVE and _overdue_fees(subscription, today):
            subscription.status = SubscriptionStatus.LAPSED
            subscription.save(update_fields=["status", "updated_at"])
            lapsed += 1
            deployments_replan(strategy_ids=[subscription.listing.strategy_id])
            notify_users(
                users=[subscription.subscriber],
                listing=subscription.listing,
                subject=f"Subscription lapsed: {subscription.listing.title}",
                message=(
                    f"Your fee for “{subscription.listing.title}” is unpaid, so it makes no new "
                    "entries for you; open positions still exit as planned."
                ),
            )
    return {"invoiced": renewed, "lapsed": lapsed}


@transaction.atomic
def ledger_close_month(*, month: datetime.date, pnl_source: PnlSource) -> list[MonthlyLedger]:
    """Write the month's ledger row for every subscription open during it: fee invoiced for
    periods starting that month, profit share above the high-water mark (invoiced), platform
    commission and creator payout. A month already closed for a subscription is left as is.

    `pnl_source(first_day, last_day)` gives each subscription's realised P&L from executions.
    """
    first, last = month_bounds(month)
    if last >= ist_today():
        raise MarketplaceError("A month can be closed only once it is over.")
    start_of_next = datetime.datetime.combine(
        last + datetime.timedelta(days=1), datetime.time(), tzinfo=IST
    )
    start_of_month = datetime.datetime.combine(first, datetime.time(), tzinfo=IST)
    subscriptions = (
        Subscription.objects.select_for_update()
        .filter(started_at__lt=start_of_next)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=start_of_month))
        .exclude(ledger__month__gte=first)
        .order_by("pk")
    )
    fees = dict(
        Invoice.objects.filter(
            kind=InvoiceKind.FEE, period_start__range=(first, last), subscription__in=subscriptions
        )
        .exclude(status=InvoiceStatus.VOID)
        .values("subscription")
        .annotate(total=Sum("amount"))
        .values_list("subscription", "total")
    )
    pnl = pnl_source(first, last)
    percent = commission_percent()
    rows = []
    for subscription in subscriptions:
        charges = month_charges(
            MonthInput(
                fee=fees.get(subscription.pk, Decimal(0)),
                profit_share_percent=subscription.profit_share_percent,
                commission_percent=percent,
                pnl=pnl.get(subscription.pk, Decimal(0)),
                cumulative_pnl_before=subscription.cumulative_pnl,
                high_water_mark_before=subscription.high_water_mark,
            )
        )
        rows.append(
            MonthlyLedger(
                subscription=subscription,
                listing_id=subscription.listing_id,
                month=first,
                fee=charges.fee,
                pnl=charges.pnl,
                cumulative_pnl=charges.cumulative_pnl,
                high_water_mark=charges.high_water_mark,
                profit_share=charges.profit_share,
                commission_percent=percent,
                commission=charges.commission,
                creator_payout=charges.creator_payout,
            )
        )
        if charges.profit_share > 0:
            Invoice.objects.create(
                subscription=subscription,
                kind=InvoiceKind.PROFIT_SHARE,
                period_start=first,
                period_end=last,
                amount=charges.profit_share,
            )
        subscription.cumulative_pnl = charges.cumulative_pnl
        subscription.high_water_mark = charges.high_water_mark
        subscription.save(update_fields=["cumulative_pnl", "high_water_mark", "updated_at"])
    MonthlyLedger.objects.bulk_create(rows)
    logger.info("closed marketplace ledger for %s: %s subscriptions", first, len(rows))
    return rows
