"""Marketplace money paths as people and the scheduler reach them: an admin recording a payment
and downloading the payout CSV in Django admin, the daily renew/lapse task over month ends, and
the month close from executed P&L. Every date is pinned (time-machine)."""

from __future__ import annotations

import csv
import datetime
import io
import itertools
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from execution.markettime import IST
from execution.models import Position
from marketplace import services
from marketplace.exceptions import MarketplaceError
from marketplace.models import (
    Deployment,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    MonthlyLedger,
    Notification,
    Subscription,
    SubscriptionStatus,
)
from marketplace.services.billing import add_month
from marketplace.tasks import ledger_close_month_task, subscriptions_renew_or_lapse_task
from tests.execution.engine_factories import RunFactory
from tests.marketplace.conftest import client_for
from tests.marketplace.factories import ListingFactory, PaperAccountFactory
from tests.trader.factories import ProfileFactory

pytestmark = pytest.mark.django_db


def _at(day: datetime.date, hour: int = 7):
    """Pin the clock to `day` at `hour` IST (the daily task runs before planning)."""
    return time_machine.travel(datetime.datetime.combine(day, datetime.time(hour), IST), tick=False)


def _subscribe(listing, *, on: datetime.date, subscriber=None):
    with _at(on):
        return services.subscription_create(
            subscriber=subscriber or ProfileFactory().user,
            listing=listing,
            plan=listing.plans.get(),
        )


# --- recording a payment -------------------------------------------------------------------
def test_admin_records_payment_and_the_lapsed_subscription_is_active_again(
    admin_client_user, mailoutbox, django_capture_on_commit_callbacks
):
    client, admin = admin_client_user
    listing = ListingFactory(plan={"kind": "fee", "monthly_fee": D("750")})
    subscription = _subscribe(listing, on=datetime.date(2026, 6, 10))
    assert subscription.paid_until == datetime.date(2026, 7, 9)  # first month on credit
    with _at(datetime.date(2026, 7, 10)), django_capture_on_commit_callbacks(execute=True):
        assert subscriptions_renew_or_lapse_task() == {"invoiced": 1, "lapsed": 1}
    subscription.refresh_from_db()
    assert Notification.objects.filter(user=subscription.subscriber).count() == 1
    assert subscription.status == SubscriptionStatus.LAPSED
    assert [m.to for m in mailoutbox] == [[subscription.subscriber.email]]
    assert "lapsed" in mailoutbox[0].subject.lower()
    invoices = list(Invoice.objects.order_by("period_start"))
    assert [(i.period_start, i.period_end, i.amount) for i in invoices] == [
        (datetime.date(2026, 6, 10), datetime.date(2026, 7, 9), D("750.00")),
        (datetime.date(2026, 7, 10), datetime.date(2026, 8, 9), D("750.00")),
    ]
    changelist = reverse("admin:marketplace_invoice_changelist")
    selected = {"action": "mark_paid", "_selected_action": [i.pk for i in invoices]}

    with _at(datetime.date(2026, 7, 11), hour=11):
        # The action asks for the reference first, and refuses a blank one.
        page = client.post(changelist, selected)
        assert page.status_code == 200 and b"Record payment" in page.content
        page = client.post(changelist, {**selected, "apply": "1", "reference": "  "})
        assert page.status_code == 200 and b"This field is required" in page.content
        assert not Invoice.objects.filter(status=InvoiceStatus.PAID).exists()
        # A stranger to the admin cannot record anything.
        stranger = client_for(ProfileFactory().user)
        refused = stranger.post(changelist, {**selected, "apply": "1", "reference": "UTR1"})
        assert refused.status_code == 302 and "/login/" in refused["Location"]
        assert not Invoice.objects.filter(status=InvoiceStatus.PAID).exists()

        done = client.post(changelist, {**selected, "apply": "1", "reference": " UTR998877 "})
        assert done.status_code == 302
    paid = list(Invoice.objects.order_by("period_start"))
    assert {(i.status, i.payment_reference, i.recorded_by_id) for i in paid} == {
        (InvoiceStatus.PAID, "UTR998877", admin.pk)
    }
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.paid_until == datetime.date(2026, 8, 9)
    # Recording again changes nothing: a paid invoice keeps its first record.
    first_paid_at = paid[0].paid_at
    with _at(datetime.date(2026, 7, 12), hour=11):
        client.post(changelist, {**selected, "apply": "1", "reference": "UTR-AGAIN"})
    again = Invoice.objects.get(pk=paid[0].pk)
    assert (again.payment_reference, again.paid_at) == ("UTR998877", first_paid_at)


def test_paying_late_reactivates_only_once_the_current_period_is_paid(admin_client_user):
    """A lapsed subscription is billed one period past what was paid, not one per month
    missed; paying those invoices after that period has ended still leaves it lapsed, until
    the next daily run bills the current period and that is paid too."""
    _, admin = admin_client_user
    listing = ListingFactory(plan={"kind": "fee", "monthly_fee": D("300")})
    subscription = _subscribe(listing, on=datetime.date(2026, 1, 31))
    for day in (datetime.date(2026, 2, 28), datetime.date(2026, 3, 31)):
        with _at(day):
            subscriptions_renew_or_lapse_task()
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.LAPSED
    # 31 Jan-27 Feb (on credit) and 28 Feb-27 Mar: no invoice piles up while lapsed.
    assert list(
        Invoice.objects.order_by("period_start").values_list("period_start", flat=True)
    ) == [
        datetime.date(2026, 1, 31),
        datetime.date(2026, 2, 28),
    ]
    oldest, second = Invoice.objects.order_by("period_start")
    with _at(datetime.date(2026, 4, 2)):
        with pytest.raises(MarketplaceError, match="Only an admin"):
            services.invoice_mark_paid(
                invoice=oldest, admin=subscription.subscriber, reference="UTR3"
            )
        with pytest.raises(MarketplaceError, match="payment reference"):
            services.invoice_mark_paid(invoice=oldest, admin=admin, reference=" ")
        services.invoice_mark_paid(invoice=oldest, admin=admin, reference="UTR1")
        with pytest.raises(MarketplaceError, match="Only an issued invoice"):
            services.invoice_mark_paid(invoice=oldest, admin=admin, reference="UTR2")
        services.invoice_mark_paid(invoice=second, admin=admin, reference="UTR4")
        subscription.refresh_from_db()
        assert subscription.paid_until == datetime.date(2026, 3, 27)
        assert subscription.status == SubscriptionStatus.LAPSED
    with _at(datetime.date(2026, 4, 3)):
        assert subscriptions_renew_or_lapse_task() == {"invoiced": 1, "lapsed": 0}
        current = Invoice.objects.get(status=InvoiceStatus.ISSUED)
        assert (current.period_start, current.period_end) == (
            datetime.date(2026, 3, 28),
            datetime.date(2026, 4, 27),
        )
        services.invoice_mark_paid(invoice=current, admin=admin, reference="UTR5")
    subscription.refresh_from_db()
    assert subscription.status == SubscriptionStatus.ACTIVE
    assert subscription.paid_until == datetime.date(2026, 4, 27)


# --- daily renew / lapse -------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=datetime.date(2024, 1, 1), max_value=datetime.date(2030, 12, 31)))
def test_add_month_is_the_same_day_next_month_clipped_to_its_end(day):
    nxt = add_month(day)
    assert (nxt.year * 12 + nxt.month) - (day.year * 12 + day.month) == 1
    assert nxt.day == day.day or (nxt.day < day.day and (nxt + datetime.timedelta(1)).day == 1)


def test_daily_task_over_three_months_bills_contiguous_periods_and_lapses_only_the_unpaid(
    admin_client_user,
):
    """Run the daily task every day from 31 Jan to 30 Apr 2026 for four subscriptions: one
    paying each new invoice the day it is issued, one never paying, one paused, one free. The
    paying one's periods follow each other without gap or overlap and it never lapses; the
    unpaid one lapses once, the day after its first month; the paused one is invoiced but
    never lapsed (it makes no entries anyway); the free one is never invoiced."""
    _, admin = admin_client_user
    start = datetime.date(2026, 1, 31)
    fee_listing = ListingFactory(plan={"kind": "fee", "monthly_fee": D("500")})
    free_listing = ListingFactory()
    payer = _subscribe(fee_listing, on=start)
    unpaid = _subscribe(fee_listing, on=start)
    paused = _subscribe(fee_listing, on=start)
    Subscription.objects.filter(pk=paused.pk).update(status=SubscriptionStatus.PAUSED)
    free = _subscribe(free_listing, on=start)
    lapsed_on = {}
    day = start
    while day <= datetime.date(2026, 4, 30):
        with _at(day):
            subscriptions_renew_or_lapse_task()
            for invoice in Invoice.objects.filter(subscription=payer, status="issued"):
                services.invoice_mark_paid(invoice=invoice, admin=admin, reference=f"UTR{day}")
        for sub in (payer, unpaid, paused):
            status = Subscription.objects.get(pk=sub.pk).status
            if status == SubscriptionStatus.LAPSED:
                lapsed_on.setdefault(sub.pk, day)
        day += datetime.timedelta(days=1)

    periods = list(
        Invoice.objects.filter(subscription=payer).values_list("period_start", "period_end")
    )
    periods.sort()
    assert periods[0][0] == start and periods[-1][1] >= datetime.date(2026, 4, 30)
    for (_, end), (following, _) in itertools.pairwise(periods):
        assert following == end + datetime.timedelta(days=1)
    assert [p[0] for p in periods] == [
        datetime.date(2026, 1, 31),
        datetime.date(2026, 2, 28),
        datetime.date(2026, 3, 28),
        datetime.date(2026, 4, 28),
    ]
    assert lapsed_on == {unpaid.pk: datetime.date(2026, 2, 28)}
    assert Subscription.objects.get(pk=paused.pk).status == SubscriptionStatus.PAUSED
    # Unpaid ones are billed one period past what was paid, and no more piles up.
    assert Invoice.objects.filter(subscription=paused).count() == 2
    assert Invoice.objects.filter(subscription=unpaid).count() == 2
    assert not Invoice.objects.filter(subscription=free).exists()


# --- month close from executions -----------------------------------------------------------
def _closed_trade(subscription, *, day: datetime.date, pnl: D, is_test=False, open_=False):
    """A deployment run of `subscription` on `day` whose position made `pnl` (closed)."""
    deployment = subscription.deployments.first() or Deployment.objects.create(
        subscription=subscription,
        broker_account=PaperAccountFactory(owner=subscription.subscriber),
        multiplier=1,
    )
    run = RunFactory(
        strategy_version=subscription.listing.strategy.current_version,
        owner=subscription.subscriber,
        session_date=day,
        source="deployment",
        source_ref=str(deployment.pk),
        is_test=is_test,
    )
    Position.objects.create(
        run=run,
        account=deployment.broker_account,
        owner=subscription.subscriber,
        exchange="NFO",
        tradingsymbol="NIFTY26OCT24000CE",
        net_quantity=-75 if open_ else 0,
        sell_quantity=75,
        buy_quantity=0 if open_ else 75,
        sell_value=D("7500.00") + max(pnl, D(0)),
        buy_value=D("0") if open_ else D("7500.00") - min(pnl, D(0)),
    )
    return run


def test_month_close_task_on_the_first_bills_last_month_from_executed_pnl(settings):
    settings.MARKETPLACE_COMMISSION_PERCENT = "20"
    listing = ListingFactory(
        plan={"kind": "fee_share", "monthly_fee": D("1000"), "profit_share_percent": D("20")}
    )
    gainer = _subscribe(listing, on=datetime.date(2026, 9, 15))
    loser = _subscribe(listing, on=datetime.date(2026, 9, 15))
    Subscription.objects.filter(pk__in=[gainer.pk, loser.pk]).update(
        started_at=datetime.datetime(2026, 9, 15, 10, tzinfo=IST)
    )
    for sub in (gainer, loser):
        services.fee_invoice_issue(subscription=sub, period_start=datetime.date(2026, 10, 15))
    october = datetime.date(2026, 10, 14)
    _closed_trade(gainer, day=october, pnl=D("5000"))
    _closed_trade(gainer, day=datetime.date(2026, 10, 20), pnl=D("-1000"))
    # Not October's realised P&L: a test run, a position still open, a trade in November.
    _closed_trade(gainer, day=datetime.date(2026, 10, 15), pnl=D("90000"), is_test=True)
    _closed_trade(gainer, day=datetime.date(2026, 10, 16), pnl=D("70000"), open_=True)
    _closed_trade(gainer, day=datetime.date(2026, 11, 2), pnl=D("80000"))
    _closed_trade(loser, day=october, pnl=D("-2500"))

    with _at(datetime.date(2026, 10, 1), hour=1):
        assert ledger_close_month_task() == 2  # September: the first month's fee, no P&L
    with _at(datetime.date(2026, 11, 1), hour=1):
        assert ledger_close_month_task() == 2
        assert ledger_close_month_task() == 0  # already closed: left as it is
        with pytest.raises(MarketplaceError, match="once it is over"):
            ledger_close_month_task(month="2026-11-15")
    september = MonthlyLedger.objects.filter(month=datetime.date(2026, 9, 1))
    assert {(r.fee, r.pnl, r.profit_share) for r in september} == {
        (D("1000.00"), D("0.00"), D("0.00"))
    }
    september.delete()
    rows = {r.subscription_id: r for r in MonthlyLedger.objects.all()}
    assert {r.month for r in rows.values()} == {datetime.date(2026, 10, 1)}
    # Fees of periods starting in October: the second month (15 Oct) of each subscription.
    gain, loss = rows[gainer.pk], rows[loser.pk]
    assert (gain.pnl, gain.fee, gain.profit_share) == (D("4000.00"), D("1000.00"), D("800.00"))
    assert (gain.commission, gain.creator_payout) == (D("360.00"), D("1440.00"))
    assert (loss.pnl, loss.profit_share, loss.high_water_mark) == (
        D("-2500.00"),
        D("0.00"),
        D("0.00"),
    )
    assert (loss.commission, loss.creator_payout) == (D("200.00"), D("800.00"))
    share = Invoice.objects.get(kind=InvoiceKind.PROFIT_SHARE)
    assert (share.subscription_id, share.amount, share.period_start) == (
        gainer.pk,
        D("800.00"),
        datetime.date(2026, 10, 1),
    )
    gainer.refresh_from_db()
    assert (gainer.cumulative_pnl, gainer.high_water_mark) == (D("4000.00"), D("4000.00"))


# --- payout CSV ----------------------------------------------------------------------------
def _csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # spreadsheets open it as UTF-8 (the rupee, the minus)
    return list(csv.DictReader(io.StringIO(text[1:])))


def test_payout_csv_sums_each_listing_for_the_selected_months_only(admin_client_user, settings):
    settings.MARKETPLACE_COMMISSION_PERCENT = "10"
    client, _ = admin_client_user
    a = ListingFactory(plan={"kind": "fee", "monthly_fee": D("400")}, sebi_ra_number="INH000012345")
    b = ListingFactory(plan={"kind": "share", "monthly_fee": D("0"), "profit_share_percent": 30})
    subs = [
        _subscribe(a, on=datetime.date(2026, 7, 1)),
        _subscribe(a, on=datetime.date(2026, 7, 1)),
        _subscribe(b, on=datetime.date(2026, 7, 1)),
    ]
    Subscription.objects.update(started_at=datetime.datetime(2026, 7, 1, 10, tzinfo=IST))
    for period in (datetime.date(2026, 8, 1), datetime.date(2026, 9, 1)):
        for sub in subs[:2]:
            services.fee_invoice_issue(subscription=sub, period_start=period)
    pnl = {
        datetime.date(2026, 8, 1): {subs[2].pk: D("10000")},
        datetime.date(2026, 9, 1): {subs[2].pk: D("2000")},
    }
    with _at(datetime.date(2026, 10, 5)):
        for month in (datetime.date(2026, 7, 1), *pnl):
            services.ledger_close_month(
                month=month, pnl_source=lambda f, _l, m=month: pnl.get(m, {})
            )
    august = MonthlyLedger.objects.filter(month=datetime.date(2026, 8, 1))
    changelist = reverse("admin:marketplace_monthlyledger_changelist")
    response = client.post(
        changelist, {"action": "payout_csv", "_selected_action": [august.first().pk]}
    )
    rows = _csv(response)
    assert [(r["Month"], r["Listing ID"]) for r in rows] == [
        ("Aug 2026", str(a.pk)),
        ("Aug 2026", str(b.pk)),
    ]
    row_a, row_b = rows
    assert (row_a["Subscriptions"], row_a["Fees"], row_a["Profit share"]) == (
        "2",
        "₹800.00",
        "₹0.00",
    )
    assert (row_a["Platform commission"], row_a["Creator payout"]) == ("₹80.00", "₹720.00")
    assert (row_a["SEBI RA number"], row_a["Creator's email"]) == ("INH000012345", a.creator.email)
    assert (row_b["Subscriptions"], row_b["Profit share"]) == ("1", "₹3,000.00")
    assert (row_b["Platform commission"], row_b["Creator payout"]) == ("₹300.00", "₹2,700.00")
    # Both months at once: September's share is only on the 2,000 above August's mark.
    both = _csv(
        client.post(
            changelist,
            {
                "action": "payout_csv",
                "_selected_action": list(MonthlyLedger.objects.values_list("pk", flat=True)),
            },
        )
    )
    assert [r["Month"] for r in both] == ["Jul 2026"] * 2 + ["Aug 2026"] * 2 + ["Sep 2026"] * 2
    assert both[-1]["Profit share"] == "₹600.00"
    # Not for traders.
    stranger = client_for(ProfileFactory().user)
    refused = stranger.post(changelist, {"action": "payout_csv", "_selected_action": [1]})
    assert refused.status_code == 302 and "/login/" in refused["Location"]


def test_nightly_stats_refresh_covers_only_listings_that_take_subscribers():
    from marketplace.tasks import listing_stats_refresh_task
    from marketplace.workflow import ListingState

    published = ListingFactory()
    suspended = ListingFactory(state=ListingState.SUSPENDED)
    draft = ListingFactory(state=ListingState.DRAFT)
    with _at(datetime.date(2026, 11, 20), hour=16):
        assert listing_stats_refresh_task() == 2
    for listing in (published, suspended, draft):
        listing.refresh_from_db()
    moment = datetime.datetime(2026, 11, 20, 16, tzinfo=IST)
    assert published.stats_updated_at == suspended.stats_updated_at == moment
    assert draft.stats_updated_at is None
    assert (published.executions_count, published.verified_return_percent) == (0, None)
