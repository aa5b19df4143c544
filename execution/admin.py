"""Admin for the market reference data: admins keep holidays, sessions and dated facts current.

Nothing derived from these rows is cached, so a saved holiday moves that week's expiry at once.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from execution.models import (
    BrokerSymbol,
    ExpiryRule,
    FreezeQuantity,
    HolidayCalendarYear,
    Instrument,
    InstrumentMasterImport,
    LotSize,
    SessionTiming,
    SpecialSession,
    StrikeStep,
    TradingHoliday,
    Underlying,
)
from execution.reference.holidays import HolidayFileError, holiday_calendar_load, holiday_file_parse
from trader.audit_admin import AuditAdmin
from trader.permissions import OPERATE_GLOBAL_KILL_SWITCH, staff_may


class HolidayCalendarLoadForm(forms.ModelForm):
    holiday_file = forms.FileField(
        help_text="The exchange's list as CSV: date,description[,opens,closes] (see README). "
        "A bad file changes nothing and names the wrong line."
    )
    replace = forms.BooleanField(
        required=False, help_text="Load again a year that is already loaded."
    )

    class Meta:
        model = HolidayCalendarYear
        fields = ["exchange", "year", "source"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload, year = data.get("holiday_file"), data.get("year")
        if upload is None or year is None:
            return data
        try:
            text = upload.read().decode("utf-8")
            data["rows"] = holiday_file_parse(text=text, year=year)
        except UnicodeDecodeError:
            self.add_error("holiday_file", "The file is not UTF-8 text.")
        except HolidayFileError as exc:
            self.add_error("holiday_file", str(exc))
        exchange = data.get("exchange")
        loaded = HolidayCalendarYear.objects.filter(exchange=exchange, year=year).exists()
        if loaded and not data.get("replace"):
            self.add_error(
                "replace",
                f"The {exchange} calendar for {year} is already loaded: tick to replace it.",
            )
        return data

    def validate_unique(self) -> None:
        # Loading again is the load service's decision (the replace box), not a unique error.
        pass


@admin.register(HolidayCalendarYear)
class HolidayCalendarYearAdmin(admin.ModelAdmin):
    """Loading a year is what makes it tradable: until then no day of it is a session."""

    list_display = ["exchange", "year", "source", "loaded_at", "loaded_by"]
    list_filter = ["exchange"]
    readonly_fields = ["exchange", "year", "source", "loaded_at", "loaded_by", "note"]

    def get_form(
        self, request: HttpRequest, obj: Any | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = HolidayCalendarLoadForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["exchange", "year", "source", "holiday_file", "replace"]
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        loaded = holiday_calendar_load(
            exchange=data["exchange"],
            year=data["year"],
            rows=data["rows"],
            source=data["source"],
            actor=request.user,
            replace=data.get("replace", False),
        )
        obj.pk = loaded.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Unloading a year would silently stop trading; an admin edits holidays instead.
        return False


@admin.register(TradingHoliday)
class TradingHolidayAdmin(admin.ModelAdmin):
    list_display = ["date", "exchange", "reason"]
    list_filter = ["exchange"]
    date_hierarchy = "date"
    search_fields = ["reason"]


@admin.register(SpecialSession)
class SpecialSessionAdmin(admin.ModelAdmin):
    list_display = ["date", "exchange", "opens_at", "closes_at", "reason", "expiries_allowed"]
    list_filter = ["exchange"]
    date_hierarchy = "date"


@admin.register(SessionTiming)
class SessionTimingAdmin(admin.ModelAdmin):
    list_display = ["exchange", "effective_from", "opens_at", "closes_at"]
    list_filter = ["exchange"]


class LotSizeInline(admin.TabularInline):
    model = LotSize
    extra = 0


class FreezeQuantityInline(admin.TabularInline):
    model = FreezeQuantity
    extra = 0


class StrikeStepInline(admin.TabularInline):
    model = StrikeStep
    extra = 0


class ExpiryRuleInline(admin.TabularInline):
    model = ExpiryRule
    extra = 0


@admin.register(Underlying)
class UnderlyingAdmin(admin.ModelAdmin):
    list_display = ["symbol", "name", "exchange", "segment", "is_active"]
    list_filter = ["exchange", "is_active"]
    inlines = [ExpiryRuleInline, LotSizeInline, FreezeQuantityInline, StrikeStepInline]


@admin.register(LotSize)
class LotSizeAdmin(admin.ModelAdmin):
    list_display = ["underlying", "expiry_from", "expiry_to", "lot_size", "valid_until", "note"]
    list_filter = ["underlying"]


@admin.register(FreezeQuantity)
class FreezeQuantityAdmin(admin.ModelAdmin):
    list_display = ["underlying", "effective_from", "quantity"]
    list_filter = ["underlying"]


@admin.register(ExpiryRule)
class ExpiryRuleAdmin(admin.ModelAdmin):
    list_display = [
        "underlying",
        "kind",
        "weekday",
        "effective_from",
        "effective_to",
        "listed_count",
    ]
    list_filter = ["underlying", "kind"]


class BrokerSymbolInline(admin.TabularInline):
    model = BrokerSymbol
    extra = 0


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    list_display = ["underlying", "expiry", "strike", "option_type", "lot_size", "source"]
    list_filter = ["underlying", "source", "option_type"]
    date_hierarchy = "expiry"
    search_fields = ["broker_symbols__tradingsymbol", "broker_symbols__token"]
    list_select_related = ["underlying"]
    inlines = [BrokerSymbolInline]


@admin.register(InstrumentMasterImport)
class InstrumentMasterImportAdmin(admin.ModelAdmin):
    """Read-only: the daily master task writes these (a failed one kept the previous master)."""

    list_display = ["session_date", "broker", "ok", "contracts", "message", "attempted_at"]
    list_filter = ["broker", "ok"]
    date_hierarchy = "session_date"
    readonly_fields = [f.name for f in InstrumentMasterImport._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- execution engine -------------------------------------------------------------------------
from execution.models.engine import (  # noqa: E402 (engine section of this module)
    ExecutionEvent,
    KillSwitch,
    OrderIntent,
    Position,
    ScheduledRun,
)

_INTENT_INLINE_FIELDS = [
    "account",
    "side",
    "tradingsymbol",
    "quantity",
    "tag",
    "state",
    "sent_at",
    "error",
]


class OrderIntentInline(admin.TabularInline):
    model = OrderIntent
    extra = 0
    can_delete = False
    fields = tuple(_INTENT_INLINE_FIELDS)
    readonly_fields = tuple(_INTENT_INLINE_FIELDS)
    show_change_link = True

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ScheduledRun)
class ScheduledRunAdmin(admin.ModelAdmin):
    list_display = [
        "session_date",
        "boundary",
        "fire_at",
        "strategy_version",
        "owner",
        "source",
        "is_test",
        "state",
        "mtm",
    ]
    list_filter = ["state", "boundary", "source", "is_test", "session_date"]
    search_fields = ["owner__email", "strategy_version__strategy__name"]
    list_select_related = ["strategy_version__strategy", "owner"]
    readonly_fields = ["strategy_version", "owner", "entry_run", "allocations"]
    inlines = [OrderIntentInline]

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # deleting a run would delete its order intents (audit)


@admin.register(OrderIntent)
class OrderIntentAdmin(AuditAdmin):
    """Every order we meant to send, as written before sending: audit, never edited."""

    list_display = [
        "tag",
        "run",
        "account",
        "side",
        "tradingsymbol",
        "quantity",
        "state",
        "intended_at",
        "sent_at",
        "acked_at",
    ]
    list_filter = ["state", "purpose", "side"]
    search_fields = ["tag", "broker_order_id", "tradingsymbol"]
    list_select_related = ["run", "account"]
    readonly_fields = [f.name for f in OrderIntent._meta.fields]


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = ["run", "account", "tradingsymbol", "net_quantity", "last_price"]
    list_select_related = ["run", "account"]
    search_fields = ["tradingsymbol", "owner__email"]


class KillSwitchForm(forms.ModelForm):
    class Meta:
        model = KillSwitch
        fields = ["scope", "user", "engaged", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        global_engaged = data.get("engaged") and data.get("scope") == "global"
        if global_engaged and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why the platform-wide kill switch is engaged.")
        return data


@admin.register(KillSwitch)
class KillSwitchAdmin(admin.ModelAdmin):
    """Switch rows are changed here only by staff holding the kill-switch permission
    (trader.permissions), the same as the engage/re-arm form; others may look. Engaging or
    re-arming here goes through the same services as that form: the actor, the time and the
    reason are recorded and audited, and engaging cancels orders and flattens positions."""

    form = KillSwitchForm
    list_display = [
        "scope", "user", "engaged", "engaged_at", "engaged_by", "reason", "rearmed_at",
    ]  # fmt: skip
    list_filter = ["scope", "engaged"]
    readonly_fields = ["engaged_at", "engaged_by", "rearmed_at"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from execution.protection.killswitch import kill_switch_engage, kill_switch_rearm

        user = obj.user if obj.scope == "user" else None
        turned = not change or "engaged" in form.changed_data
        if obj.engaged and turned:
            kill_switch_engage(actor=request.user, user=user, reason=obj.reason)
        elif not obj.engaged and turned and change:
            kill_switch_rearm(actor=request.user, user=user)
        else:
            obj.save()
            return
        saved = KillSwitch.objects.get(scope=obj.scope, user=user)
        obj.pk = saved.pk
        obj.refresh_from_db()

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return staff_may(user=request.user, permission=OPERATE_GLOBAL_KILL_SWITCH)

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return staff_may(user=request.user, permission=OPERATE_GLOBAL_KILL_SWITCH)

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(ExecutionEvent)
class ExecutionEventAdmin(AuditAdmin):
    """The audit trail: read-only (the database refuses changes too)."""

    list_display = ["at", "kind", "user_id", "run_id", "intent_id", "message"]
    list_filter = ["kind"]
    search_fields = ["message", "kind"]
    date_hierarchy = "at"


from execution.models.charges import BrokerageRate, ChargeRate  # noqa: E402 (charges section)


@admin.register(ChargeRate)
class ChargeRateAdmin(admin.ModelAdmin):
    """Add a row (do not edit an old one) when a rate changes: past trades keep their rates."""

    list_display = [
        "exchange",
        "effective_from",
        "stt_sell_percent",
        "exchange_txn_percent",
        "ipft_percent",
        "sebi_fee_percent",
        "stamp_buy_percent",
        "gst_percent",
        "gst_on_ipft",
    ]
    list_filter = ["exchange"]


@admin.register(BrokerageRate)
class BrokerageRateAdmin(admin.ModelAdmin):
    list_display = ["broker", "effective_from", "per_order", "note"]
    list_filter = ["broker"]
