"""Seed the platform risk ceilings (one row, pk=1). Admins change them in Django admin."""

from decimal import Decimal

from django.db import migrations

# Starting policy, not market facts: generous enough for retail index-option strategies, low
# enough that a typo (1000 lots instead of 10) is refused. Editable in admin.
DEFAULT_CEILING = {
    "max_lots_per_order": 50,
    "max_lots_per_strategy": 200,
    "max_open_strategies": 20,
    "max_daily_loss": Decimal("500000.00"),
}


def seed(apps, schema_editor):
    RiskCeiling = apps.get_model("trader", "RiskCeiling")
    RiskCeiling.objects.get_or_create(pk=1, defaults=DEFAULT_CEILING)


def unseed(apps, schema_editor):
    apps.get_model("trader", "RiskCeiling").objects.filter(pk=1).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("trader", "0002_strategies"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
