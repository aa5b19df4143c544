"""The monthly ledger on the database: three months of one fee + share subscription."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
from django.utils import timezone

from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import Invoice, MonthlyLedger
from tests.marketplace.factories import ListingFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db

# (month, P&L from executions, fee, profit share, commission at 20 %, payout, mark after)
MONTHS = [
    (
        datetime.date(2026, 6, 1),
        D("10000"),
        D("500.00"),
        D("2000.00"),
        D("500.00"),
        D("2000.00"),
        D("10000.00"),
    ),
    (
        datetime.date(2026, 7, 1),
        D("-6000"),
        D("500.00"),
        D("0.00"),
        D("100.00"),
        D("400.00"),
        D("10000.00"),
    ),
    (
        datetime.date(2026, 8, 1),
        D("3000"),
        D("500.00"),
        D("0.00"),
        D("100.00"),
        D("400.00"),
        D("10000.00"),
    ),
]


def test_three_months_charge_share_only_above_the_mark(settings):
    settings.MARKETPLACE_COMMISSION_PERCENT = "20"
    listing = ListingFactory(
        plan={"kind": "fee_share", "monthly_fee": D("500"), "profit_share_percent": D("20")}
    )
    subscription = services.subscription_create(
        subscriber=ProfileFactory().user, listing=listing, plan=listing.plans.get()
    )
    subscription.started_at = timezone.make_aware(datetime.datetime(2026, 6, 1, 10))
    subscription.save()
    Invoice.objects.all().delete()  # replace "today's" invoice with the three months billed
    for month, *_ in MONTHS:
        services.fee_invoice_issue(subscription=subscription, period_start=month)
    for month, pnl, fee, share, commission, payout, mark in MONTHS:
        rows = services.ledger_close_month(
            month=month, pnl_source=lambda first, last, pnl=pnl: {subscription.pk: pnl}
        )
        assert len(rows) == 1
        row = MonthlyLedger.objects.get(subscription=subscription, month=month)
        assert (row.fee, row.profit_share, row.commission, row.creator_payout) == (
            fee,
            share,
            commission,
            payout,
        )
        assert row.high_water_mark == mark
    # Closing a month again adds nothing; a share invoice exists only for the gain month.
    assert services.ledger_close_month(month=MONTHS[0][0], pnl_source=lambda a, b: {}) == []
    shares = Invoice.objects.filter(kind="profit_share")
    assert [(i.period_start, i.amount) for i in shares] == [
        (datetime.date(2026, 6, 1), D("2000.00"))
    ]


def test_current_month_cannot_be_closed():
    with pytest.raises(MarketplaceError, match="once it is over"):
        services.ledger_close_month(month=datetime.date.today(), pnl_source=lambda a, b: {})
