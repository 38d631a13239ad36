"""The nightly full sync with WeCom (editable in the admin under periodic tasks) at 03:30
business time, and what a running sync records of the relations it found (its reconciliation
ends the others). The schedule is enabled everywhere: the task returns at once where WeCom is
not configured (no corp id or secret), so configuring WeCom later needs no schedule change."""

from django.conf import settings
from django.db import migrations, models

SYNC_TASK = "crm.wecom_sync"


def create_schedule(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = crontab_model.objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    task_model.objects.get_or_create(
        name="企业微信夜间同步",
        defaults={"task": SYNC_TASK, "crontab": nightly, "kwargs": '{"trigger": "schedule"}'},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=SYNC_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0014_wecom_event_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.CreateModel(
            name="WeComSyncSeenFollow",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("run_id", models.BigIntegerField()),
                ("follow_id", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("run_id", "follow_id"), name="wecom_sync_seen_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
