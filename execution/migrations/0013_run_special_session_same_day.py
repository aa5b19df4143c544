"""A run's special session must be the session of the run's own date, at the database.

The weekend CHECK (scheduledrun_weekend_needs_special_session) requires a reference to a
declared SpecialSession, but a CHECK cannot look into another table: a Saturday run pointing at
the Budget Sunday of another year would pass it. These triggers refuse that, and refuse moving a
special session that runs reference to another date.

Written per vendor. On SQLite a table rebuild (a later AlterField on either model) drops
triggers: such a migration must run this one's SQL again.
"""

from django.db import migrations

from execution.dbfunctions import vendor_sql

MESSAGE = "a run's special session must be on the run's own date"
MOVE_MESSAGE = "a special session that runs reference cannot move to another date"
# As SQL string literals (an apostrophe doubled).
_MESSAGE_SQL = "'" + MESSAGE.replace("'", "''") + "'"
_MOVE_MESSAGE_SQL = "'" + MOVE_MESSAGE + "'"

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION execution_run_special_session_same_day() RETURNS trigger AS $$
BEGIN
    IF NEW.special_session_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM execution_specialsession s
        WHERE s.id = NEW.special_session_id AND s.date = NEW.session_date
    ) THEN
        RAISE EXCEPTION USING MESSAGE = {_MESSAGE_SQL}, ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS execution_run_special_session_day ON execution_scheduledrun;
CREATE TRIGGER execution_run_special_session_day
    BEFORE INSERT OR UPDATE OF special_session_id, session_date ON execution_scheduledrun
    FOR EACH ROW EXECUTE FUNCTION execution_run_special_session_same_day();

CREATE OR REPLACE FUNCTION execution_special_session_keeps_its_runs() RETURNS trigger AS $$
BEGIN
    IF NEW.date <> OLD.date AND EXISTS (
        SELECT 1 FROM execution_scheduledrun r WHERE r.special_session_id = OLD.id
    ) THEN
        RAISE EXCEPTION USING MESSAGE = {_MOVE_MESSAGE_SQL}, ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS execution_special_session_keeps_runs ON execution_specialsession;
CREATE TRIGGER execution_special_session_keeps_runs
    BEFORE UPDATE OF date ON execution_specialsession
    FOR EACH ROW EXECUTE FUNCTION execution_special_session_keeps_its_runs();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS execution_run_special_session_day ON execution_scheduledrun;
DROP FUNCTION IF EXISTS execution_run_special_session_same_day();
DROP TRIGGER IF EXISTS execution_special_session_keeps_runs ON execution_specialsession;
DROP FUNCTION IF EXISTS execution_special_session_keeps_its_runs();
"""

_SAME_DAY = """
    NEW.special_session_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM execution_specialsession s
        WHERE s.id = NEW.special_session_id AND s.date = NEW.session_date
    )"""
SQLITE_FORWARD = [
    f"""CREATE TRIGGER IF NOT EXISTS execution_run_special_session_day_insert
       BEFORE INSERT ON execution_scheduledrun WHEN {_SAME_DAY}
       BEGIN SELECT RAISE(ABORT, {_MESSAGE_SQL}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS execution_run_special_session_day_update
       BEFORE UPDATE OF special_session_id, session_date ON execution_scheduledrun
       WHEN {_SAME_DAY}
       BEGIN SELECT RAISE(ABORT, {_MESSAGE_SQL}); END""",
    f"""CREATE TRIGGER IF NOT EXISTS execution_special_session_keeps_runs
       BEFORE UPDATE OF date ON execution_specialsession
       WHEN NEW.date <> OLD.date AND EXISTS (
           SELECT 1 FROM execution_scheduledrun r WHERE r.special_session_id = OLD.id
       )
       BEGIN SELECT RAISE(ABORT, {_MOVE_MESSAGE_SQL}); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS execution_run_special_session_day_insert",
    "DROP TRIGGER IF EXISTS execution_run_special_session_day_update",
    "DROP TRIGGER IF EXISTS execution_special_session_keeps_runs",
]


class Migration(migrations.Migration):
    dependencies = [("execution", "0012_hedge_confirmation")]

    operations = [
        vendor_sql(
            forward={"postgresql": [PG_FORWARD], "sqlite": SQLITE_FORWARD},
            backward={"postgresql": [PG_BACKWARD], "sqlite": SQLITE_BACKWARD},
            what="special-session trigger",
        )
    ]
