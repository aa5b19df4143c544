from django.contrib import admin

from trader.signals.models import Signal, SignalWebhook


@admin.register(SignalWebhook)
class SignalWebhookAdmin(admin.ModelAdmin):
    list_display = ("strategy", "enabled", "require_signature", "rotated_at", "auth_failures")
    # The secret's hash is never shown or edited here; owners rotate it on the strategy page.
    exclude = ("secret_hash",)
    readonly_fields = ("strategy", "public_id", "rotated_at", "auth_failures")


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    list_display = ("received_at", "webhook", "signal_id", "action", "outcome", "orders")
    list_filter = ("outcome", "action")
    search_fields = ("signal_id",)

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False
