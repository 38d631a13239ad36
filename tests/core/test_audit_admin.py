"""The audit trail in the admin: readable (actor by name, business time, before -> after,
filters by actor, action and time, search by customer id) by whoever may view it, and never
added to, changed or deleted, not even by a superuser."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import AuditAction, AuditEvent
from core.services.audit import audit_change, audit_record
from tests.factories import UserFactory
from tests.support import client_of

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:core_auditevent_changelist")
AT = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # 10:30 in Beijing


def _zh(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


@pytest.fixture
def events():
    operator = UserFactory(username="zhangsan", first_name="张三")
    change = audit_change(
        actor=f"user:{operator.pk}",
        action=AuditAction.CHANGE,
        object_type="frequency_rule",
        object_id=4,
        before={"max_count": 3, "name": "每日上限"},
        after={"max_count": 5, "name": "每日上限"},
    )
    view = audit_record(
        actor="api_key:erp:ab12cd34ef56",
        action=AuditAction.VIEW_PERSONAL_DATA,
        object_type="customer",
        object_id=77,
        customer_id=77,
        fields=["identities", "birthday"],
    )
    return {"operator": operator, "change": change, "view": view}


@pytest.fixture
def auditor():
    """A user of the 审计 role: views audit events, nothing else."""
    return UserFactory(
        permissions=Permission.objects.filter(
            content_type__app_label="core", codename="view_auditevent"
        )
    )


def test_the_list_reads_in_chinese_with_names_and_business_time(events, auditor) -> None:
    event = AuditEvent.objects.create(
        actor="schedule", action=AuditAction.DELETE, occurred_at=AT, object_type="segment"
    )
    page = _zh(auditor).get(CHANGELIST)
    assert page.status_code == 200
    text = page.content.decode()
    assert "审计日志" in text
    assert "张三" in text  # the user's name, not user:<id>
    assert "API 密钥「erp」" in text
    assert "定时任务" in text
    assert "最多发送次数：3 → 5" in text  # the field by its label
    assert "2026年12月5日 10:30" in text and "北京时间" in text
    assert event.pk


def test_the_change_page_shows_the_detail_line_by_line(events, auditor) -> None:
    page = _zh(auditor).get(reverse("admin:core_auditevent_change", args=[events["change"].pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "<div>最多发送次数：3 → 5</div>" in text
    assert 'name="max_count"' not in text and "<form" in text  # no input of any field
    assert "_save" not in text


def test_filters_by_actor_action_and_customer_id(events, auditor) -> None:
    client = _zh(auditor)
    by_action = client.get(CHANGELIST, {"action": "view_personal_data"})
    assert list(by_action.context["cl"].result_list) == [events["view"]]
    by_actor = client.get(CHANGELIST, {"actor": "张三"})
    assert list(by_actor.context["cl"].result_list) == [events["change"]]
    by_customer = client.get(CHANGELIST, {"q": "77"})
    assert list(by_customer.context["cl"].result_list) == [events["view"]]
    assert list(client.get(CHANGELIST, {"q": "王小美"}).context["cl"].result_list) == []
    by_day = client.get(
        CHANGELIST,
        {
            "occurred_at__year": events["view"].occurred_at.year,
            "occurred_at__month": events["view"].occurred_at.month,
        },
    )
    assert by_day.status_code == 200


def test_the_list_costs_the_same_queries_for_more_events(events, auditor) -> None:
    client = _zh(auditor)
    client.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        client.get(CHANGELIST)
    for number in range(30):
        audit_record(actor=f"user:{number + 1000}", action=AuditAction.EXPORT)
    with CaptureQueriesContext(connection) as many:
        client.get(CHANGELIST)
    assert len(many) == len(few)


def _snapshot() -> list[tuple]:
    return list(AuditEvent.objects.order_by("id").values_list("id", "actor", "action", "detail"))


@pytest.mark.parametrize("page", ["add", "change", "delete", "changelist-action"])
def test_not_even_a_superuser_can_add_change_or_delete(events, admin_user, page) -> None:
    client = client_of(admin_user)
    before = _snapshot()
    pk = events["change"].pk
    if page == "add":
        response = client.post(
            reverse("admin:core_auditevent_add"), {"actor": "user:1", "action": "export"}
        )
    elif page == "change":
        response = client.post(
            reverse("admin:core_auditevent_change", args=[pk]),
            {"actor": "someone", "action": "export", "detail": "{}"},
        )
    elif page == "delete":
        response = client.post(reverse("admin:core_auditevent_delete", args=[pk]), {"post": "yes"})
    else:
        response = client.post(
            CHANGELIST, {"action": "delete_selected", "_selected_action": [pk], "post": "yes"}
        )
    assert response.status_code in (403, 200)
    if response.status_code == 200:  # the list, shown again: no action exists to run
        assert "delete_selected" not in response.content.decode()
    assert _snapshot() == before


def test_the_admin_offers_no_way_to_write(events, admin_user) -> None:
    from django.contrib import admin as django_admin

    model_admin = django_admin.site._registry[AuditEvent]
    request = type("Request", (), {"user": admin_user})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, events["change"])
    assert not model_admin.has_delete_permission(request, events["change"])
    assert model_admin.get_actions(request) == {}
    page = client_of(admin_user).get(CHANGELIST).content.decode()
    assert reverse("admin:core_auditevent_add") not in page


def test_a_user_without_the_view_permission_sees_nothing(events) -> None:
    assert _zh(UserFactory()).get(CHANGELIST).status_code == 403
