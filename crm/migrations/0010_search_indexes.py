"""The indexes of the admin's searches and filters: trigrams of customer names (pg_trgm), order
numbers on their own, orders by the time paid. Built concurrently: a million customers and ten
million orders keep taking writes while they build.

The trigram index needs the pg_trgm extension, which a server may not offer (the embedded
PostgreSQL of the quick start has none): there it is left out, and name searches read the
table, which at a quick start's size costs nothing. The model's state declares it either way."""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Upper

TRIGRAM_INDEX = "customer_name_trigram"


def trigrams_available(schema_editor) -> bool:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        return cursor.fetchone() is not None


def add_trigram_index(apps, schema_editor):
    if not trigrams_available(schema_editor):
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{TRIGRAM_INDEX}" ON "crm_customer"'
        ' USING gin ((UPPER("display_name")) gin_trgm_ops)'
    )


def drop_trigram_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{TRIGRAM_INDEX}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("crm", "0009_field_verbose_names"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddIndex(
                    model_name="customer",
                    index=GinIndex(
                        OpClass(Upper("display_name"), name="gin_trgm_ops"),
                        name=TRIGRAM_INDEX,
                    ),
                ),
            ],
            database_operations=[
                migrations.RunPython(add_trigram_index, drop_trigram_index),
            ],
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
