"""WeCom's callback events are append-only in the database itself: a trigger refuses every
UPDATE that changes what arrived (received_at, message_hash, event, change_type, event_at,
message_encrypted, subject_hash, and the id); the processing columns (status, attempts,
processed_at, error_code) change as the event is applied. DELETE stays allowed: retention
and the erasure of a customer (console.services.privacy) remove events.

Also: the index of failed events for the sweep, and the sweep's schedule (every five
minutes, editable in the admin under periodic tasks; a run still queued when the next is due
expires)."""

from django.db import migrations, models

FORWARD = """
CREATE FUNCTION crm_wecomevent_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id IS DISTINCT FROM OLD.id
        OR NEW.received_at IS DISTINCT FROM OLD.received_at
        OR NEW.message_hash IS DISTINCT FROM OLD.message_hash
        OR NEW.event IS DISTINCT FROM OLD.event
        OR NEW.change_type IS DISTINCT FROM OLD.change_type
        OR NEW.event_at IS DISTINCT FROM OLD.event_at
        OR NEW.message_encrypted IS DISTINCT FROM OLD.message_encrypted
        OR NEW.subject_hash IS DISTINCT FROM OLD.subject_hash
    THEN
        RAISE EXCEPTION 'WeCom events are append-only: UPDATE of a received column of crm_wecomevent refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER crm_wecomevent_append_only
BEFORE UPDATE ON crm_wecomevent
FOR EACH ROW EXECUTE FUNCTION crm_wecomevent_refuse_change();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS crm_wecomevent_append_only ON crm_wecomevent;
DROP FUNCTION IF EXISTS crm_wecomevent_refuse_change();
"""

SWEEP_TASK = "crm.wecom_events_sweep"
SWEEP_SECONDS = 300


def create_schedule(apps, schema_editor):
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=SWEEP_SECONDS, period="seconds")
    task_model.objects.get_or_create(
        name="补处理企业微信回调事件",
        defaults={"task": SWEEP_TASK, "interval": every, "expire_seconds": SWEEP_SECONDS},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task=SWEEP_TASK).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0013_wecom_source"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="wecomevent",
            index=models.Index(
                condition=models.Q(("status", "failed")),
                fields=["processed_at"],
                name="wecom_event_failed",
            ),
        ),
        migrations.RunSQL(FORWARD, BACKWARD),
        migrations.RunPython(create_schedule, remove_schedule),
    ]
