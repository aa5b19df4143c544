"""Execution records: planned runs, order intents, fills, positions, audit events, kill switches.

A run is one strategy version firing at one boundary (entry or exit) on one session day for one
owner; where the run comes from (the trader's own allocations, a marketplace deployment, a paper
test) is its `source`. Every order the engine sends is first written as an `OrderIntent` with a
unique client tag, so its outcome can always be found again at the broker by that tag.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from execution.dbfunctions import IsoWeekday


class Boundary(models.TextChoices):
    ENTRY = "entry", "Entry"
    EXIT = "exit", "Exit"


class RunState(models.TextChoices):
    PLANNED = "planned", "Planned"
    DISPATCHED = "dispatched", "Dispatched"  # intents written, account tasks started
    DONE = "done", "Done"
    PARTIAL = "partial", "Partly done"  # some orders could not be placed (see events)
    FAILED = "failed", "Failed"  # nothing placed
    SKIPPED = "skipped", "Skipped"  # blocked before any order (risk, calendar, kill switch)
    HALTED = "halted", "Halted"  # leg failure policy stopped the strategy
    # Final states of a run whose orders were placed: flat after an early exit (stop, target,
    # square-off, the trader's exit, kill switch) or after its scheduled exit.
    EXITED = "exited", "Exited early"
    COMPLETED = "completed", "Completed"
    # Its time passed without a dispatch (the platform was not running, or was too late).
    MISSED = "missed", "Missed"


class IntentState(models.TextChoices):
    INTENT = "intent", "Written, not sent"
    SENT = "sent", "Sent"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    REJECTED = "rejected", "Rejected"
    UNKNOWN = "unknown", "Outcome unknown"
    PARTIALLY_FILLED = "partially_filled", "Partly filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    FAILED_OVER = "failed_over", "Moved to another account"
    ABANDONED = "abandoned", "Not sent"  # blocked before sending (kill switch, policy)
    # Unknown for longer than the settle time: neither the order book nor the trade book shows
    # it. Never sent again; the owner is told and the strategy's entries halt until it settles.
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


# The transitions the lifecycle allows; services refuse anything else.
INTENT_TRANSITIONS: dict[str, set[str]] = {
    IntentState.INTENT: {
        IntentState.SENT,
        IntentState.ACKNOWLEDGED,
        IntentState.REJECTED,
        IntentState.UNKNOWN,
        IntentState.FAILED_OVER,
        IntentState.ABANDONED,
    },
    IntentState.SENT: {IntentState.ACKNOWLEDGED, IntentState.REJECTED, IntentState.UNKNOWN},
    IntentState.UNKNOWN: {
        IntentState.ACKNOWLEDGED,
        IntentState.REJECTED,
        IntentState.PARTIALLY_FILLED,
        IntentState.FILLED,
        IntentState.CANCELLED,
        # Never back to INTENT or SENT: an order that may have reached the wire is only ever
        # looked up (a database trigger refuses it too: migration 0016).
        IntentState.NEEDS_ATTENTION,
    },
    IntentState.NEEDS_ATTENTION: {
        IntentState.ACKNOWLEDGED,
        IntentState.REJECTED,
        IntentState.PARTIALLY_FILLED,
        IntentState.FILLED,
        IntentState.CANCELLED,
        # The owner checked at the broker that it does not exist (execution.orders.lifecycle).
        IntentState.ABANDONED,
    },
    IntentState.ACKNOWLEDGED: {
        IntentState.PARTIALLY_FILLED,
        IntentState.FILLED,
        IntentState.CANCELLED,
        IntentState.REJECTED,  # RMS rejection after the acknowledgement
        # Acknowledged while its intent still names a placeholder contract whose resolution is
        # gone: its fills cannot be booked on a guess, so its owner settles it.
        IntentState.NEEDS_ATTENTION,
    },
    IntentState.PARTIALLY_FILLED: {
        IntentState.PARTIALLY_FILLED,
        IntentState.FILLED,
        IntentState.CANCELLED,
    },
    IntentState.REJECTED: {IntentState.FAILED_OVER},
    IntentState.FILLED: set(),
    IntentState.CANCELLED: set(),
    IntentState.FAILED_OVER: set(),
    IntentState.ABANDONED: set(),
}
OPEN_INTENT_STATES = (
    IntentState.SENT,
    IntentState.ACKNOWLEDGED,
    IntentState.UNKNOWN,
    IntentState.NEEDS_ATTENTION,
    IntentState.PARTIALLY_FILLED,
)
# States in which the order may exist at the broker without our knowing its id.
UNSETTLED_INTENT_STATES = (IntentState.UNKNOWN, IntentState.NEEDS_ATTENTION)


class Purpose(models.TextChoices):
    ENTRY = "entry", "Entry"
    EXIT = "exit", "Exit"
    STOP = "stop", "Stop-loss or target exit"
    UNWIND = "unwind", "Unwind after a failed leg"
    FLATTEN = "flatten", "Kill switch"
    SQUARE_OFF = "square_off", "Intraday square-off"
    MANUAL = "manual", "Exit by the trader"


class ScheduledRun(models.Model):
    """One strategy version x boundary x session day x source (owner, accounts, multiplier)."""

    session_date = models.DateField(help_text="The IST trading day.")
    boundary = models.CharField(max_length=5, choices=Boundary.choices)
    fire_at = models.DateTimeField(help_text="T: the instant the orders must leave.")
    strategy_version = models.ForeignKey(
        "trader.StrategyVersion", on_delete=models.PROTECT, related_name="scheduled_runs"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scheduled_runs"
    )
    # Which registered run source planned it ("allocation", "deployment", "paper_test") and the
    # id of that source's row, so a marketplace deployment and the creator's own allocation of
    # the same version are two runs.
    source = models.CharField(max_length=20)
    source_ref = models.CharField(max_length=40, blank=True)
    multiplier = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal("1"))
    # The accounts, sizes, failover priorities and algo IDs of the run, snapshotted by the
    # planner (execution.planning.sources.AccountAllocation.to_json), so dispatch never asks the
    # source.
    allocations = models.JSONField(default=list, blank=True)
    # The declared special session this run trades in (a Budget Sunday, Muhurat), set by the
    # planner from the calendar. A weekend run needs one: the database checks the reference,
    # not a flag a writer could set.
    special_session = models.ForeignKey(
        "execution.SpecialSession",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runs",
        help_text="Set by the planner from the calendar's declared special sessions.",
    )
    is_test = models.BooleanField(default=False, help_text="A paper test run, not a real one.")
    entry_run = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="exit_runs",
        help_text="For an exit run: the entry run whose positions it closes.",
    )
    state = models.CharField(max_length=12, choices=RunState.choices, default=RunState.PLANNED)
    note = models.TextField(blank=True)
    # Which market priced the run (spot and strikes at T - ε): the trading account's broker
    # quotes for live runs, the simulated market for paper ones. Nullable so that SQLite adds
    # the column in place (a rebuilt table would break the special-session triggers).
    price_source = models.CharField(max_length=80, null=True, blank=True)
    # "Paper on live prices": the owner's live account whose broker quotes price this paper
    # run (spot, strikes, marks and exits) instead of the simulator. Never places an order.
    price_account = models.ForeignKey(
        "brokers.BrokerAccount",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Paper runs only: the live account whose quotes price the run.",
    )
    # Watching: mark-to-market of the run's open positions, its best value (for trailing),
    # and why it was closed early, if it was.
    mtm = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    peak_mtm = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    exit_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-session_date", "fire_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy_version", "boundary", "session_date", "source", "source_ref"],
                name="scheduledrun_unique_per_boundary",
            ),
            # Saturday and Sunday (IST dates) only in a declared special session, e.g. a Budget
            # Sunday: the run must reference its SpecialSession row. The weekday is computed by
            # the database from the date itself, so no writer can bypass it. Paper test runs
            # (never sent to a real broker) may run any day.
            models.CheckConstraint(
                condition=Q(special_session__isnull=False)
                | Q(is_test=True)
                | Q(models.lookups.LessThan(IsoWeekday("session_date"), 6)),
                name="scheduledrun_weekend_needs_special_session",
            ),
        ]
        indexes = [
            models.Index(fields=["session_date", "boundary", "fire_at"]),
            models.Index(fields=["owner", "session_date"]),
        ]

    def __str__(self) -> str:
        label = "TEST " if self.is_test else ""
        return f"{label}{self.get_boundary_display()} {self.session_date} #{self.pk}"

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source.replace("_", " ").capitalize())


# Run sources in words (execution.planning.sources registers the sources themselves).
SOURCE_LABELS = {
    "allocation": "Your brokers",
    "deployment": "Marketplace subscription",
    "paper_test": "Paper test",
}


class OrderIntent(models.Model):
    """One order we mean to send: leg x account x slice. Written and committed before sending."""

    run = models.ForeignKey(ScheduledRun, on_delete=models.CASCADE, related_name="intents")
    leg = models.ForeignKey(
        "trader.Leg", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="order_intents"
    )
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.ENTRY)
    slice_no = models.PositiveSmallIntegerField(default=0)
    # Send order within the account's batch: BUY orders first (on entry the hedges, on exit the
    # buy-back of the shorts). A later phase waits for the earlier phases' acknowledgements
    # unless `waits_for_hedges` is off (the strategy's hedge confirmation, entries only).
    phase = models.PositiveSmallIntegerField(default=0)
    waits_for_hedges = models.BooleanField(default=True)
    side = models.CharField(max_length=4, choices=[("BUY", "BUY"), ("SELL", "SELL")])
    exchange = models.CharField(max_length=3)
    tradingsymbol = models.CharField(max_length=40)
    instrument_token = models.CharField(max_length=30, blank=True)
    product = models.CharField(max_length=4, default="MIS")
    order_type = models.CharField(max_length=6, default="MARKET")
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # The contract's last price as the engine resolved it at T - ε (or when an exit fired):
    # what the fill is measured against (slippage), and what a LIMIT is priced from.
    reference_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Set when a LIMIT replaces a MARKET order (the broker refuses MARKET from algos): the
    # price is the reference moved this many percent through the market.
    limit_protection_percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True
    )
    quantity = models.PositiveIntegerField()
    lot_size = models.PositiveIntegerField(default=1)
    algo_id = models.CharField(max_length=40, blank=True)
    tag = models.CharField(max_length=20, unique=True)
    state = models.CharField(max_length=16, choices=IntentState.choices, default="intent")
    intended_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    acked_at = models.DateTimeField(null=True, blank=True)
    broker_order_id = models.CharField(max_length=64, blank=True)
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # The traded value of `filled_quantity` as booked on the position (the broker's cumulative
    # value, or the sum of its trade prices): each new fill books the difference, so the
    # position's value is the traded value to the paisa, never an average times a quantity.
    filled_value = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    error = models.TextField(blank=True, help_text="The broker's or our reason, in words.")
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the outcome became unknown: the clock of the bounded wait before "needs attention".
    unknown_since = models.DateTimeField(null=True, blank=True)
    failover_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="failovers"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "account_id", "phase", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tag__regex=r"^[A-Za-z0-9]{1,20}$"), name="orderintent_tag_alnum_20"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderintent_quantity_gt0"),
            models.CheckConstraint(
                condition=Q(state__in=IntentState.values), name="orderintent_state_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["state", "intended_at"]),
            models.Index(fields=["account", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.tradingsymbol} [{self.tag}]"

    @property
    def lag_ms(self) -> float | None:
        """Milliseconds from the intended instant to the send; None before sending."""
        if self.sent_at is None:
            return None
        return (self.sent_at - self.intended_at).total_seconds() * 1000

    @property
    def ack_ms(self) -> float | None:
        if self.acked_at is None:
            return None
        return (self.acked_at - self.intended_at).total_seconds() * 1000


class Fill(models.Model):
    """A fill increment, keyed by the cumulative filled quantity it brought the order to, so a
    duplicate poll or postback with the same figure is counted once; a fill read from the
    trade book also carries the broker's trade id, unique per order."""

    intent = models.ForeignKey(OrderIntent, on_delete=models.CASCADE, related_name="fills")
    cumulative_quantity = models.PositiveIntegerField()
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=12, decimal_places=2)
    filled_at = models.DateTimeField()
    source = models.CharField(max_length=10, default="poll")  # poll | postback | tradebook
    trade_id = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["filled_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["intent", "cumulative_quantity"], name="fill_unique_cumulative"
            ),
            models.UniqueConstraint(
                fields=["intent", "trade_id"],
                condition=~Q(trade_id=""),
                name="fill_unique_trade_id",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="fill_quantity_gt0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} @ {self.price} (to {self.cumulative_quantity})"


class Position(models.Model):
    """Net position of one entry run on one account in one contract."""

    run = models.ForeignKey(ScheduledRun, on_delete=models.CASCADE, related_name="positions")
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="run_positions"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_positions"
    )
    leg = models.ForeignKey(
        "trader.Leg", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exchange = models.CharField(max_length=3)
    tradingsymbol = models.CharField(max_length=40)
    instrument_token = models.CharField(max_length=30, blank=True)
    product = models.CharField(max_length=4, default="MIS")
    lot_size = models.PositiveIntegerField(default=1)
    net_quantity = models.IntegerField(default=0)  # signed: negative is short
    buy_quantity = models.PositiveIntegerField(default=0)
    sell_quantity = models.PositiveIntegerField(default=0)
    buy_value = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    sell_value = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"))
    last_price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # When the price in last_price was quoted (the broker's quote time where it gives one):
    # the run page shows its age.
    last_price_at = models.DateTimeField(null=True, blank=True)
    # Per-leg stop-loss, target and trailing are judged against the entry average.
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run_id", "account_id", "tradingsymbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "account", "tradingsymbol"], name="position_unique_per_run"
            ),
        ]
        indexes = [models.Index(fields=["owner", "net_quantity"])]

    def __str__(self) -> str:
        return f"{self.tradingsymbol} {self.net_quantity:+d}"

    @property
    def average_entry(self) -> Decimal | None:
        if self.net_quantity > 0 and self.buy_quantity:
            return self.buy_value / self.buy_quantity
        if self.net_quantity < 0 and self.sell_quantity:
            return self.sell_value / self.sell_quantity
        return None

    def realised(self) -> Decimal:
        """P&L of the quantity closed so far (average buy against average sell)."""
        closed = min(self.buy_quantity, self.sell_quantity)
        if not closed:
            return Decimal("0.00")
        value = closed * (self.sell_value / self.sell_quantity - self.buy_value / self.buy_quantity)
        return value.quantize(Decimal("0.01"))

    def unrealised(self, last_price: Decimal | None = None) -> Decimal | None:
        """P&L of the open quantity at `last_price` (or the stored mark); None if unmarked."""
        price = last_price if last_price is not None else self.last_price
        if not self.net_quantity:
            return Decimal("0.00")
        if price is None:
            return None
        return (self.pnl(price) - self.realised()).quantize(Decimal("0.01"))

    def pnl(self, last_price: Decimal | None = None) -> Decimal:
        """Realised plus unrealised P&L in rupees at `last_price` (or the stored mark). An
        open position never marked counts its realised part only."""
        price = last_price if last_price is not None else self.last_price
        if self.net_quantity and price is None:
            return self.realised()
        value = self.sell_value - self.buy_value
        if self.net_quantity and price is not None:
            value += Decimal(self.net_quantity) * price
        return value.quantize(Decimal("0.01"))


class ExecutionEventQuerySet(models.QuerySet["ExecutionEvent"]):
    """Append-only: the ORM's bulk update and delete are refused (the database refuses too)."""

    def update(self, **kwargs: Any) -> int:
        raise PermissionError("Execution events are append-only.")

    def delete(self) -> Any:
        raise PermissionError("Execution events are append-only.")


class ExecutionEvent(models.Model):
    """The audit trail of execution: one row per state change, kept five years, never changed.

    References are plain ids (no foreign key): the trail must outlive the rows it describes.
    """

    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=40)
    user_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    run_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    intent_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    account_id = models.BigIntegerField(null=True, blank=True)
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    objects = ExecutionEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise PermissionError("Execution events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError("Execution events are append-only.")


class KillSwitchScope(models.TextChoices):
    USER = "user", "One trader"
    GLOBAL = "global", "Everyone (admin)"


class KillSwitch(models.Model):
    """Engaged: open orders cancelled, positions flattened, no new entries until re-armed."""

    scope = models.CharField(max_length=6, choices=KillSwitchScope.choices)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="kill_switch",
    )
    engaged = models.BooleanField(default=False)
    engaged_at = models.DateTimeField(null=True, blank=True)
    engaged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rearmed_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name_plural = "kill switches"
        constraints = [
            models.UniqueConstraint(
                fields=["scope"], condition=Q(scope="global"), name="killswitch_one_global"
            ),
            models.CheckConstraint(
                condition=(Q(scope="global") & Q(user__isnull=True))
                | (Q(scope="user") & Q(user__isnull=False)),
                name="killswitch_scope_matches_user",
            ),
        ]

    def __str__(self) -> str:
        who = "global" if self.scope == KillSwitchScope.GLOBAL else str(self.user)
        return f"Kill switch ({who}): {'ENGAGED' if self.engaged else 'armed'}"


class AccountReadiness(models.Model):
    """The ready check of one account for one session day: what is missing, in words."""

    session_date = models.DateField()
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.CASCADE, related_name="readiness"
    )
    ready = models.BooleanField(default=False)
    problems = models.JSONField(default=list, blank=True)
    checked_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-session_date", "account_id"]
        verbose_name = "account ready check"
        verbose_name_plural = "account ready checks"
        constraints = [
            models.UniqueConstraint(
                fields=["session_date", "account"], name="accountreadiness_unique_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} on {self.session_date}: {'ready' if self.ready else 'NOT ready'}"
