from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"

    def ready(self) -> None:
        # Subscribers' deployments are planned by the execution engine like any strategy.
        from marketplace import sources  # noqa: F401
