"""The traded value of an order's fills, stored: each new fill books the difference between
the broker's cumulative value and this figure, so positions carry the traded value to the
paisa (deriving it from an average stored in paise drifted by a few paise per order).

Existing rows start from their average times their filled quantity, the best figure they
have. The column has a default, so both vendors add it in place (no table rebuild on SQLite:
the never-unsent trigger of 0020 stays).
"""

from decimal import Decimal

from django.db import migrations, models
from django.db.models import F


def backfill(apps, schema_editor):
    OrderIntent = apps.get_model("execution", "OrderIntent")
    OrderIntent.objects.filter(filled_quantity__gt=0, average_price__isnull=False).update(
        filled_value=F("average_price") * F("filled_quantity")
    )


class Migration(migrations.Migration):
    dependencies = [("execution", "0022_account_ready_check_names")]

    operations = [
        migrations.AddField(
            model_name="orderintent",
            name="filled_value",
            field=models.DecimalField(decimal_places=2, default=Decimal("0"), max_digits=16),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
