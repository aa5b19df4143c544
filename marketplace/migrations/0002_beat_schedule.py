"""Beat rows for the marketplace tasks (times in IST: the Celery app's timezone)."""

from django.db import migrations

SCHEDULE = [
    # (name, task, minute, hour, day_of_month)
    (
        "marketplace: renew fees and lapse unpaid subscriptions",
        "marketplace.tasks.subscriptions_renew_or_lapse_task",
        "30",
        "0",
        "*",
    ),
    (
        "marketplace: close last month's revenue ledger",
        "marketplace.tasks.ledger_close_month_task",
        "0",
        "1",
        "1",
    ),
    (
        "marketplace: refresh verified listing statistics",
        "marketplace.tasks.listing_stats_refresh_task",
        "45",
        "16",
        "*",
    ),
]


def add_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minute, hour, day_of_month in SCHEDULE:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_month=day_of_month,
            month_of_year="*",
            day_of_week="*",
            timezone="Asia/Kolkata",
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "enabled": True}
        )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[row[0] for row in SCHEDULE]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("marketplace", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
