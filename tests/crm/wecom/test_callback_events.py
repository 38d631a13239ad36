"""Stored callback events: applied once through the registered handler (a second run, or a
second delivery, applies nothing), a failing handler's writes rolled back and its event
retried with backoff, lost tasks swept up, and what arrived never changed (the table's
trigger refuses it, whatever the code above does)."""

import datetime as dt
import threading

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError
from django.test import Client
from django.utils import timezone
from wechatpy.exceptions import WeChatClientException

from crm.models import Tag, WeComEvent, WeComEventStatus
from crm.services.wecom_events import (
    MAX_ATTEMPTS,
    SKIPPED,
    STALE_AFTER,
    wecom_event_process,
    wecom_events_requeue,
)
from crm.tasks import RETRY_COUNTDOWNS, wecom_event_process_task
from crm.wecom.registry import HANDLERS, CallbackEvent
from devstack.wecom_callbacks import chat_event_xml, contact_event_xml
from tests.crm.wecom.callback_support import (
    CALLBACK_SETTINGS,
    handler_registered,
    post_callback,
)
from tests.factories.crm import TagFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("callback_settings")]

CONTACT = "change_external_contact"


@pytest.fixture
def callback_settings(settings) -> None:
    for name, value in CALLBACK_SETTINGS.items():
        setattr(settings, name, value)


def _received(client: Client, message: str) -> WeComEvent:
    assert post_callback(client, message).status_code == 200
    return WeComEvent.objects.latest("pk")


def _edit(external_userid: str = "wmEdit0001") -> str:
    return contact_event_xml(
        "edit_external_contact", user_id="lisi", external_userid=external_userid
    )


def test_the_task_applies_an_event_through_its_handler_once(client: Client, enqueued) -> None:
    seen: list[CallbackEvent] = []

    def handler(event: CallbackEvent) -> str:
        seen.append(event)
        TagFactory(name=f"applied-{event.event_id}")
        return "applied"

    message = chat_event_xml(
        "update",
        chat_id="wrChat01",
        update_detail="add_member",
        join_scene=3,
        mem_change_list=["wmA", "wmB"],
        create_time=1764900000,
    )
    event = _received(client, message)
    with handler_registered("change_external_chat", "update", handler):
        assert wecom_event_process_task.apply(args=[event.pk]).get() == "applied"
        # Run again (a duplicate message, the sweep): nothing is applied twice.
        assert wecom_event_process_task.apply(args=[event.pk]).get() == SKIPPED
    [callback] = seen
    assert (callback.event, callback.change_type, callback.event_id) == (
        "change_external_chat",
        "update",
        event.pk,
    )
    assert callback.event_at == dt.datetime.fromtimestamp(1764900000, tz=dt.UTC)
    assert callback.fields["ChatId"] == "wrChat01"
    assert callback.fields["JoinScene"] == "3"
    assert callback.fields["MemChangeList"] == {"Item": ["wmA", "wmB"]}
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error_code) == (WeComEventStatus.APPLIED, 1, "")
    assert event.processed_at is not None
    assert Tag.objects.filter(name=f"applied-{event.pk}").count() == 1


def test_the_same_event_delivered_twice_is_applied_once(client: Client, enqueued) -> None:
    calls: list[int] = []

    def handler(event: CallbackEvent) -> str:
        calls.append(event.event_id)
        return "applied"

    message = _edit()
    post_callback(client, message)
    post_callback(client, message)
    with handler_registered(CONTACT, "edit_external_contact", handler):
        for event_id in WeComEvent.objects.values_list("pk", flat=True):
            wecom_event_process(event_id=event_id)
    assert calls == [WeComEvent.objects.get().pk]


def test_an_event_without_handler_is_ignored(client: Client, enqueued, monkeypatch) -> None:
    monkeypatch.delitem(HANDLERS, (CONTACT, "edit_external_contact"))
    event = _received(client, _edit())
    assert wecom_event_process(event_id=event.pk) == WeComEventStatus.IGNORED
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WeComEventStatus.IGNORED, 1)


def test_a_handler_may_ignore_an_event(client: Client, enqueued) -> None:
    event = _received(client, _edit())
    with handler_registered(CONTACT, "edit_external_contact", lambda e: "ignored"):
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.IGNORED


def test_a_failing_handler_rolls_back_records_its_error_and_is_retried(
    client: Client, enqueued
) -> None:
    event = _received(client, _edit())
    outcomes = iter([WeChatClientException(45009, "api freq out of limit"), KeyError("x")])

    def flaky(callback: CallbackEvent) -> str:
        TagFactory(name="half-written")
        error = next(outcomes, None)
        if error is not None:
            raise error
        return "applied"

    with handler_registered(CONTACT, "edit_external_contact", flaky):
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.FAILED
        event.refresh_from_db()
        assert (event.status, event.attempts, event.error_code) == ("failed", 1, "wecom_45009")
        assert not Tag.objects.filter(name="half-written").exists()
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.FAILED
        event.refresh_from_db()
        assert (event.attempts, event.error_code) == (2, "KeyError")
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.APPLIED
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error_code) == ("applied", 3, "")
    assert Tag.objects.filter(name="half-written").count() == 1


def test_a_handler_answering_something_else_fails(client: Client, enqueued) -> None:
    event = _received(client, _edit())
    with handler_registered(CONTACT, "edit_external_contact", lambda e: "done"):
        assert wecom_event_process(event_id=event.pk) == WeComEventStatus.FAILED
    event.refresh_from_db()
    assert event.error_code == "bad_outcome"


def test_the_task_retries_with_backoff_then_leaves_the_event_failed(
    client: Client, enqueued, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _received(client, _edit())
    countdowns: list[int] = []
    retry = wecom_event_process_task.retry

    def recorded_retry(*args: object, countdown: int, **kwargs: object) -> object:
        countdowns.append(countdown)
        return retry(*args, countdown=countdown, **kwargs)

    monkeypatch.setattr(wecom_event_process_task, "retry", recorded_retry)

    def failing(callback: CallbackEvent) -> str:
        raise RuntimeError("down")

    with handler_registered(CONTACT, "edit_external_contact", failing):
        # Under apply() (eager) each retry runs at once, in this process.
        wecom_event_process_task.apply(args=[event.pk])
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error_code) == ("failed", 5, "RuntimeError")
    assert countdowns == list(RETRY_COUNTDOWNS)
    assert len(RETRY_COUNTDOWNS) + 1 == MAX_ATTEMPTS


def test_a_gone_event_is_skipped() -> None:
    assert wecom_event_process(event_id=987654) == SKIPPED


@pytest.mark.django_db(transaction=True)
def test_an_event_locked_by_another_worker_is_skipped_not_waited_for(
    client: Client, monkeypatch
) -> None:
    monkeypatch.delitem(HANDLERS, (CONTACT, "edit_external_contact"))
    event = _received(client, _edit())
    locked = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with transaction.atomic():
            WeComEvent.objects.select_for_update().get(pk=event.pk)
            locked.set()
            release.wait(10)
        connection.close()

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert locked.wait(10)
        assert wecom_event_process(event_id=event.pk) == SKIPPED
    finally:
        release.set()
        thread.join()
    assert wecom_event_process(event_id=event.pk) == WeComEventStatus.IGNORED


def test_the_sweep_queues_again_events_whose_task_was_lost(
    enqueued, django_capture_on_commit_callbacks
) -> None:
    now = timezone.now()
    old = now - STALE_AFTER - dt.timedelta(seconds=1)

    def event(n: int, **columns: object) -> int:
        return WeComEvent.objects.create(
            message_hash=f"{n:064d}",
            event=CONTACT,
            change_type="edit_external_contact",
            event_at=old,
            message_encrypted="-",
            **columns,
        ).pk

    lost = event(1, received_at=old)
    event(2, received_at=now - dt.timedelta(minutes=1))  # its task is still on its way
    retry_lost = event(3, received_at=old, status="failed", attempts=2, processed_at=old)
    event(4, received_at=old, status="failed", attempts=MAX_ATTEMPTS, processed_at=old)
    event(5, received_at=old, status="failed", attempts=1, processed_at=now)  # retry pending
    event(6, received_at=old, status="applied", attempts=1, processed_at=old)

    with django_capture_on_commit_callbacks(execute=True):
        assert wecom_events_requeue(now=now) == 2
    assert [(e.name, e.args) for e in enqueued] == [
        ("crm.wecom_event_process", (lost,)),
        ("crm.wecom_event_process", (retry_lost,)),
    ]


def test_the_sweep_has_its_schedule() -> None:
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="crm.wecom_events_sweep")
    assert (task.interval.every, task.interval.period) == (300, "seconds")


RAW_COLUMNS = {
    "received_at": timezone.now() - dt.timedelta(days=1),
    "message_hash": "f" * 64,
    "event": "change_external_tag",
    "change_type": "delete",
    "event_at": timezone.now() - dt.timedelta(days=2),
    "message_encrypted": "another",
    "subject_hash": "e" * 64,
}


@pytest.mark.parametrize("column", list(RAW_COLUMNS))
def test_what_arrived_cannot_be_changed(client: Client, enqueued, column: str) -> None:
    event = _received(client, _edit())
    before = WeComEvent.objects.filter(pk=event.pk).values().get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        WeComEvent.objects.filter(pk=event.pk).update(**{column: RAW_COLUMNS[column]})
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            f"UPDATE crm_wecomevent SET {column} = %s WHERE id = %s",  # noqa: S608
            [RAW_COLUMNS[column], event.pk],
        )
    assert WeComEvent.objects.filter(pk=event.pk).values().get() == before


def test_processing_columns_change_and_events_can_be_deleted(client: Client, enqueued) -> None:
    event = _received(client, _edit())
    WeComEvent.objects.filter(pk=event.pk).update(
        status="failed", attempts=3, processed_at=timezone.now(), error_code="x"
    )
    # A save of the whole row writes what arrived unchanged: allowed.
    event.refresh_from_db()
    event.save()
    assert WeComEvent.objects.get(pk=event.pk).attempts == 3
    assert WeComEvent.objects.filter(pk=event.pk).delete()[0] == 1
