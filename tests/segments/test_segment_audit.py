"""Every change to RFM and lifecycle policies and to segments writes exactly one audit event
with the actor who made it and the fields before -> after, whether it comes through the
service, the API or the admin; a refused change writes none."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from core.errors import DomainError
from core.models import AuditAction, AuditEvent
from segments.models import LifecyclePolicy, Segment, SegmentKind
from segments.services.policies import lifecycle_policy_update, rfm_policy_update
from segments.services.segments import (
    segment_create,
    segment_delete,
    segment_update,
    segments_pin,
)
from tests.factories import SegmentFactory
from tests.factories.segments import EVERYONE
from tests.support import form_data

pytestmark = pytest.mark.django_db

RULE = {"field": "member_level", "op": "gte", "value": 2}


def _audit_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.exclude(object_type="api_key").order_by("id"))


def _one_event() -> AuditEvent:
    events = _audit_events()
    assert len(events) == 1, [(e.action, e.object_type, e.detail) for e in events]
    return events[0]


@pytest.mark.parametrize(
    ("act", "action", "object_type", "before", "after"),
    [
        (
            lambda: rfm_policy_update(changes={"lookback_days": 180}, actor="user:7"),
            AuditAction.CHANGE,
            "rfm_policy",
            {"lookback_days": 365, "version": 1},
            {"lookback_days": 180, "version": 2},
        ),
        (
            lambda: lifecycle_policy_update(changes={"active_days": 60}, actor="user:7"),
            AuditAction.CHANGE,
            "lifecycle_policy",
            {"active_days": 90, "version": 1},
            {"active_days": 60, "version": 2},
        ),
        (
            lambda: segment_create(
                name="高价值", kind=SegmentKind.DYNAMIC, rule=RULE, actor="user:7"
            ),
            AuditAction.CREATE,
            "segment",
            {},
            {
                "name": "高价值",
                "kind": "dynamic",
                "rule": RULE,
                "rule_version": 1,
                "pinned": False,
                "description": "",
            },
        ),
    ],
    ids=["rfm_policy", "lifecycle_policy", "segment_create"],
)
def test_each_service_writes_one_event(act, action, object_type, before, after) -> None:
    result = act()
    event = _one_event()
    assert (event.actor, event.action, event.object_type) == ("user:7", action, object_type)
    assert event.object_id == str(result.pk)
    assert event.detail == {"before": before, "after": after}
    assert event.fields == sorted({*before, *after})


def test_a_segment_update_records_only_what_changed() -> None:
    segment = SegmentFactory(name="老客", rule=dict(EVERYONE))
    segment_update(segment_id=segment.pk, name="回购老客", rule=RULE, actor="api_key:bi:abc")
    event = _one_event()
    assert (event.actor, event.action, event.object_id) == (
        "api_key:bi:abc",
        AuditAction.CHANGE,
        str(segment.pk),
    )
    assert event.detail == {
        "before": {"name": "老客", "rule": EVERYONE, "rule_version": 1},
        "after": {"name": "回购老客", "rule": RULE, "rule_version": 2},
    }


def test_a_segment_delete_records_what_it_was() -> None:
    segment = SegmentFactory(name="老客", kind=SegmentKind.STATIC)
    segment_delete(segment_id=segment.pk, actor="user:7")
    event = _one_event()
    assert (event.action, event.object_id) == (AuditAction.DELETE, str(segment.pk))
    assert event.detail["before"]["name"] == "老客"
    assert event.detail["after"] == {}


def test_pinning_records_one_change_per_segment_changed() -> None:
    pinned = SegmentFactory(pinned=True)
    unpinned = SegmentFactory()
    segments_pin(segment_ids=[pinned.pk, unpinned.pk], pinned=True, actor="user:7")
    event = _one_event()
    assert event.object_id == str(unpinned.pk)
    assert event.detail == {"before": {"pinned": False}, "after": {"pinned": True}}


def test_an_unchanged_policy_and_a_refused_change_write_nothing() -> None:
    rfm_policy_update(changes={"lookback_days": 365}, actor="user:7")  # the active value
    with pytest.raises(DomainError):
        lifecycle_policy_update(changes={"active_days": 0}, actor="user:7")
    segment = SegmentFactory(name="被引用")
    SegmentFactory(rule={"segment": segment.pk})
    with pytest.raises(DomainError):
        segment_delete(segment_id=segment.pk, actor="user:7")
    assert _audit_events() == []


# --- The same actions from the API and the admin: one event each, the caller as actor. ---


def test_api_segment_writes_are_one_event_each_by_the_key(
    api_client_with_scopes: Callable[..., Any],
) -> None:
    client = api_client_with_scopes("segments:read", "segments:write")
    created = client.post(
        "/api/v1/segments", {"name": "高价值", "kind": "dynamic", "rule": RULE}, format="json"
    )
    assert created.status_code == 201, created.json()
    segment_id = created.json()["id"]
    assert (
        client.patch(f"/api/v1/segments/{segment_id}", {"name": "高价"}, format="json").status_code
        == 200
    )
    assert client.delete(f"/api/v1/segments/{segment_id}").status_code == 204
    events = _audit_events()
    assert [(e.action, e.object_id) for e in events] == [
        (AuditAction.CREATE, str(segment_id)),
        (AuditAction.CHANGE, str(segment_id)),
        (AuditAction.DELETE, str(segment_id)),
    ]
    assert {e.actor for e in events} == {f"api_key:test:{_prefix()}"}


def _prefix() -> str:
    from core.models import ApiKey

    return ApiKey.objects.get(name="test").prefix


def test_api_policy_change_is_one_event_by_the_key(api_client_with_scopes) -> None:
    client = api_client_with_scopes("segments:write")
    response = client.put("/api/v1/policies/lifecycle", {"active_days": 60}, format="json")
    assert response.status_code == 200, response.json()
    event = _one_event()
    assert (event.actor, event.object_type) == (f"api_key:test:{_prefix()}", "lifecycle_policy")


def test_admin_segment_change_with_pin_is_one_event(admin_client_en: Client, admin_user) -> None:
    segment = SegmentFactory(name="老客")
    url = reverse("admin:segments_segment_change", args=[segment.pk])
    page = admin_client_en.get(url)
    response = admin_client_en.post(url, form_data(page, name="回购老客", pinned=True))
    assert response.status_code == 302
    event = _one_event()
    assert event.actor == f"user:{admin_user.pk}"
    assert event.detail == {
        "before": {"name": "老客", "pinned": False},
        "after": {"name": "回购老客", "pinned": True},
    }
    assert Segment.objects.get().pinned


def test_admin_policy_change_is_one_event(admin_client_en: Client, admin_user) -> None:
    response = admin_client_en.post(
        reverse("admin:segments_lifecyclepolicy_add"),
        {"new_days": 14, "active_days": 60, "sleeping_days": 120, "reactivated_days": 14},
    )
    assert response.status_code == 302
    event = _one_event()
    assert (event.actor, event.object_type) == (f"user:{admin_user.pk}", "lifecycle_policy")
    assert event.object_id == str(LifecyclePolicy.objects.get(is_active=True).pk)
    assert event.detail["after"] == {
        "active_days": 60,
        "new_days": 14,
        "reactivated_days": 14,
        "sleeping_days": 120,
        "version": 2,
    }


def test_admin_segment_delete_is_one_event(admin_client_en: Client, admin_user) -> None:
    segment = SegmentFactory()
    response = admin_client_en.post(
        reverse("admin:segments_segment_delete", args=[segment.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    event = _one_event()
    assert (event.actor, event.action) == (f"user:{admin_user.pk}", AuditAction.DELETE)
