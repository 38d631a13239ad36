"""The indexes of the admin's searches and filters: trigrams of customer names (pg_trgm), order
numbers on their own, orders by the time paid. Built concurrently: a million customers and ten million orders keep taking writes
while they build."""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently, TrigramExtension
from django.db import migrations, models
from django.db.models.functions import Upper


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("crm", "0009_field_verbose_names"),
    ]

    operations = [
        TrigramExtension(),
        AddIndexConcurrently(
            model_name="customer",
            index=GinIndex(
                OpClass(Upper("display_name"), name="gin_trgm_ops"),
                name="customer_name_trigram",
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["external_id"], name="order_by_external_id"),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(fields=["paid_at"], name="order_by_paid_at"),
        ),
    ]
