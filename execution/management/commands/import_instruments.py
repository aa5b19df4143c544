"""Import a broker's instrument master file (Kite's CSV is the canonical format)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.reference.instruments import kite_master_import, kite_rows


class Command(BaseCommand):
    help = "Import index options from a broker instrument master file: --broker kite FILE"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--broker", required=True, choices=["kite"])
        parser.add_argument("file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = kite_master_import(rows=kite_rows(options["file"]))
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        for error in result.errors or []:
            self.stderr.write(error)
        self.stdout.write(
            f"{result.created} created, {result.updated} updated, {result.skipped} skipped, "
            f"{len(result.errors or [])} errors"
        )
