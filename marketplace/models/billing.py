"""Invoices and the monthly revenue ledger. No payment gateway: payments are recorded by admins
when received, and the ledger is what creators are paid from."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from trader.india import rupees


class InvoiceKind(models.TextChoices):
    FEE = "fee", "Monthly fee"
    PROFIT_SHARE = "profit_share", "Profit share"


class InvoiceStatus(models.TextChoices):
    ISSUED = "issued", "Issued (due)"
    PAID = "paid", "Paid"
    VOID = "void", "Void"


class Invoice(models.Model):
    subscription = models.ForeignKey(
        "marketplace.Subscription", on_delete=models.PROTECT, related_name="invoices"
    )
    kind = models.CharField(max_length=12, choices=InvoiceKind.choices)
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    status = models.CharField(
        max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.ISSUED
    )
    issued_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=80, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="invoice_period_order"
            ),
            models.CheckConstraint(
                condition=Q(status__in=InvoiceStatus.values), name="invoice_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=InvoiceKind.values), name="invoice_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status=InvoiceStatus.PAID) | Q(paid_at__isnull=False),
                name="invoice_paid_has_time",
            ),
            # A period is billed once per kind, however often the billing task runs.
            models.UniqueConstraint(
                fields=["subscription", "kind", "period_start"], name="invoice_unique_period"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.period_start:%b %Y} {rupees(self.amount)}"


class MonthlyLedger(models.Model):
    """One subscription's revenue for one calendar month (IST), closed once the month is over."""

    subscription = models.ForeignKey(
        "marketplace.Subscription", on_delete=models.PROTECT, related_name="ledger"
    )
    listing = models.ForeignKey(
        "marketplace.Listing", on_delete=models.PROTECT, related_name="ledger"
    )
    month = models.DateField(help_text="First day of the month.")
    fee = models.DecimalField(max_digits=12, decimal_places=2)
    pnl = models.DecimalField(max_digits=14, decimal_places=2)
    cumulative_pnl = models.DecimalField(max_digits=14, decimal_places=2)
    high_water_mark = models.DecimalField(max_digits=14, decimal_places=2)
    profit_share = models.DecimalField(max_digits=12, decimal_places=2)
    commission_percent = models.DecimalField(max_digits=5, decimal_places=2)
    commission = models.DecimalField(max_digits=12, decimal_places=2)
    creator_payout = models.DecimalField(max_digits=12, decimal_places=2)
    closed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-month", "subscription_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "month"], name="monthlyledger_unique_month"
            ),
            models.CheckConstraint(
                condition=Q(fee__gte=0, profit_share__gte=0, commission__gte=0),
                name="monthlyledger_non_negative",
            ),
        ]
        indexes = [models.Index(fields=["listing", "month"], name="monthlyledger_listing_m")]

    def __str__(self) -> str:
        return f"{self.subscription} {self.month:%b %Y}"
