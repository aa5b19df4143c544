from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0009_seed_charge_rates"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderintent",
            name="reference_price",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="orderintent",
            name="limit_protection_percent",
            field=models.DecimalField(blank=True, decimal_places=2, max_digits=5, null=True),
        ),
    ]
