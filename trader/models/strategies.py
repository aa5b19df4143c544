"""Strategies: what a trader wants traded, when, on which accounts, within which limits.

A Strategy is the editable identity (owner, name, underlying, status, allocation). What it
trades lives in immutable StrategyVersion snapshots with their Legs: editing an active strategy
adds a version that takes effect from the next session, so runs and orders can always point at
the exact version they executed.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from trader.india import rupees

# A strategy's times are checked against the session in force on the day it is saved
# (execution.calendar.normal_timing: the F&O close moved from 15:30 to 15:40 on 3-Aug-2026), and
# each day's runs against that day's window by the planner; no time of day is a constant here.

MAX_LEGS = 8

# Monday is bit 0 (datetime.date.weekday()); Saturday and Sunday bits only matter on declared
# special sessions, which the calendar decides.
ALL_WEEKDAYS_MASK = 0b1111111
MON_TO_FRI_MASK = 0b0011111


class StrategyKind(models.TextChoices):
    INTRADAY = "intraday", "Intraday (squared off by the exit time)"
    POSITIONAL = "positional", "Positional (carried overnight)"


class StrategyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ARCHIVED = "archived", "Archived"


class LegFailurePolicy(models.TextChoices):
    UNWIND = "unwind", "Unwind the legs already filled"
    HALT = "halt", "Alert me and halt the strategy"


class HedgeConfirmation(models.TextChoices):
    """How an entry's short legs follow its hedges (BUY legs are always written first)."""

    ACK = "ack", "Wait until the broker accepts the hedges, then send the shorts"
    NONE = "none", "Send the shorts right behind the hedges (faster; a short may fill first)"


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OptionType(models.TextChoices):
    CE = "CE", "Call (CE)"
    PE = "PE", "Put (PE)"


class ExpiryChoice(models.TextChoices):
    # Values are the `choice` argument of execution.contracts.pick_expiry.
    CURRENT_WEEK = "current_week", "Current week"
    NEXT_WEEK = "next_week", "Next week"
    CURRENT_MONTH = "current_month", "Current month"
    NEXT_MONTH = "next_month", "Next month"


class StrikeMode(models.TextChoices):
    ATM_OFFSET = "atm", "ATM ± N strike steps"
    EXACT = "exact", "Exact strike"
    PREMIUM = "premium", "Premium closest to ₹X"
    DELTA = "delta", "Delta closest to D"


class ExitUnit(models.TextChoices):
    POINTS = "points", "points"
    PERCENT = "percent", "% of entry premium"


class AllocationSizing(models.TextChoices):
    MULTIPLIER = "multiplier", "Multiply each leg's lots"
    FIXED = "fixed", "Fixed lots on every leg"


class Strategy(models.Model):
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="strategies"
    )
    name = models.CharField(max_length=80)
    description = models.TextField(blank=True)
    underlying = models.ForeignKey(
        "execution.Underlying", on_delete=models.PROTECT, related_name="strategies"
    )
    kind = models.CharField(
        max_length=12, choices=StrategyKind.choices, default=StrategyKind.INTRADAY
    )
    status = models.CharField(
        max_length=10, choices=StrategyStatus.choices, default=StrategyStatus.DRAFT
    )
    leg_failure_policy = models.CharField(
        max_length=10, choices=LegFailurePolicy.choices, default=LegFailurePolicy.UNWIND
    )
    hedge_confirmation = models.CharField(
        max_length=4, choices=HedgeConfirmation.choices, default=HedgeConfirmation.ACK
    )
    # Key of the template the strategy started from (templates_catalog), for display only.
    template = models.CharField(max_length=32, blank=True)
    # The latest version: what the trader sees and edits. The version that trades on a given
    # day is the newest one whose effective_from is on or before it (version_in_force).
    current_version = models.ForeignKey(
        "StrategyVersion",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    # "Paper on live prices": the owner's live account whose quotes price the strategy's runs
    # when it trades on paper accounts only (the planner copies it onto each such run).
    paper_price_account = models.ForeignKey(
        "brokers.BrokerAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "strategies"
        indexes = [models.Index(fields=["owner", "status"], name="strategy_owner_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=StrategyStatus.values), name="strategy_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=StrategyKind.values), name="strategy_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(leg_failure_policy__in=LegFailurePolicy.values),
                name="strategy_leg_failure_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(hedge_confirmation__in=HedgeConfirmation.values),
                name="strategy_hedge_confirmation_valid",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="strategy_name_not_empty"),
        ]

    def __str__(self) -> str:
        return self.name


class StrategyAlgoId(models.Model):
    """An exchange algo ID registered for this strategy at one broker (SEBI algo rules).

    Orders at a broker without a row here carry the account's generic algo ID instead.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="algo_ids")
    broker = models.CharField(max_length=16)  # brokers.models.Broker value
    algo_id = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "strategy exchange algo ID"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "broker"], name="strategyalgoid_unique_broker"
            ),
            models.CheckConstraint(condition=~Q(algo_id=""), name="strategyalgoid_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} @ {self.broker}: {self.algo_id}"


class StrategyVersion(models.Model):
    """An immutable snapshot of when and how a strategy trades. Never updated after creation."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    # Wall-clock IST times of the day (to the second), not datetimes: a strategy runs on many
    # days and the calendar turns (day, time) into an aware datetime.
    entry_time = models.TimeField()
    exit_time = models.TimeField()
    # Bit i set = run on weekday i (Monday = 0). Holidays are skipped by the calendar.
    trading_days = models.PositiveSmallIntegerField(default=MON_TO_FRI_MASK)
    # Strategy-level exits on combined mark-to-market, in rupees; null = not used.
    stop_loss_mtm = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    target_mtm = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    # Exit when MTM falls this many rupees below its best level since entry.
    trailing_stop_mtm = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    effective_from = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["strategy_id", "-number"]
        get_latest_by = "number"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "number"], name="strategyversion_unique_number"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="strategyversion_number_gte_1"),
            models.CheckConstraint(
                condition=Q(exit_time__gt=models.F("entry_time")),
                name="strategyversion_exit_after_entry",
            ),
            models.CheckConstraint(
                condition=Q(trading_days__gte=1, trading_days__lte=ALL_WEEKDAYS_MASK),
                name="strategyversion_trading_days_valid",
            ),
            models.CheckConstraint(
                condition=Q(stop_loss_mtm__isnull=True) | Q(stop_loss_mtm__gt=0),
                name="strategyversion_stop_loss_positive",
            ),
            models.CheckConstraint(
                condition=Q(target_mtm__isnull=True) | Q(target_mtm__gt=0),
                name="strategyversion_target_positive",
            ),
            models.CheckConstraint(
                condition=Q(trailing_stop_mtm__isnull=True) | Q(trailing_stop_mtm__gt=0),
                name="strategyversion_trailing_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} v{self.number}"

    @property
    def weekdays(self) -> list[int]:
        return [day for day in range(7) if self.trading_days & (1 << day)]

    def runs_on_weekday(self, weekday: int) -> bool:
        return bool(self.trading_days & (1 << weekday))


class Leg(models.Model):
    version = models.ForeignKey(StrategyVersion, on_delete=models.CASCADE, related_name="legs")
    # 1..MAX_LEGS; unique per version, so the database itself refuses a ninth leg.
    position = models.PositiveSmallIntegerField()
    side = models.CharField(max_length=4, choices=Side.choices)
    option_type = models.CharField(max_length=2, choices=OptionType.choices)
    lots = models.PositiveIntegerField()
    expiry_choice = models.CharField(
        max_length=16, choices=ExpiryChoice.choices, default=ExpiryChoice.CURRENT_WEEK
    )
    strike_mode = models.CharField(
        max_length=8, choices=StrikeMode.choices, default=StrikeMode.ATM_OFFSET
    )
    # Exactly one parameter is set, the one its strike_mode uses (checked by the database).
    strike_offset = models.SmallIntegerField(null=True, blank=True)  # steps; + = higher strike
    strike_price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    target_premium = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    target_delta = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    stop_loss = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    stop_loss_unit = models.CharField(
        max_length=8, choices=ExitUnit.choices, default=ExitUnit.POINTS
    )
    target = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    target_unit = models.CharField(max_length=8, choices=ExitUnit.choices, default=ExitUnit.POINTS)

    class Meta:
        ordering = ["version_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "position"], name="leg_unique_position"),
            models.CheckConstraint(
                condition=Q(position__gte=1, position__lte=MAX_LEGS), name="leg_position_range"
            ),
            models.CheckConstraint(condition=Q(lots__gt=0), name="leg_lots_positive"),
            models.CheckConstraint(condition=Q(side__in=Side.values), name="leg_side_valid"),
            models.CheckConstraint(
                condition=Q(option_type__in=OptionType.values), name="leg_option_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(expiry_choice__in=ExpiryChoice.values), name="leg_expiry_choice_valid"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        strike_mode=StrikeMode.ATM_OFFSET,
                        strike_offset__isnull=False,
                        strike_price__isnull=True,
                        target_premium__isnull=True,
                        target_delta__isnull=True,
                    )
                    | Q(
                        strike_mode=StrikeMode.EXACT,
                        strike_offset__isnull=True,
                        strike_price__isnull=False,
                        strike_price__gt=0,
                        target_premium__isnull=True,
                        target_delta__isnull=True,
                    )
                    | Q(
                        strike_mode=StrikeMode.PREMIUM,
                        strike_offset__isnull=True,
                        strike_price__isnull=True,
                        target_premium__isnull=False,
                        target_premium__gt=0,
                        target_delta__isnull=True,
                    )
                    | Q(
                        strike_mode=StrikeMode.DELTA,
                        strike_offset__isnull=True,
                        strike_price__isnull=True,
                        target_premium__isnull=True,
                        target_delta__isnull=False,
                        target_delta__gt=0,
                        target_delta__lt=1,
                    )
                ),
                name="leg_strike_parameter_matches_mode",
            ),
            models.CheckConstraint(
                condition=Q(stop_loss__isnull=True) | Q(stop_loss__gt=0),
                name="leg_stop_loss_positive",
            ),
            models.CheckConstraint(
                condition=Q(target__isnull=True) | Q(target__gt=0), name="leg_target_positive"
            ),
            models.CheckConstraint(
                condition=Q(stop_loss_unit__in=ExitUnit.values, target_unit__in=ExitUnit.values),
                name="leg_exit_units_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.lots} lot(s) {self.option_type} ({self.strike_description})"

    @property
    def strike_description(self) -> str:
        if self.strike_mode == StrikeMode.ATM_OFFSET:
            offset = self.strike_offset or 0
            return "ATM" if offset == 0 else f"ATM{offset:+d}"
        if self.strike_mode == StrikeMode.EXACT:
            return f"{self.strike_price:f}".rstrip("0").rstrip(".")
        if self.strike_mode == StrikeMode.PREMIUM:
            return f"premium ≈ {rupees(self.target_premium)}"
        return f"delta ≈ {self.target_delta}"


class BrokerAllocation(models.Model):
    """One broker account a strategy trades on, its size, and its failover priority."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="allocations")
    broker_account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.CASCADE, related_name="strategy_allocations"
    )
    sizing = models.CharField(
        max_length=10, choices=AllocationSizing.choices, default=AllocationSizing.MULTIPLIER
    )
    multiplier = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    fixed_lots = models.PositiveIntegerField(null=True, blank=True)
    # Lower first: when an account fails permanently its remaining lots go to the next one.
    priority = models.PositiveSmallIntegerField(default=1)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["strategy_id", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "broker_account"], name="brokerallocation_unique_account"
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        sizing=AllocationSizing.MULTIPLIER,
                        multiplier__isnull=False,
                        multiplier__gt=0,
                        fixed_lots__isnull=True,
                    )
                    | Q(
                        sizing=AllocationSizing.FIXED,
                        fixed_lots__isnull=False,
                        fixed_lots__gt=0,
                        multiplier__isnull=True,
                    )
                ),
                name="brokerallocation_sizing_valid",
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1), name="brokerallocation_priority_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy} → {self.broker_account}"

    @property
    def sizing_description(self) -> str:
        if self.sizing == AllocationSizing.FIXED:
            return f"{self.fixed_lots} lots per leg"
        return f"x {self.multiplier.normalize() if self.multiplier else Decimal(0):f}"


class RiskCeiling(models.Model):
    """Platform-wide ceilings set by admins (one row, pk=1). Users' own limits sit below."""

    max_lots_per_order = models.PositiveIntegerField()
    max_lots_per_strategy = models.PositiveIntegerField()
    max_open_strategies = models.PositiveIntegerField()
    max_daily_loss = models.DecimalField(max_digits=14, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "risk ceiling"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="riskceiling_singleton"),
            models.CheckConstraint(
                condition=Q(
                    max_lots_per_order__gt=0,
                    max_lots_per_strategy__gt=0,
                    max_open_strategies__gt=0,
                    max_daily_loss__gt=0,
                ),
                name="riskceiling_positive",
            ),
        ]

    def __str__(self) -> str:
        return "Platform risk ceilings"


class RiskLimit(models.Model):
    """A user's own limits. Effective limits are min(own, ceiling): see risk_limits_for_user."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="risk_limit"
    )
    max_lots_per_order = models.PositiveIntegerField()
    max_lots_per_strategy = models.PositiveIntegerField()
    max_open_strategies = models.PositiveIntegerField()
    max_daily_loss = models.DecimalField(max_digits=14, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    max_lots_per_order__gt=0,
                    max_lots_per_strategy__gt=0,
                    max_open_strategies__gt=0,
                    max_daily_loss__gt=0,
                ),
                name="risklimit_positive",
            ),
            models.CheckConstraint(
                condition=Q(max_lots_per_order__lte=models.F("max_lots_per_strategy")),
                name="risklimit_order_within_strategy",
            ),
        ]

    def __str__(self) -> str:
        return f"Risk limits of {self.user}"


class StrategyEvent(models.Model):
    """Append-only audit of what a user did to a strategy (created, edited, activated...)."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    action = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["strategy", "-created_at"], name="strategyevent_recent")]

    def __str__(self) -> str:
        return f"{self.strategy}: {self.action}"
