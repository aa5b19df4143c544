import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("brokers", "0002_credentials_login_state_paper_book"),
        ("execution", "0020_intent_needs_attention"),
    ]

    operations = [
        migrations.AddField(
            model_name="scheduledrun",
            name="price_account",
            field=models.ForeignKey(
                blank=True,
                help_text="Paper runs only: the live account whose quotes price the run.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="brokers.brokeraccount",
            ),
        ),
        migrations.AddField(
            model_name="position",
            name="last_price_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
