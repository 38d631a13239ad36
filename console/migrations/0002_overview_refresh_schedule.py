"""The overview's refresh (console.overview_refresh) every five minutes, editable in the admin
under periodic tasks; a run still queued when the next is due expires."""

from django.db import migrations

REFRESH_TASK = "console.overview_refresh"
REFRESH_SECONDS = 300  # console.overview.REFRESH_SECONDS when this schedule was written


def create_schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=REFRESH_SECONDS, period="seconds")
    task_model.objects.get_or_create(
        name="刷新运营看板",
        defaults={"task": REFRESH_TASK, "interval": every, "expire_seconds": REFRESH_SECONDS},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        task=REFRESH_TASK
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_customer_export"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
