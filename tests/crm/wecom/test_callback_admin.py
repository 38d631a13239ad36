"""The admin's list of WeCom callback events: read only for everyone, filtered by event,
status and time, in business time, never showing the message (it names customers)."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.urls import reverse

from crm.models import WeComEvent
from crm.personal_data import encrypt
from tests.support import client_of

pytestmark = pytest.mark.django_db

AT = dt.datetime(2026, 3, 1, 2, 30, tzinfo=dt.UTC)  # 10:30 in Beijing
EXTERNAL_USERID = "wmSecretContact0042"


@pytest.fixture
def events() -> list[WeComEvent]:
    message = f"<xml><ExternalUserID>{EXTERNAL_USERID}</ExternalUserID></xml>"
    rows = [
        ("change_external_contact", "add_external_contact", "applied"),
        ("change_external_tag", "shuffle", "failed"),
        ("change_external_chat", "dismiss", "pending"),
    ]
    return [
        WeComEvent.objects.create(
            received_at=AT,
            message_hash=f"{n:064d}",
            event=event,
            change_type=change_type,
            event_at=AT - dt.timedelta(minutes=1),
            message_encrypted=encrypt(message),
            status=status,
            error_code="wecom_60011" if status == "failed" else "",
        )
        for n, (event, change_type, status) in enumerate(rows)
    ]


def test_the_list_shows_kinds_times_and_outcomes_never_the_message(
    admin_user: User, events: list[WeComEvent]
) -> None:
    page = client_of(admin_user).get(reverse("admin:crm_wecomevent_changelist"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "Staff member added a customer" in text
    assert "Tags reordered" in text
    assert "Group chat dismissed" in text
    assert "WeCom refused the request (error 60011)." in text
    assert "10:30" in text and "Beijing time" in text
    assert EXTERNAL_USERID not in text
    assert events[0].message_encrypted not in text
    detail = client_of(admin_user).get(reverse("admin:crm_wecomevent_change", args=[events[0].pk]))
    assert detail.status_code == 200
    assert events[0].message_encrypted not in detail.content.decode()
    assert EXTERNAL_USERID not in detail.content.decode()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"event": "change_external_tag"}, ["shuffle"]),
        ({"status__exact": "pending"}, ["dismiss"]),
        ({"received_at__gte": "2026-03-02"}, []),
    ],
)
def test_filters(admin_user: User, events: list[WeComEvent], query, expected) -> None:
    page = client_of(admin_user).get(reverse("admin:crm_wecomevent_changelist"), query)
    assert page.status_code == 200
    assert sorted(e.change_type for e in page.context["cl"].result_list) == expected


def test_nobody_adds_changes_or_deletes_events(admin_user: User, events) -> None:
    client = client_of(admin_user)
    assert client.get(reverse("admin:crm_wecomevent_add")).status_code == 403
    url = reverse("admin:crm_wecomevent_delete", args=[events[0].pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert WeComEvent.objects.count() == 3
