"""Dirty marks become an append-only queue (see DirtyCustomer): no row is ever updated, so
concurrent ingestion batches about one customer never wait on each other for it."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("crm", "0001_initial")]

    operations = [
        migrations.DeleteModel(name="DirtyCustomer"),
        migrations.CreateModel(
            name="DirtyCustomer",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("marked_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "customer",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="crm.customer",
                    ),
                ),
            ],
            options={
                "verbose_name": "customer to recompute",
                "verbose_name_plural": "customers to recompute",
            },
        ),
    ]
