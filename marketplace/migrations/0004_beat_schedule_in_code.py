"""The marketplace's beat schedule moved to code (marketplace/schedule.py): remove the rows
migration 0002 wrote. Beat writes them again, from code, every time it starts."""

from django.db import migrations

NAMES = [
    "marketplace: renew fees and lapse unpaid subscriptions",
    "marketplace: close last month's revenue ledger",
    "marketplace: refresh verified listing statistics",
]


def forward(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=NAMES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0003_listing_parrva_reference"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
