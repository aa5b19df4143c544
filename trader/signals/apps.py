from django.apps import AppConfig


class SignalsConfig(AppConfig):
    name = "trader.signals"
    label = "signals"
    verbose_name = "Signal webhooks"
    default_auto_field = "django.db.models.BigAutoField"
