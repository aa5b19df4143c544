"""`python manage.py simulate_day --strategies N --speed X`: one compressed session on the
engine under a simulated clock (execution.simulate_day); prints one JSON summary.

It creates N traders with paper accounts in the database it runs against: run it on a
scratch or development database, never production."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Simulate one trading session (09:15-15:40 IST) with N paper strategies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--strategies", type=int, default=20)
        parser.add_argument(
            "--speed",
            type=float,
            default=600.0,
            help="Simulated seconds per real second (600: the session in about 39 s).",
        )
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            default=None,
            help="The session day (YYYY-MM-DD); default: the last session before today.",
        )
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--watch-every",
            type=int,
            default=1,
            help="Minutes between two passes of the MTM watch (default 1).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from execution.simulate_day import simulate_day

        try:
            summary = simulate_day(
                strategies=options["strategies"],
                speed=options["speed"],
                day=options["date"],
                seed=options["seed"],
                watch_every=options["watch_every"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(summary.to_json()))
