"""The audit trail's search by customer id also finds the list pages that showed the customer
among others (detail.customer_ids): a GIN index (jsonb_path_ops) on that array serves the JSON
containment. Built concurrently: the trail keeps taking writes while it builds."""

from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations
from django.db.models.fields.json import KeyTransform


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("core", "0005_audit_schedules"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="auditevent",
            index=GinIndex(
                OpClass(KeyTransform("customer_ids", "detail"), name="jsonb_path_ops"),
                name="audit_detail_customer_ids",
            ),
        ),
    ]
