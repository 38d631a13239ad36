"""Tags pushed to WeCom: one intent waiting per customer and tag (a newer one replaces it), and
the sweep that pushes what is waiting, every five minutes (editable in the admin under Periodic
tasks; the push also starts right after each change)."""

from django.db import migrations, models

PUSH_TASK = "crm.wecom_tag_push"
PUSH_SCHEDULE_NAME = "每5分钟同步标签到企业微信"


def create_schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    every_five_minutes, _ = interval_model.objects.get_or_create(every=300, period="seconds")
    apps.get_model("django_celery_beat", "PeriodicTask").objects.get_or_create(
        name=PUSH_SCHEDULE_NAME, defaults={"task": PUSH_TASK, "interval": every_five_minutes}
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=PUSH_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_wecom_sync_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="wecomtagpush",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "pending")),
                fields=("customer", "tag"),
                name="wecom_tag_push_one_pending",
            ),
        ),
        migrations.RunPython(create_schedule, delete_schedule),
    ]
