"""WeCom callbacks on a real worker over a real broker: an event POSTed twice (WeCom's retry)
is stored once and processed once by the worker, and an event whose task was lost is found
by the sweep and processed."""

import pytest
from django.test import Client

from crm.models import WeComEvent
from crm.tasks import wecom_events_sweep_task
from devstack.wecom_callbacks import contact_event_xml
from tests.crm.wecom.callback_support import CALLBACK_SETTINGS, post_callback
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def callback_settings(settings) -> None:
    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)


def test_an_event_delivered_twice_is_processed_once_on_the_worker(
    celery_worker, publish_to_test_queue, callback_settings
) -> None:
    client = Client()
    message = contact_event_xml("del_follow_user", user_id="wangwu", external_userid="wmW1")
    assert post_callback(client, message).content == b"success"
    assert post_callback(client, message).content == b"success"
    wait_for(lambda: WeComEvent.objects.filter(status="ignored").exists(), worker=celery_worker)
    event = WeComEvent.objects.get()
    assert (event.status, event.attempts) == ("ignored", 1)


def test_the_sweep_finds_an_event_whose_task_was_lost(
    celery_worker, callback_settings, enqueued
) -> None:
    """The POST's task is never published (the `enqueued` seam swallows it); the sweep, run
    by the worker with the event made stale, queues it again."""
    from datetime import timedelta

    from django.db import connection

    # A customer unknown here: the handler has nothing to end and ignores it, without WeCom.
    message = contact_event_xml("del_follow_user", user_id="u1", external_userid="wmL1")
    post_callback(Client(), message)
    [lost] = enqueued
    event = WeComEvent.objects.get()
    # received_at is append-only: the trigger is stepped around, as for no production code.
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE crm_wecomevent DISABLE TRIGGER crm_wecomevent_append_only")
        WeComEvent.objects.filter(pk=event.pk).update(
            received_at=event.received_at - timedelta(hours=1)
        )
        cursor.execute("ALTER TABLE crm_wecomevent ENABLE TRIGGER crm_wecomevent_append_only")
    wecom_events_sweep_task.apply_async(queue=celery_worker.queue)
    wait_for(lambda: WeComEvent.objects.filter(status="ignored").exists(), worker=celery_worker)
    assert lost.args == (event.pk,)
