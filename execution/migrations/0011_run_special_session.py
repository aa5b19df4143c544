"""A weekend run references its declared special session (a foreign key set by the planner)
instead of a boolean any writer could set; the CHECK constraint requires the reference."""

import django.db.models.deletion
import django.db.models.lookups
from django.db import migrations, models

import execution.dbfunctions


def flags_to_sessions(apps, schema_editor):
    """Runs flagged special get the special session of their day (their underlying's exchange
    first, else any exchange's session that day)."""
    ScheduledRun = apps.get_model("execution", "ScheduledRun")
    SpecialSession = apps.get_model("execution", "SpecialSession")
    flagged = ScheduledRun.objects.filter(is_special_session=True).select_related(
        "strategy_version__strategy__underlying"
    )
    for run in flagged:
        sessions = SpecialSession.objects.filter(date=run.session_date)
        exchange = run.strategy_version.strategy.underlying.exchange
        session = sessions.filter(exchange=exchange).first() or sessions.first()
        if session is not None:
            run.special_session = session
            run.save(update_fields=["special_session"])


def sessions_to_flags(apps, schema_editor):
    ScheduledRun = apps.get_model("execution", "ScheduledRun")
    ScheduledRun.objects.filter(special_session__isnull=False).update(is_special_session=True)


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0010_intent_reference_price"),
    ]

    operations = [
        migrations.AddField(
            model_name="scheduledrun",
            name="special_session",
            field=models.ForeignKey(
                blank=True,
                help_text="Set by the planner from the calendar's declared special sessions.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="runs",
                to="execution.specialsession",
            ),
        ),
        migrations.RunPython(flags_to_sessions, sessions_to_flags),
        migrations.RemoveConstraint(
            model_name="scheduledrun",
            name="scheduledrun_no_weekend_unless_special",
        ),
        migrations.RemoveField(
            model_name="scheduledrun",
            name="is_special_session",
        ),
        migrations.AddConstraint(
            model_name="scheduledrun",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("special_session__isnull", False),
                    ("is_test", True),
                    django.db.models.lookups.LessThan(
                        execution.dbfunctions.IsoWeekday("session_date"), 6
                    ),
                    _connector="OR",
                ),
                name="scheduledrun_weekend_needs_special_session",
            ),
        ),
    ]
