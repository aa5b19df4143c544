"""Re-encrypt every stored broker credential with the first key of FIELD_ENCRYPTION_KEYS.

Rotation: prepend a new key to FIELD_ENCRYPTION_KEYS, deploy, run this command, then remove
the old key. Safe to run twice and while the platform runs (row by row, each locked briefly).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from brokers.crypto import needs_rotation, rotate
from brokers.models import BrokerAccount

_FIELDS = ("api_key", "api_secret", "access_token", "refresh_token")


class Command(BaseCommand):
    help = "Re-encrypt broker secrets and tokens with the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        rotated = 0
        ids = list(BrokerAccount.objects.order_by("pk").values_list("pk", flat=True))
        for pk in ids:
            with transaction.atomic():
                # Lock the row, then work on the raw ciphertext (the ORM would decrypt it).
                if not BrokerAccount.objects.select_for_update().filter(pk=pk).exists():
                    continue
                raw = _raw_row(pk)
                if raw is None:
                    continue
                changes = {
                    name: rotate(value) for name, value in raw.items() if needs_rotation(value)
                }
                if changes:
                    _write_raw(pk, changes)
                    rotated += 1
        self.stdout.write(f"Re-encrypted the credentials of {rotated} of {len(ids)} accounts.")


def _raw_row(pk: int) -> dict[str, str] | None:
    from django.db import connection

    table = BrokerAccount._meta.db_table
    columns = ", ".join(connection.ops.quote_name(name) for name in _FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [pk])  # noqa: S608
        found = cursor.fetchone()
    return dict(zip(_FIELDS, found, strict=True)) if found else None


def _write_raw(pk: int, changes: dict[str, str]) -> None:
    from django.db import connection

    table = BrokerAccount._meta.db_table
    assignments = ", ".join(f"{connection.ops.quote_name(name)} = %s" for name in changes)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
            [*changes.values(), pk],
        )
