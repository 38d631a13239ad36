"""The campaign engine's schedules (editable in the admin under Periodic tasks): the tick that
moves campaigns along and the look at WeCom bulk-message results, both every minute, and the
nightly attribution catch-up at 03:30 business time."""

from django.conf import settings
from django.db import migrations

CATCH_UP = ("Campaigns: nightly attribution catch-up", "campaigns.attribute_catch_up")

SCHEDULES = (
    ("Campaigns: start, reserve, recover and finish", "campaigns.tick"),
    ("Campaigns: collect WeCom bulk-message results", "campaigns.poll_results"),
)


def create_schedules(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every_minute, _ = interval_model.objects.get_or_create(every=60, period="seconds")
    for name, task in SCHEDULES:
        task_model.objects.get_or_create(
            name=name, defaults={"task": task, "interval": every_minute}
        )
    nightly, _ = apps.get_model("django_celery_beat", "CrontabSchedule").objects.get_or_create(
        minute="30",
        hour="3",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    task_model.objects.get_or_create(
        name=CATCH_UP[0], defaults={"task": CATCH_UP[1], "crontab": nightly}
    )


def delete_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task__in=[task for _name, task in (*SCHEDULES, CATCH_UP)]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_campaigns_deliveries"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
