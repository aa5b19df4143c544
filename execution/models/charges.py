"""Trading charges as dated data: statutory and exchange rates per exchange, brokerage per broker.

A rate changes on a date (STT went from 0.1% to 0.15% of the sell premium on 1-Apr-2026), so
each row holds every rate in force from `effective_from` until the next row of the same exchange
(or broker). Seeded from shared/reference/india-market.md §4 by a data migration; admins add a
row when a rate changes. Charges are computed by `execution.reference.charges`, never from
constants.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from execution.models.market import Exchange
from trader.india import rupees


def _percent_field(help_text: str) -> models.DecimalField:
    return models.DecimalField(max_digits=9, decimal_places=6, help_text=help_text)


class ChargeRate(models.Model):
    """The statutory and exchange charges on index options of one exchange, from a trade date."""

    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    effective_from = models.DateField(help_text="First trade date (IST) these rates apply to.")
    stt_sell_percent = _percent_field("STT, % of the sell premium.")
    exchange_txn_percent = _percent_field("Exchange transaction charge, % of buy + sell premium.")
    ipft_percent = _percent_field("Investor protection fund trust charge, % of buy + sell.")
    sebi_fee_percent = _percent_field("SEBI turnover fee, % of buy + sell premium.")
    stamp_buy_percent = _percent_field("Stamp duty, % of the buy premium.")
    gst_percent = _percent_field("GST, % of brokerage + exchange charge + SEBI fee.")
    gst_on_ipft = models.BooleanField(
        default=False, help_text="Whether GST is also levied on the IPFT charge."
    )
    source = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="Caveats; [UNVERIFIED] marks unconfirmed items.")

    class Meta:
        ordering = ["exchange", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "effective_from"], name="chargerate_unique_from"
            ),
            models.CheckConstraint(
                condition=Q(stt_sell_percent__gte=0)
                & Q(exchange_txn_percent__gte=0)
                & Q(ipft_percent__gte=0)
                & Q(sebi_fee_percent__gte=0)
                & Q(stamp_buy_percent__gte=0)
                & Q(gst_percent__gte=0),
                name="chargerate_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange} charges from {self.effective_from}"


class BrokerageRate(models.Model):
    """What a broker charges per executed order on index options, from a trade date.

    The paper broker is a simulation: its row is zero unless an admin sets a simulated rate,
    and every page labels paper brokerage as simulated."""

    broker = models.CharField(max_length=16)  # brokers.models.Broker value
    effective_from = models.DateField(help_text="First trade date (IST) this rate applies to.")
    per_order = models.DecimalField(
        max_digits=8,
        decimal_places=2,
        default=Decimal("0"),
        help_text="Rupees per executed order (an order with at least one fill).",
    )
    source = models.TextField(blank=True)
    note = models.TextField(blank=True, help_text="Caveats; [UNVERIFIED] marks unconfirmed items.")

    class Meta:
        ordering = ["broker", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "effective_from"], name="brokeragerate_unique_from"
            ),
            models.CheckConstraint(
                condition=Q(per_order__gte=0), name="brokeragerate_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker} {rupees(self.per_order)}/order from {self.effective_from}"
