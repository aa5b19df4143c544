from django.apps import AppConfig


class ExecutionConfig(AppConfig):
    name = "execution"

    def ready(self) -> None:
        # Today's runs follow changes to strategies and allocations (execution/planning/replan.py).
        from execution.planning import replan

        replan.connect()
