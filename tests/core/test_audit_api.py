"""GET /api/v1/audit-events (scope audit:read): filters by actor, action, customer and time,
newest first by cursor; no method writes it (405 method_not_allowed, nothing changed)."""

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.models import AuditAction, AuditEvent
from core.services.api_keys import api_key_create, check_scopes
from core.services.roles import AUDITOR, roles_sync
from tests.factories import StaffMemberFactory
from tests.support import client_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit-events"


def _at(day: int) -> datetime:
    return datetime(2026, 12, day, 8, 0, tzinfo=UTC)


@pytest.fixture
def events() -> dict[str, AuditEvent]:
    return {
        "merge": AuditEvent.objects.create(
            actor="user:3", action=AuditAction.MERGE, customer_id=11, occurred_at=_at(1)
        ),
        "view": AuditEvent.objects.create(
            actor="api_key:erp:ab12cd34ef56",
            action=AuditAction.VIEW_PERSONAL_DATA,
            customer_id=12,
            fields=["birthday"],
            occurred_at=_at(2),
        ),
        "admin_change": AuditEvent.objects.create(
            actor="admin:user:3",
            action=AuditAction.CHANGE,
            object_type="segment",
            object_id="5",
            detail={"before": {"name": "A"}, "after": {"name": "B"}},
            occurred_at=_at(3),
        ),
    }


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.json()
    return [row["id"] for row in response.json()["results"]]


def test_audit_read_is_a_scope_of_its_own() -> None:
    assert check_scopes(["audit:read"]) == ["audit:read"]
    assert "audit:read" in check_scopes(["*"])


def test_the_list_is_newest_first_with_every_field(api_client_with_scopes, events) -> None:
    response = api_client_with_scopes("audit:read").get(URL, {"action": "change"})
    assert response.json()["results"] == [
        {
            "id": events["admin_change"].pk,
            "occurred_at": "2026-12-03T16:00:00+08:00",
            "actor": "admin:user:3",
            "action": "change",
            "object_type": "segment",
            "object_id": "5",
            "customer_id": None,
            "fields": [],
            "detail": {"before": {"name": "A"}, "after": {"name": "B"}},
        }
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"actor": "user:3"}, ["admin_change", "merge"]),
        ({"actor": "api_key:erp:ab12cd34ef56"}, ["view"]),
        ({"action": "merge"}, ["merge"]),
        ({"customer_id": "12"}, ["view"]),
        (
            {"occurred_after": "2026-12-02T00:00:00Z", "occurred_before": "2026-12-03T00:00:00Z"},
            ["view"],
        ),
    ],
)
def test_filters(api_client_with_scopes, events, params, expected) -> None:
    response = api_client_with_scopes("audit:read").get(URL, params)
    assert _ids(response) == [events[name].pk for name in expected]


def test_bad_filters_are_a_400(api_client_with_scopes, events) -> None:
    client = api_client_with_scopes("audit:read")
    response = client.get(URL, {"action": "nonsense", "occurred_after": "yesterday"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert set(response.json()["errors"]) == {"action", "occurred_after"}


def test_pages_by_cursor_with_constant_queries(api_client_with_scopes, events) -> None:
    client = api_client_with_scopes("audit:read")
    first = client.get(URL, {"page_size": 2, "customer_id": ""})
    body = first.json()
    assert len(body["results"]) == 2 and body["next"]
    second = client.get(body["next"])
    assert second.status_code == 200
    seen = [row["id"] for row in body["results"] + second.json()["results"]]
    assert len(seen) == len(set(seen)) == AuditEvent.objects.count()
    with CaptureQueriesContext(connection) as queries:
        client.get(URL)
    for number in range(20):
        AuditEvent.objects.create(actor=f"user:{number}", action=AuditAction.EXPORT)
    with CaptureQueriesContext(connection) as more:
        client.get(URL)
    assert len(more) == len(queries)


def test_other_scopes_are_refused(api_client_with_scopes, events) -> None:
    response = api_client_with_scopes("customers:read", "personal_data:read").get(URL)
    assert response.status_code == 403


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_no_method_writes_the_trail(api_client_with_scopes, events, method) -> None:
    client = api_client_with_scopes("audit:read")
    before = list(AuditEvent.objects.order_by("id").values_list("id", "actor", "detail"))
    response = getattr(client, method)(URL, {"actor": "me", "action": "export"}, format="json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert list(AuditEvent.objects.order_by("id").values_list("id", "actor", "detail")) == before


def test_without_a_key_it_is_a_401(anonymous_client) -> None:
    assert anonymous_client.get(URL).status_code == 401
    assert anonymous_client.post(URL, {}).status_code == 401


def test_who_reads_the_trail_besides_keys_with_the_scope(events) -> None:
    """A key bound to one staff member never; a user of the admin only with the 审计 role's
    permission (through the browsable API)."""
    bound, raw_key = api_key_create(name="sidebar", scopes=["audit:read"])
    bound.staff_member_id = StaffMemberFactory().pk
    bound.save(update_fields=["staff_member_id"])
    client = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "owner_scope_refused"

    staff = User.objects.create_user("operator", is_staff=True)
    assert client_of(staff).get(URL).status_code == 403
    roles_sync()
    staff.groups.add(Group.objects.get(name=AUDITOR))
    staff = User.objects.get(pk=staff.pk)
    assert {event.pk for event in events.values()} <= set(_ids(client_of(staff).get(URL)))
