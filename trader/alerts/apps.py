from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "trader.alerts"
    label = "alerts"
    verbose_name = "Alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The one seam with the engine: every audit event recorded passes by the router.
        from execution.audit import events_listen
        from trader.alerts.routing import events_recorded

        events_listen(events_recorded)
