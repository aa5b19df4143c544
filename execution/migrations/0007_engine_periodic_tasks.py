"""Register the engine's periodic tasks with django-celery-beat (editable in admin).

Crontabs are in market time (the Celery app's timezone is Asia/Kolkata): planning at 08:30 and
again at 09:00 on weekdays (weekend special sessions are planned by the re-plan hooks or by
running the task by hand), the ready check at 08:45, marking to market every second and
reconciliation of open orders every 15 seconds.
"""

from django.db import migrations

TASKS = [
    ("execution: plan the day (08:30)", "execution.tasks.day_plan_task", ("30", "8")),
    ("execution: plan the day again (09:00)", "execution.tasks.day_plan_task", ("0", "9")),
    ("execution: ready check (08:45)", "execution.tasks.accounts_ready_check_task", ("45", "8")),
]
INTERVALS = [
    ("execution: mark to market (1 s)", "execution.tasks.mtm_watch_task", 1),
    ("execution: reconcile open orders (15 s)", "execution.tasks.reconcile_open_orders_task", 15),
]


def forward(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, (minute, hour) in TASKS:
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="1-5",
            day_of_month="*",
            month_of_year="*",
            timezone="Asia/Kolkata",
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "crontab": crontab, "queue": "execution"}
        )
    for name, task, seconds in INTERVALS:
        interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": interval, "queue": "execution"}
        )


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    names = [t[0] for t in TASKS] + [t[0] for t in INTERVALS]
    PeriodicTask.objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0006_intent_lot_size"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
