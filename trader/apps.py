from django.apps import AppConfig


class TraderConfig(AppConfig):
    name = "trader"
    verbose_name = "Traders"

    def ready(self) -> None:
        from trader import staff_auth  # noqa: F401 (connects the second-factor receivers)
        from trader.constraint_messages import install

        install()
