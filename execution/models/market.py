"""Market reference data: trading calendar, underlyings with dated facts, option instruments.

Every fact that changes over time (session hours, holidays, lot sizes, freeze limits, strike
steps, expiry weekdays) is a row with an effective date, seeded from
shared/reference/india-market.md by a data migration and editable in admin. Nothing here is
cached: a row saved in admin is what the next call reads.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Exchange(models.TextChoices):
    NSE = "NSE", "NSE"
    BSE = "BSE", "BSE"


class Segment(models.TextChoices):
    NFO = "NFO", "NSE F&O"
    BFO = "BFO", "BSE F&O"


class Weekday(models.IntegerChoices):
    # Python's date.weekday() numbering, so rules compare without translation.
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"


class ExpiryKind(models.TextChoices):
    WEEKLY = "weekly", "Weekly (every such weekday)"
    MONTHLY = "monthly", "Monthly (last such weekday of the month)"


class OptionType(models.TextChoices):
    CE = "CE", "Call (CE)"
    PE = "PE", "Put (PE)"


class InstrumentSource(models.TextChoices):
    GRID = "grid", "Generated strike grid (simulated market)"
    KITE = "kite", "Kite instrument master"
    UPSTOX = "upstox", "Upstox instrument master"
    ANGELONE = "angelone", "Angel One scrip master"
    FYERS = "fyers", "Fyers symbol master"
    DHAN = "dhan", "Dhan scrip master"


class Underlying(models.Model):
    symbol = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=60)
    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    segment = models.CharField(max_length=3, choices=Segment.choices)
    is_active = models.BooleanField(default=True)
    tick_size = models.DecimalField(
        max_digits=6, decimal_places=2, default="0.05", help_text="Option price tick, rupees."
    )

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


def _ranges_overlap_q(prefix_from: str, prefix_to: str, start, end) -> Q:  # type: ignore[no-untyped-def]
    """Rows whose [from, to] (to may be NULL = open) overlaps [start, end] (end may be None)."""
    q = Q(**{f"{prefix_to}__isnull": True}) | Q(**{f"{prefix_to}__gte": start})
    if end is not None:
        q &= Q(**{f"{prefix_from}__lte": end})
    return q


class SessionTiming(models.Model):
    """The normal session of an exchange from a date on (options trade only in this window)."""

    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    effective_from = models.DateField()
    opens_at = models.TimeField(help_text="IST")
    closes_at = models.TimeField(help_text="IST; the window is [opens_at, closes_at).")
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["exchange", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "effective_from"], name="sessiontiming_unique_from"
            ),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="sessiontiming_opens_first"
            ),
        ]

    def __str__(self) -> str:
        window = f"{self.opens_at:%H:%M}-{self.closes_at:%H:%M}"
        return f"{self.exchange} {window} from {self.effective_from}"


class TradingHoliday(models.Model):
    """A weekday on which the exchange does not trade (weekend holidays need no row)."""

    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    date = models.DateField()
    reason = models.CharField(max_length=120)
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["exchange", "date"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "date"], name="tradingholiday_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.date}: {self.reason}"


class HolidayCalendarYear(models.Model):
    """An exchange's holiday list for one year, recorded as loaded: who, from which circular, when.

    A year without this row has no sessions at all (the calendar fails closed): the platform
    would otherwise trade on holidays nobody entered. Exchanges publish next year's list in
    December, so admins load it once a year (admin, or `manage.py import_holidays`).
    """

    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    year = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(2000), MaxValueValidator(2100)]
    )
    source = models.CharField(
        max_length=300, help_text="The exchange circular the list comes from (number or URL)."
    )
    loaded_at = models.DateTimeField(default=timezone.now)
    loaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when seeded by a migration.",
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["exchange", "-year"]
        verbose_name = "loaded holiday calendar"
        constraints = [
            models.UniqueConstraint(fields=["exchange", "year"], name="holidaycalendaryear_unique")
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.year} holiday calendar"


class SpecialSession(models.Model):
    """A declared session with its own window: Muhurat, Budget day on a weekend, and so on.

    It replaces the normal window for that day and overrides a holiday on the same day
    (Muhurat falls on the Diwali holiday).
    """

    exchange = models.CharField(max_length=3, choices=Exchange.choices)
    date = models.DateField()
    opens_at = models.TimeField(help_text="IST")
    closes_at = models.TimeField(help_text="IST; the window is [opens_at, closes_at).")
    reason = models.CharField(max_length=120)
    # The exchanges move an expiry off a symbolic or settlement-holiday session (NIFTY's
    # 21-Oct-2025 Muhurat-day expiry moved to 20-Oct), so by default a contract cannot expire here.
    expiries_allowed = models.BooleanField(
        default=False, help_text="Whether a contract may expire in this session."
    )
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["exchange", "date"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "date"], name="specialsession_unique_day"),
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")), name="specialsession_opens_first"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange} {self.date} {self.opens_at:%H:%M}-{self.closes_at:%H:%M}"


class LotSize(models.Model):
    """The lot of contracts expiring in [expiry_from, expiry_to], while they trade.

    Lot size belongs to the contract: a revision applies to contracts listed after it, and
    contracts already listed keep their lot (rows with a narrow expiry range, e.g. NIFTY's
    30-Jan-2025 monthly at 25). Long-dated contracts that the exchange re-lotted at an end of
    day carry a row with `valid_until` = that day: until then that row wins, afterwards the
    open-ended row does. Among matching rows the one with the earliest `valid_until` that has
    not passed wins (open-ended last), then the narrowest expiry range.
    """

    underlying = models.ForeignKey(Underlying, on_delete=models.CASCADE, related_name="lot_sizes")
    expiry_from = models.DateField(null=True, blank=True, help_text="Empty: all earlier expiries.")
    expiry_to = models.DateField(null=True, blank=True, help_text="Empty: all later expiries.")
    lot_size = models.PositiveIntegerField()
    valid_until = models.DateField(
        null=True,
        blank=True,
        help_text="Last trading day this lot applied (re-lotted at its end); empty: for good.",
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["underlying", "expiry_from", "valid_until"]
        constraints = [
            models.CheckConstraint(condition=Q(lot_size__gt=0), name="lotsize_positive"),
            models.CheckConstraint(
                condition=Q(expiry_from__isnull=True)
                | Q(expiry_to__isnull=True)
                | Q(expiry_to__gte=models.F("expiry_from")),
                name="lotsize_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        span = f"{self.expiry_from or '...'} to {self.expiry_to or '...'}"
        return f"{self.underlying} {span}: {self.lot_size}"


class FreezeQuantity(models.Model):
    """Maximum units per order from a date on (in units, not lots)."""

    underlying = models.ForeignKey(
        Underlying, on_delete=models.CASCADE, related_name="freeze_quantities"
    )
    effective_from = models.DateField()
    quantity = models.PositiveIntegerField(help_text="Units (not lots).")
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["underlying", "-effective_from"]
        verbose_name_plural = "freeze quantities"
        constraints = [
            models.UniqueConstraint(
                fields=["underlying", "effective_from"], name="freezequantity_unique_from"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="freezequantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.underlying} {self.quantity} from {self.effective_from}"


class StrikeStep(models.Model):
    """Interval between near-the-money strikes from a date on."""

    underlying = models.ForeignKey(
        Underlying, on_delete=models.CASCADE, related_name="strike_steps"
    )
    effective_from = models.DateField()
    step = models.DecimalField(max_digits=10, decimal_places=2)
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["underlying", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["underlying", "effective_from"], name="strikestep_unique_from"
            ),
            models.CheckConstraint(condition=Q(step__gt=0), name="strikestep_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.underlying} {self.step} from {self.effective_from}"


class ExpiryRule(models.Model):
    """Which dates an underlying's weekly or monthly contracts expire on.

    The range applies to the nominal expiry dates (before a holiday moves them to the previous
    session): NIFTY weekly Thursday up to 31-Aug-2025, Tuesday from 1-Sep-2025.
    """

    underlying = models.ForeignKey(
        Underlying, on_delete=models.CASCADE, related_name="expiry_rules"
    )
    kind = models.CharField(max_length=7, choices=ExpiryKind.choices)
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    effective_from = models.DateField()
    effective_to = models.DateField(null=True, blank=True, help_text="Empty: still in force.")
    listed_count = models.PositiveSmallIntegerField(
        help_text="Contracts of this kind listed at a time (NIFTY: 4 weekly, 3 monthly)."
    )
    source = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["underlying", "kind", "effective_from"]
        constraints = [
            models.CheckConstraint(
                condition=Q(effective_to__isnull=True)
                | Q(effective_to__gte=models.F("effective_from")),
                name="expiryrule_range_ordered",
            ),
            models.CheckConstraint(condition=Q(listed_count__gt=0), name="expiryrule_listed"),
        ]

    def __str__(self) -> str:
        return f"{self.underlying} {self.kind} {self.get_weekday_display()}"

    def clean(self) -> None:
        if self.underlying_id is None:
            return
        overlapping = ExpiryRule.objects.filter(
            _ranges_overlap_q(
                "effective_from", "effective_to", self.effective_from, self.effective_to
            ),
            underlying_id=self.underlying_id,
            kind=self.kind,
        ).exclude(pk=self.pk)
        if self.effective_from and overlapping.exists():
            raise ValidationError(
                f"Another {self.kind} rule of this underlying covers part of these dates."
            )


class Instrument(models.Model):
    """An index option contract (lot size as listed, from the master file or the reference)."""

    underlying = models.ForeignKey(Underlying, on_delete=models.PROTECT, related_name="instruments")
    expiry = models.DateField()
    strike = models.DecimalField(max_digits=12, decimal_places=2)
    option_type = models.CharField(max_length=2, choices=OptionType.choices)
    lot_size = models.PositiveIntegerField()
    tick_size = models.DecimalField(max_digits=6, decimal_places=2)
    source = models.CharField(max_length=10, choices=InstrumentSource.choices)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["underlying", "expiry", "strike", "option_type"]
        constraints = [
            models.UniqueConstraint(
                fields=["underlying", "expiry", "strike", "option_type"],
                name="instrument_unique_contract",
            ),
            models.CheckConstraint(condition=Q(strike__gt=0), name="instrument_strike_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.underlying} {self.expiry} {self.strike.normalize():f} {self.option_type}"


class BrokerSymbol(models.Model):
    """How one broker names an instrument: its trading symbol and its token / instrument key."""

    instrument = models.ForeignKey(
        Instrument, on_delete=models.CASCADE, related_name="broker_symbols"
    )
    broker = models.CharField(max_length=20, help_text="Broker code, e.g. kite, upstox.")
    tradingsymbol = models.CharField(max_length=60)
    token = models.CharField(max_length=40)

    class Meta:
        ordering = ["instrument", "broker"]
        constraints = [
            models.UniqueConstraint(fields=["instrument", "broker"], name="brokersymbol_one_each"),
            models.UniqueConstraint(fields=["broker", "token"], name="brokersymbol_unique_token"),
            models.UniqueConstraint(
                fields=["broker", "tradingsymbol"], name="brokersymbol_unique_symbol"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.broker}: {self.tradingsymbol}"


class InstrumentMasterImport(models.Model):
    """The latest attempt of a day to load one broker's instrument master. A failed attempt
    changes no instrument: the last good master stays in use, and the ready check says so."""

    broker = models.CharField(max_length=20)
    session_date = models.DateField()
    ok = models.BooleanField(default=False)
    contracts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    lot_mismatches = models.JSONField(default=list, blank=True)
    attempted_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-session_date", "broker"]
        constraints = [
            models.UniqueConstraint(
                fields=["broker", "session_date"], name="masterimport_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return f"{self.broker} master {self.session_date}: {'ok' if self.ok else 'failed'}"
