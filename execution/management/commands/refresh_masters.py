"""Download, validate and map the brokers' instrument masters (what the 08:00 task does)."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.reference.masters import BROKERS, master_refresh


class Command(BaseCommand):
    help = "Refresh instrument masters: [--broker NAME ...] [--day YYYY-MM-DD] [--file PATH ...]"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker", action="append", choices=BROKERS)
        parser.add_argument("--day", type=date.fromisoformat, help="session date (default today)")
        parser.add_argument(
            "--file", action="append", help="a downloaded master file instead of the URL(s)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from execution.planning.plan import today_ist

        brokers = options["broker"] or list(BROKERS)
        payloads = None
        if options["file"]:
            if len(brokers) != 1:
                raise CommandError("--file needs exactly one --broker")
            try:
                payloads = [open(path, "rb").read() for path in options["file"]]  # noqa: SIM115
            except OSError as exc:
                raise CommandError(str(exc)) from exc
        day = options["day"] or today_ist()
        failed = 0
        for broker in brokers:
            record = master_refresh(broker=broker, day=day, payloads=payloads)
            failed += not record.ok
            self.stdout.write(f"{broker}: {'ok' if record.ok else 'FAILED'}: {record.message}")
        if failed:
            raise CommandError(f"{failed} master(s) not loaded; the previous ones stay in use")
