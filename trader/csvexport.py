"""CSV for people: every export goes through this writer so that no cell can run as a formula.

A spreadsheet evaluates a cell that starts with =, +, -, @, a tab or a carriage return as a
formula (CSV injection), and titles, names and references come from users. Such text cells are
prefixed with an apostrophe, which spreadsheets show as text; numbers are written as they are.

Exports meant for people read as the pages do: headings in words, amounts in rupees with lakh
and crore grouping and a real minus sign before the rupee (trader.india.rupees: ₹10,00,000.00),
months by name. The file starts with a byte-order mark so that spreadsheets open it as UTF-8
(the rupee and minus signs) instead of the system's code page.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

from django.http import HttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """The value as it may go into a CSV cell."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose text cells are escaped by `csv_cell`."""

    def __init__(self, stream: Any) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_response(filename: str) -> HttpResponse:
    """An attachment `filename` for people: UTF-8 with a byte-order mark."""
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    return response
