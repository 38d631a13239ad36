"""The segmentation schedules named in the operators' words (定时任务 in the admin). A schedule an
operator renamed keeps its name; reversing restores the English names."""

from django.db import migrations

NAMES = (
    ("Nightly full recomputation (RFM, lifecycle, segments)", "每晚全量重算（RFM、生命周期、人群）"),
    ("Recompute customers marked by ingestion", "每分钟重算新数据涉及的客户"),
    ("Weekly refit of the predictive models", "每周训练预测模型"),
    ("Nightly scoring with the predictive models", "每晚预测模型评分"),
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
        ("segments", "0008_field_verbose_names"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(to_chinese, to_english)]
