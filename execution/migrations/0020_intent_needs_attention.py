"""An order whose outcome is unknown is never made "unsent" again, at the database.

Adds the "needs attention" state (unknown past the settle time) and the moment an outcome
became unknown. A trigger refuses every change of an intent's state back to `intent` or
`sent` from any state but `intent`: once an order may have reached the wire, only a look-up at
the broker (or the owner) settles it; nothing can make it eligible for sending again.

Written per vendor. On SQLite a table rebuild (a later AlterField on OrderIntent) drops
triggers: such a migration must run this one's SQL again.
"""

from django.db import migrations, models

from execution.dbfunctions import vendor_sql

MESSAGE = "an order that may have been sent cannot become unsent again"
_MESSAGE_SQL = "'" + MESSAGE + "'"
_BACKWARDS = "NEW.state IN ('intent', 'sent') AND OLD.state <> 'intent' AND NEW.state <> OLD.state"

PG_FORWARD = f"""
CREATE OR REPLACE FUNCTION execution_intent_never_unsent() RETURNS trigger AS $$
BEGIN
    IF {_BACKWARDS} THEN
        RAISE EXCEPTION USING MESSAGE = {_MESSAGE_SQL}, ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS execution_intent_never_unsent ON execution_orderintent;
CREATE TRIGGER execution_intent_never_unsent
    BEFORE UPDATE OF state ON execution_orderintent
    FOR EACH ROW EXECUTE FUNCTION execution_intent_never_unsent();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS execution_intent_never_unsent ON execution_orderintent;
DROP FUNCTION IF EXISTS execution_intent_never_unsent();
"""
SQLITE_FORWARD = [
    f"""CREATE TRIGGER IF NOT EXISTS execution_intent_never_unsent
       BEFORE UPDATE OF state ON execution_orderintent WHEN {_BACKWARDS}
       BEGIN SELECT RAISE(ABORT, {_MESSAGE_SQL}); END""",
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS execution_intent_never_unsent"]

STATES = [
    ("intent", "Written, not sent"),
    ("sent", "Sent"),
    ("acknowledged", "Acknowledged"),
    ("rejected", "Rejected"),
    ("unknown", "Outcome unknown"),
    ("partially_filled", "Partly filled"),
    ("filled", "Filled"),
    ("cancelled", "Cancelled"),
    ("failed_over", "Moved to another account"),
    ("abandoned", "Not sent"),
    ("needs_attention", "Needs attention"),
]


class Migration(migrations.Migration):
    dependencies = [("execution", "0019_desk_run_states")]

    operations = [
        migrations.AddField(
            model_name="orderintent",
            name="unknown_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RemoveConstraint(model_name="orderintent", name="orderintent_state_valid"),
        migrations.AlterField(
            model_name="orderintent",
            name="state",
            field=models.CharField(choices=STATES, default="intent", max_length=16),
        ),
        migrations.AddConstraint(
            model_name="orderintent",
            constraint=models.CheckConstraint(
                condition=models.Q(state__in=[value for value, _ in STATES]),
                name="orderintent_state_valid",
            ),
        ),
        vendor_sql(
            forward={"postgresql": [PG_FORWARD], "sqlite": SQLITE_FORWARD},
            backward={"postgresql": [PG_BACKWARD], "sqlite": SQLITE_BACKWARD},
            what="never-unsent trigger",
        ),
    ]
