"""Admin for the market reference data: admins keep holidays, sessions and dated facts current.

Nothing derived from these rows is cached, so a saved holiday moves that week's expiry at once.
"""

from __future__ import annotations

from django.contrib import admin

from execution.models import (
    BrokerSymbol,
    ExpiryRule,
    FreezeQuantity,
    Instrument,
    LotSize,
    SessionTiming,
    SpecialSession,
    StrikeStep,
    TradingHoliday,
    Underlying,
)


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
