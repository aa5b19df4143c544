"""High-water-mark billing over random P&L paths, month by month as the ledger runs it."""

from __future__ import annotations

import datetime
from decimal import Decimal as D

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace import services
from marketplace.models import Invoice, InvoiceKind, MonthlyLedger
from marketplace.revenue import MonthInput, money, month_charges
from tests.marketplace.factories import ListingFactory
from tests.trader.factories import ProfileFactory

rupees = st.decimals(min_value=D("-500000"), max_value=D("500000"), places=2)
paths = st.lists(rupees, min_size=1, max_size=24)
share_percents = st.decimals(min_value=D(0), max_value=D(50), places=2)
commission_percents = st.decimals(min_value=D(0), max_value=D(100), places=2)
fees = st.decimals(min_value=D(0), max_value=D(20000), places=2)
# Each database example closes up to six months: a few examples are enough there.
settings_db = settings(max_examples=15, deadline=None)


def _run_path(path, *, share, commission, fee):
    cumulative, mark = D("0.00"), D("0.00")
    months = []
    for pnl in path:
        charges = month_charges(
            MonthInput(
                fee=fee,
                profit_share_percent=share,
                commission_percent=commission,
                pnl=pnl,
                cumulative_pnl_before=cumulative,
                high_water_mark_before=mark,
            )
        )
        months.append((charges, mark))
        cumulative, mark = charges.cumulative_pnl, charges.high_water_mark
    return months


@settings(max_examples=200, deadline=None)
@given(path=paths, share=share_percents, commission=commission_percents, fee=fees)
def test_profit_share_is_paid_once_on_each_rupee_above_the_best_month(path, share, commission, fee):
    months = _run_path(path, share=share, commission=commission, fee=fee)
    best = D("0.00")
    running = D("0.00")
    for pnl, (charges, mark_before) in zip(path, months, strict=True):
        running += pnl
        assert charges.cumulative_pnl == running
        new_best = max(best, running)
        # The mark is the best cumulative P&L so far (never below the start), share or not.
        assert charges.high_water_mark == new_best
        # A share is due only on what the month added above the previous best.
        expected_base = new_best - best if share > 0 else D("0.00")
        assert charges.share_base == expected_base
        assert charges.profit_share == money(expected_base * share / 100)
        if running <= mark_before:
            assert charges.profit_share == 0
        # Money splits exactly: what the subscriber pays is the commission plus the payout.
        assert charges.fee + charges.profit_share == charges.commission + charges.creator_payout
        assert charges.commission >= 0 and charges.creator_payout >= 0
        assert charges.commission == money(charges.total_charged * commission / 100)
        best = new_best
    # Over the whole path, the shares add up to the share of the best cumulative profit (to
    # the paisa per month of rounding), never to more: a loss is recovered before paying again.
    total_share = sum(c.profit_share for c, _ in months)
    exact = best * share / 100 if share > 0 else D(0)
    assert abs(total_share - exact) <= D("0.005") * len(months)


@settings(max_examples=100, deadline=None)
@given(path=paths, share=share_percents.filter(lambda s: s > 0))
def test_a_loss_then_the_same_gain_back_charges_nothing(path, share):
    """Whatever happened before, losing X and then making X back owes no share."""
    months = _run_path(
        [*path, D("-1000.00"), D("1000.00")], share=share, commission=D(20), fee=D(0)
    )
    (before, _), (loss, _), (back, _) = months[-3:]
    assert loss.profit_share == back.profit_share == 0
    assert back.high_water_mark == before.high_water_mark


@pytest.mark.django_db
@time_machine.travel(datetime.datetime(2026, 3, 1, 12, tzinfo=datetime.UTC), tick=False)
def test_closing_random_months_on_the_database_keeps_the_mark_and_bills_shares(settings):
    """The ledger service over a random 1-6 month P&L path: each row matches the pure
    arithmetic, a share invoice exists exactly for the months that charged one, and the
    subscription carries the final mark."""
    settings.MARKETPLACE_COMMISSION_PERCENT = "20"
    listing = ListingFactory(
        plan={"kind": "share", "monthly_fee": D("0"), "profit_share_percent": D("25")}
    )
    subscription = services.subscription_create(
        subscriber=ProfileFactory().user, listing=listing, plan=listing.plans.get()
    )
    subscription.started_at = datetime.datetime(2025, 1, 1, 10, tzinfo=datetime.UTC)
    subscription.save()
    months = [datetime.date(2025, m, 1) for m in range(1, 7)]

    @settings_db
    @given(path=st.lists(rupees, min_size=1, max_size=6))
    def check(path):
        from django.db import transaction

        with transaction.atomic():
            expected = _run_path(path, share=D(25), commission=D(20), fee=D(0))
            for month, pnl in zip(months, path, strict=False):
                services.ledger_close_month(
                    month=month, pnl_source=lambda a, b, pnl=pnl: {subscription.pk: pnl}
                )
            rows = list(MonthlyLedger.objects.filter(subscription=subscription).order_by("month"))
            assert [(r.pnl, r.high_water_mark, r.profit_share) for r in rows] == [
                (c.pnl, c.high_water_mark, c.profit_share) for c, _ in expected
            ]
            invoiced = Invoice.objects.filter(
                subscription=subscription, kind=InvoiceKind.PROFIT_SHARE
            ).order_by("period_start")
            assert [(i.period_start, i.amount) for i in invoiced] == [
                (month, c.profit_share)
                for month, (c, _) in zip(months, expected, strict=False)
                if c.profit_share > 0
            ]
            subscription.refresh_from_db()
            assert subscription.high_water_mark == expected[-1][0].high_water_mark
            assert subscription.cumulative_pnl == expected[-1][0].cumulative_pnl
            transaction.set_rollback(True)

    check()
