"""ApiKey moved from crm to core: the table `crm_apikey` stays as it is (state only), and its
content type is renamed so that permissions and admin log entries keep pointing at it."""

import django.contrib.postgres.fields
import django.utils.timezone
from django.db import migrations, models


def rename_content_type(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    if not content_types.objects.filter(app_label="core", model="apikey").exists():
        content_types.objects.filter(app_label="crm", model="apikey").update(app_label="core")


def restore_content_type(apps, schema_editor):
    content_types = apps.get_model("contenttypes", "ContentType")
    if not content_types.objects.filter(app_label="crm", model="apikey").exists():
        content_types.objects.filter(app_label="core", model="apikey").update(app_label="crm")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("crm", "0007_identity_masks_hide_more"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="ApiKey",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("name", models.CharField(max_length=64, verbose_name="name")),
                        ("prefix", models.CharField(max_length=12, unique=True, verbose_name="prefix")),
                        ("secret_hash", models.CharField(max_length=64)),
                        ("scopes", django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=32), size=None, verbose_name="scopes")),
                        ("created_at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="created at")),
                        ("last_used_at", models.DateTimeField(blank=True, null=True, verbose_name="last used")),
                        ("revoked_at", models.DateTimeField(blank=True, null=True, verbose_name="revoked at")),
                    ],
                    options={
                        "verbose_name": "API key",
                        "verbose_name_plural": "API keys",
                        "ordering": ["-created_at"],
                        "db_table": "crm_apikey",
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(rename_content_type, restore_content_type),
    ]
