import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("brokers", "0002_credentials_login_state_paper_book"),
        ("trader", "0008_staff_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="strategy",
            name="paper_price_account",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="brokers.brokeraccount",
            ),
        ),
    ]
