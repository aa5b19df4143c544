"""Load demo data: users, then whatever each app's `demo.seed(users)` adds. Idempotent."""

from __future__ import annotations

import importlib
from typing import Any

from django.core.management.base import BaseCommand

from trader.demo import seed_users

APPS_WITH_DEMO_DATA = ["execution", "brokers", "trader.strategy_demo", "marketplace"]


class Command(BaseCommand):
    help = "Create the demo admin, trader and creator, and each app's demo data."

    def handle(self, *args: Any, **options: Any) -> None:
        users = seed_users()
        for module_name in APPS_WITH_DEMO_DATA:
            module_path = module_name if "." in module_name else f"{module_name}.demo"
            try:
                module = importlib.import_module(module_path)
            except ModuleNotFoundError as exc:
                if exc.name != module_path:
                    raise
                continue
            module.seed(users)
        if users.created:
            self.stdout.write(self.style.WARNING("Demo logins (shown only this once):"))
            for email, password in users.created.items():
                self.stdout.write(f"  {email}  password: {password}")
            self.stdout.write("Reset one with: python manage.py changepassword <email>")
        else:
            self.stdout.write(
                "Demo data is up to date. The demo logins were printed when they were created; "
                "reset one with: python manage.py changepassword <email>"
            )
