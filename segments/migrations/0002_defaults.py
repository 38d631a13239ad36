"""The first active RFM and lifecycle policies, and the recomputation schedules (editable in the
admin under Periodic tasks): the nightly full run at 02:30 business time and the sweep of
customers marked by ingestion every minute."""

from django.conf import settings
from django.db import migrations

NIGHTLY_TASK = "segments.recompute_full"
SWEEP_TASK = "segments.recompute_dirty"


def create_defaults(apps, schema_editor):
    apps.get_model("segments", "RfmPolicy").objects.get_or_create(
        version=1, defaults={"is_active": True, "created_by": "default"}
    )
    apps.get_model("segments", "LifecyclePolicy").objects.get_or_create(
        version=1, defaults={"is_active": True, "created_by": "default"}
    )
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = crontab_model.objects.get_or_create(
        minute="30",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    every_minute, _ = interval_model.objects.get_or_create(every=60, period="seconds")
    task_model.objects.get_or_create(
        name="Nightly full recomputation (RFM, lifecycle, segments)",
        defaults={"task": NIGHTLY_TASK, "crontab": nightly, "kwargs": '{"trigger": "schedule"}'},
    )
    task_model.objects.get_or_create(
        name="Recompute customers marked by ingestion",
        defaults={"task": SWEEP_TASK, "interval": every_minute},
    )


def remove_defaults(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[NIGHTLY_TASK, SWEEP_TASK]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_defaults, remove_defaults)]
