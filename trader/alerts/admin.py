from django.contrib import admin

from trader.alerts.models import AlertChannel, AlertDelivery


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "label", "enabled", "verified_at", "last_error")
    list_filter = ("kind", "enabled")
    exclude = ("secret_encrypted", "link_code")  # never shown


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "user", "channel", "event", "state", "attempts", "last_error")
    list_filter = ("state", "event")

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
