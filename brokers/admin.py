from __future__ import annotations

from django.contrib import admin

from brokers.models import AccountEvent, BrokerAccount, PaperAccount, PaperOrder, PaperPosition

# Encrypted credentials are never shown or edited in admin: traders enter them on their own
# pages, and staff must not read them.
_SECRET_FIELDS = ("api_key", "api_secret", "access_token", "refresh_token")


class PaperAccountInline(admin.StackedInline):
    model = PaperAccount
    can_delete = False
    exclude = ("token_hash", "pending_login_nonce")
    readonly_fields = ("token_expires_at",)


class AccountEventInline(admin.TabularInline):
    model = AccountEvent
    extra = 0
    can_delete = False
    readonly_fields = ("created_at", "kind", "actor", "message")

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(BrokerAccount)
class BrokerAccountAdmin(admin.ModelAdmin):
    list_display = ("label", "owner", "broker", "status", "token_expires_at", "orders_per_second")
    list_filter = ("broker", "status")
    search_fields = ("label", "owner__email", "broker_user_id")
    exclude = _SECRET_FIELDS
    readonly_fields = ("token_issued_at", "token_expires_at", "last_checked_at")
    raw_id_fields = ("owner",)
    inlines = [PaperAccountInline, AccountEventInline]


@admin.register(PaperOrder)
class PaperOrderAdmin(admin.ModelAdmin):
    list_display = ("order_id", "account", "tag", "side", "tradingsymbol", "quantity", "status")
    list_filter = ("status", "side")
    search_fields = ("order_id", "tag", "tradingsymbol")
    raw_id_fields = ("account",)


@admin.register(PaperPosition)
class PaperPositionAdmin(admin.ModelAdmin):
    list_display = ("account", "tradingsymbol", "product", "quantity", "average_price")
    raw_id_fields = ("account",)
