from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from trader.audit_admin import AuditAdmin
from trader.models import (
    BrokerAllocation,
    Leg,
    Profile,
    RiskCeiling,
    RiskLimit,
    Strategy,
    StrategyAlgoId,
    StrategyEvent,
    StrategyVersion,
    User,
)


class ProfileInline(admin.StackedInline):
    model = Profile
    can_delete = False
    extra = 0


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "profile_name", "profile_mobile", "profile_state", "is_staff"]
    list_filter = ["is_staff", "is_superuser", "is_active", "profile__state"]
    search_fields = ["email", "profile__mobile", "profile__full_name", "profile__state"]
    list_select_related = ["profile"]
    inlines = [ProfileInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    @admin.display(description="name", ordering="profile__full_name")
    def profile_name(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "full_name", "")

    @admin.display(description="mobile")
    def profile_mobile(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "mobile", "")

    @admin.display(description="state", ordering="profile__state")
    def profile_state(self, obj: User) -> str:
        return getattr(getattr(obj, "profile", None), "state_name", "")


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "full_name", "mobile", "state", "city", "pin_code"]
    list_filter = ["state"]
    search_fields = ["user__email", "mobile", "full_name", "state", "city"]
    list_select_related = ["user"]


class LegInline(admin.TabularInline):
    model = Leg
    extra = 0
    can_delete = False

    # Versions are immutable snapshots: runs and orders point at them.
    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StrategyVersion)
class StrategyVersionAdmin(admin.ModelAdmin):
    list_display = ["strategy", "number", "entry_time", "exit_time", "effective_from"]
    list_select_related = ["strategy"]
    search_fields = ["strategy__name", "strategy__owner__email"]
    inlines = [LegInline]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_add_permission(self, request) -> bool:
        return False


class BrokerAllocationInline(admin.TabularInline):
    model = BrokerAllocation
    extra = 0
    raw_id_fields = ["broker_account"]


class StrategyAlgoIdInline(admin.TabularInline):
    model = StrategyAlgoId
    extra = 0


@admin.register(Strategy)
class StrategyAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "underlying", "status", "kind", "created_at"]
    list_filter = ["status", "kind", "underlying"]
    list_select_related = ["owner", "underlying", "current_version"]
    search_fields = ["name", "owner__email"]
    raw_id_fields = ["owner", "current_version"]
    inlines = [BrokerAllocationInline, StrategyAlgoIdInline]


@admin.register(StrategyEvent)
class StrategyEventAdmin(AuditAdmin):
    list_display = ["created_at", "strategy", "actor", "action"]
    list_filter = ["action"]
    list_select_related = ["strategy", "actor"]
    search_fields = ["strategy__name", "actor__email"]


@admin.register(RiskCeiling)
class RiskCeilingAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "max_lots_per_order",
        "max_lots_per_strategy",
        "max_open_strategies",
        "max_daily_loss",
        "updated_at",
    ]

    # One row (pk=1), seeded by a migration; every user's limits are capped by it.
    def has_add_permission(self, request) -> bool:
        return not RiskCeiling.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    list_display = [
        "user",
        "max_lots_per_order",
        "max_lots_per_strategy",
        "max_open_strategies",
        "max_daily_loss",
    ]
    list_select_related = ["user"]
    search_fields = ["user__email"]
    raw_id_fields = ["user"]
