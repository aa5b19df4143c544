"""The paper broker's own ledger: its orders, positions and cash live in the database, so
they survive restarts and every web and worker process sees the same book."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q


class PaperAccount(models.Model):
    """The paper broker's side of one BrokerAccount: cash, fault settings, its session."""

    account = models.OneToOneField(
        "brokers.BrokerAccount", on_delete=models.CASCADE, related_name="paper"
    )
    starting_cash = models.DecimalField(max_digits=16, decimal_places=2)
    cash = models.DecimalField(max_digits=16, decimal_places=2)
    # Fill realism: a market order pays this much beyond the touch (bid/ask), in percent.
    slippage_pct = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("0.10"))
    latency_ms = models.PositiveIntegerField(default=0)
    # Chance (0 to 1) that the paper "exchange" rejects an order, and that an order is created but
    # its acknowledgement is lost (exercises the ambiguous path).
    reject_rate = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0"))
    drop_rate = models.DecimalField(max_digits=4, decimal_places=3, default=Decimal("0"))
    # Margin blocked for a short option, as a percentage of the underlying's notional value.
    # A simplification of SPAN + exposure margin; editable per account in admin.
    short_margin_pct = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("12"))
    # The paper "broker" session: only a hash of the token, like a real broker's token store.
    token_hash = models.CharField(max_length=64, blank=True)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    pending_login_nonce = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(reject_rate__gte=0) & Q(reject_rate__lte=1),
                name="paperaccount_reject_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(drop_rate__gte=0) & Q(drop_rate__lte=1),
                name="paperaccount_drop_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(slippage_pct__gte=0), name="paperaccount_slippage_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"paper book of account {self.account_id}"


class PaperOrder(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"

    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.CASCADE, related_name="paper_orders"
    )
    order_id = models.CharField(max_length=20, unique=True)
    tag = models.CharField(max_length=20, blank=True)
    exchange = models.CharField(max_length=3)
    tradingsymbol = models.CharField(max_length=40)
    side = models.CharField(max_length=4, choices=[("BUY", "Buy"), ("SELL", "Sell")])
    order_type = models.CharField(max_length=6, choices=[("MARKET", "Market"), ("LIMIT", "Limit")])
    product = models.CharField(max_length=4, choices=[("NRML", "NRML"), ("MIS", "MIS")])
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField(default=0)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    market_protection = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    average_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    status_message = models.CharField(max_length=200, blank=True)
    placed_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["placed_at", "id"]
        indexes = [
            models.Index(fields=["account", "tag"], name="paperorder_account_tag"),
            models.Index(fields=["account", "status"], name="paperorder_account_status"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(filled_quantity__lte=models.F("quantity")),
                name="paperorder_fill_within_quantity",
            ),
            models.CheckConstraint(
                condition=~Q(order_type="LIMIT") | Q(price__gt=0),
                name="paperorder_limit_has_price",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.tradingsymbol} ({self.status})"


class PaperPosition(models.Model):
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.CASCADE, related_name="paper_positions"
    )
    exchange = models.CharField(max_length=3)
    tradingsymbol = models.CharField(max_length=40)
    product = models.CharField(max_length=4)
    quantity = models.IntegerField(default=0)  # net, signed: negative is short
    average_price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0"))
    realised_pnl = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["tradingsymbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "exchange", "tradingsymbol", "product"],
                name="paperposition_unique_instrument",
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.tradingsymbol}"
