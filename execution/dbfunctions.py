"""Database expressions the execution tables need, written per vendor.

They live in their own module because migrations import them by path.
"""

from __future__ import annotations

from typing import Any

from django.db import models


class IsoWeekday(models.Func):
    """ISO weekday of a date column (Monday 1 … Sunday 7), computed by the database itself.

    Django's own `__iso_week_day` lookup compiles on SQLite to a Python function registered on
    Django's connection; a CHECK constraint using it would break every other SQLite client of
    the file. These forms are native to each database.
    """

    output_field = models.IntegerField()
    arity = 1

    def as_sql(  # type: ignore[override]
        self, compiler: Any, connection: Any, **extra_context: Any
    ) -> Any:
        return super().as_sql(
            compiler, connection, template="CAST(EXTRACT(ISODOW FROM %(expressions)s) AS integer)"
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        # strftime('%w') is 0 for Sunday … 6 for Saturday; map Sunday to 7 as ISO does.
        # '%' is doubled twice: once for this template, once more because Django interpolates
        # a constraint's SQL (and SQLite's cursor wrapper un-doubles query text) afterwards.
        return super().as_sql(
            compiler,
            connection,
            template="((CAST(strftime('%%%%w', %(expressions)s) AS integer) + 6) %%%% 7 + 1)",
        )


def vendor_sql(
    *,
    forward: dict[str, list[str]],
    backward: dict[str, list[str]],
    what: str,
) -> Any:
    """A migration operation running the statements written for the connection's vendor
    (keys "postgresql", "sqlite"); a vendor without any fails the migration, naming `what`."""
    from django.db import migrations

    def run(statements: dict[str, list[str]], *, required: bool) -> Any:
        def apply(apps: Any, schema_editor: Any) -> None:
            vendor = schema_editor.connection.vendor
            if vendor not in statements:
                if required:
                    raise RuntimeError(f"No {what} written for {vendor}.")
                return
            for statement in statements[vendor]:
                schema_editor.execute(statement)

        return apply

    return migrations.RunPython(
        run(forward, required=True), run(backward, required=False), elidable=False
    )


def rows_update(objs: list[Any], fields: tuple[str, ...] | list[str]) -> None:
    """Write `fields` of each of `objs` (instances of one model, saved before): one prepared
    UPDATE executed for every row (a pipeline on PostgreSQL). The ORM's bulk_update builds a
    CASE per field and row, which costs seconds of CPU for a few hundred rows: on the hot path
    after T, and in the watch every second. Values are prepared by each field, as save() does."""
    from django.db import connection

    if not objs:
        return
    meta = objs[0]._meta
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    # Identifiers come from the model, values are parameters.
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    rows = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        + [obj.pk]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)
