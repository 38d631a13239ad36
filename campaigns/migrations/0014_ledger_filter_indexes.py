"""Partial indexes for the ledger list's filters by reason and holdout; built concurrently,
so that the ledger keeps taking writes while they build."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("campaigns", "0013_periodic_task_names_zh"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=~Q(reason=""), fields=["reason", "id"], name="delivery_by_reason"
            ),
        ),
        AddIndexConcurrently(
            model_name="delivery",
            index=models.Index(
                condition=Q(is_holdout=True), fields=["id"], name="delivery_held_out"
            ),
        ),
    ]
