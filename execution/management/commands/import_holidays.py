"""`python manage.py import_holidays --exchange NSE --year 2027 --source NSE/CMTR/… FILE.csv`"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from execution.models import Exchange
from execution.reference.holidays import (
    CalendarYearLoadedError,
    HolidayFileError,
    holiday_calendar_load,
    holiday_file_parse,
)


class Command(BaseCommand):
    help = (
        "Load an exchange's holiday list for a year from a CSV (date,description[,opens,closes]) "
        "and mark the year tradable. A bad file changes nothing and names the wrong line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument("--exchange", required=True, choices=Exchange.values)
        parser.add_argument("--year", required=True, type=int)
        parser.add_argument(
            "--source",
            default="",
            help="The exchange circular (number or URL); default: the file's name.",
        )
        parser.add_argument(
            "--replace", action="store_true", help="Load again a year that is already loaded."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        year, exchange = options["year"], options["exchange"]
        try:
            rows = holiday_file_parse(text=text, year=year)
            loaded = holiday_calendar_load(
                exchange=exchange,
                year=year,
                rows=rows,
                source=options["source"] or path.name,
                replace=options["replace"],
            )
        except (HolidayFileError, CalendarYearLoadedError) as exc:
            raise CommandError(f"{path}: {exc} Nothing was changed.") from exc
        holidays = sum(1 for row in rows if not row.is_special)
        self.stdout.write(
            f"{exchange} {year} loaded from {loaded.source}: {holidays} holidays, "
            f"{len(rows) - holidays} special sessions. {year} is now tradable."
        )
