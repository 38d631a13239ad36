"""The campaign engine's schedules named in the operators' words (定时任务 in the admin). A
schedule an operator renamed keeps its name; reversing restores the English names."""

from django.db import migrations

NAMES = (
    ("Campaigns: start, reserve, recover and finish", "营销活动：启动、预留名额、恢复与结束"),
    ("Campaigns: collect WeCom bulk-message results", "营销活动：拉取企业微信群发结果"),
    ("Campaigns: nightly attribution catch-up", "营销活动：每晚补算转化归因"),
)


def rename(apps, pairs):
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    for old, new in pairs:
        task_model.objects.filter(name=old).update(name=new)


def to_chinese(apps, schema_editor):
    rename(apps, NAMES)


def to_english(apps, schema_editor):
    rename(apps, [(new, old) for old, new in NAMES])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0012_field_verbose_names"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(to_chinese, to_english)]
