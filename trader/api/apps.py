from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "trader.api"
    label = "api"  # the app label its migrations and tables were made under
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token scheme with drf-spectacular (the schema's securitySchemes).
        from trader.api import schema  # noqa: F401
