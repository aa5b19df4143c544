"""A run's exit reason holds up to 200 characters (a deployment's daily-loss reason with its
amounts in Indian grouping exceeded 60).

SQLite enforces no varchar length, and rebuilding execution_scheduledrun there fails on the
trigger another table keeps on it (execution_special_session_keeps_runs): the column is
altered on PostgreSQL only; the model state changes everywhere."""

from django.db import migrations, models


def _widen(length: int):
    def alter(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            f"ALTER TABLE execution_scheduledrun ALTER COLUMN exit_reason TYPE varchar({length})"
        )

    return alter


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0025_intent_drop_claim_columns"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="scheduledrun",
                    name="exit_reason",
                    field=models.CharField(blank=True, max_length=200),
                ),
            ],
            database_operations=[migrations.RunPython(_widen(200), _widen(60))],
        ),
    ]
