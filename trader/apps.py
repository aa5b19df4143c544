from django.apps import AppConfig


class TraderConfig(AppConfig):
    name = "trader"
    verbose_name = "Traders"

    def ready(self) -> None:
        from trader.constraint_messages import install

        install()
