"""The predictive models' schedules (editable in the admin under Periodic tasks): a refit every
Sunday at 04:00 and a scoring every night at 03:30 business time, after the nightly
recomputation (02:30)."""

from django.conf import settings
from django.db import migrations

FIT_TASK = "segments.fit_models"
SCORE_TASK = "segments.score_models"


def create_schedules(apps, schema_editor):
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    weekly, _ = crontab_model.objects.get_or_create(
        minute="0",
        hour="4",
        day_of_week="0",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    nightly, _ = crontab_model.objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    task_model.objects.get_or_create(
        name="Weekly refit of the predictive models",
        defaults={"task": FIT_TASK, "crontab": weekly, "kwargs": '{"trigger": "schedule"}'},
    )
    task_model.objects.get_or_create(
        name="Nightly scoring with the predictive models",
        defaults={"task": SCORE_TASK, "crontab": nightly},
    )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[FIT_TASK, SCORE_TASK]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0005_predictive_models"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
