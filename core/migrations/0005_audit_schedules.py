"""The audit trail's schedules (editable in the admin under periodic tasks): the nightly prune
of events older than AUDIT_RETENTION_DAYS at 03:40 business time, after the nightly
recomputation has started, and the fold of API key use counts every five minutes."""

from django.conf import settings
from django.db import migrations

PRUNE_TASK = "core.audit_prune"
FOLD_TASK = "core.api_key_usage_fold"
FOLD_SECONDS = 300


def create_schedules(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = crontab_model.objects.get_or_create(
        minute="40",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    every, _ = interval_model.objects.get_or_create(every=FOLD_SECONDS, period="seconds")
    task_model.objects.get_or_create(
        name="清理过期审计日志", defaults={"task": PRUNE_TASK, "crontab": nightly}
    )
    task_model.objects.get_or_create(
        name="汇总 API 密钥调用次数",
        defaults={"task": FOLD_TASK, "interval": every, "expire_seconds": FOLD_SECONDS},
    )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[PRUNE_TASK, FOLD_TASK]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_audit_append_only"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
