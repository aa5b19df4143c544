"""The engine's beat schedule moved to code (execution/schedule.py): remove the rows that
migrations 0007, 0016 and 0017 wrote. Beat writes them again, from code, every time it starts,
under the same names; going back leaves the table to beat as well."""

from django.db import migrations

NAMES = [
    "execution: plan the day (08:30)",
    "execution: plan the day again (09:00)",
    "execution: ready check (08:45)",
    "execution: mark to market (1 s)",
    "execution: reconcile open orders (15 s)",
    "execution: instrument masters (08:00)",
    "execution: trade books (15 s)",
]


def forward(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0023_intent_filled_value"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
