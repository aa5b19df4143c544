"""Drop `OrderIntent.claimed_by` and `claimed_at`: a sender's claims live in Redis
(`execution.send.sender.claims_take`, keys `execution:claim:<tag>`), and nothing read or wrote
these columns. Going back adds them again, empty."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("execution", "0024_beat_schedule_in_code"),
    ]

    operations = [
        migrations.RemoveField(model_name="orderintent", name="claimed_at"),
        migrations.RemoveField(model_name="orderintent", name="claimed_by"),
    ]
