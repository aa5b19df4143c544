"""ExecutionEvent is append-only at the database: UPDATE and DELETE are refused by triggers.

Written per vendor. On SQLite a table rebuild (a later AlterField on this model) drops
triggers: such a migration must run this one's SQL again.
"""

from django.db import migrations

from execution.dbfunctions import vendor_sql

PG_FORWARD = """
CREATE OR REPLACE FUNCTION execution_event_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'execution events are append-only (' || TG_OP || ' refused)',
        ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS execution_event_append_only ON execution_executionevent;
CREATE TRIGGER execution_event_append_only
    BEFORE UPDATE OR DELETE ON execution_executionevent
    FOR EACH ROW EXECUTE FUNCTION execution_event_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS execution_event_append_only ON execution_executionevent;
DROP FUNCTION IF EXISTS execution_event_refuse_change();
"""
SQLITE_FORWARD = [
    """CREATE TRIGGER IF NOT EXISTS execution_event_no_update
       BEFORE UPDATE ON execution_executionevent
       BEGIN SELECT RAISE(ABORT, 'execution events are append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER IF NOT EXISTS execution_event_no_delete
       BEFORE DELETE ON execution_executionevent
       BEGIN SELECT RAISE(ABORT, 'execution events are append-only (DELETE refused)'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS execution_event_no_update",
    "DROP TRIGGER IF EXISTS execution_event_no_delete",
]


class Migration(migrations.Migration):
    dependencies = [("execution", "0004_engine")]

    operations = [
        vendor_sql(
            forward={"postgresql": [PG_FORWARD], "sqlite": SQLITE_FORWARD},
            backward={"postgresql": [PG_BACKWARD], "sqlite": SQLITE_BACKWARD},
            what="append-only trigger",
        )
    ]
