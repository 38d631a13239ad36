"""Groups (社群) over the API: CRUD with member counts, membership sync with history."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.services.api_keys import api_key_create, api_key_revoke
from crm.models import Customer, Group, GroupMembership
from tests.factories import (
    CustomerFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
)

pytestmark = pytest.mark.django_db


def stays(group: Group) -> list[tuple[int, bool]]:
    """(customer id, is the stay open) of every stay, in order."""
    return [
        (customer_id, left_at is None)
        for customer_id, left_at in GroupMembership.objects.filter(group=group)
        .order_by("customer_id", "joined_at")
        .values_list("customer_id", "left_at")
    ]


@pytest.mark.parametrize(
    ("method", "url", "access"),
    [
        ("get", "/api/v1/groups", "read"),
        ("post", "/api/v1/groups", "write"),
        ("get", "/api/v1/groups/{id}/members", "read"),
        ("put", "/api/v1/groups/{id}/members", "write"),
        ("delete", "/api/v1/groups/{id}", "write"),
    ],
)
def test_auth_is_required_and_scoped(
    api_client_with_scopes, anonymous_client, method, url, access
) -> None:
    group = GroupFactory()
    url = url.format(id=group.pk)
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)
    other = "write" if access == "read" else "read"
    for scopes in (("customers",), (f"groups:{other}",)):
        client = api_client_with_scopes(*scopes)
        assert getattr(client, method)(url, {}, format="json").status_code == 403
    api_key, raw_key = api_key_create(name="t", scopes=[f"groups:{access}"])
    api_key_revoke(prefix=api_key.prefix)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)
    assert Group.objects.count() == 1


def test_group_crud(api_client_with_scopes) -> None:
    client = api_client_with_scopes("groups")
    body = {
        "kind": "wecom_group",
        "external_id": "wrOgQhDgAAMYQiS5ol9G7gK9JVAAAA",
        "name": "会员群",
    }
    created = client.post("/api/v1/groups", {**body, "owner": "zhangsan"}, format="json")
    assert created.status_code == 201
    assert (created.json()["owner"], created.json()["member_count"]) == ("zhangsan", 0)
    duplicate = client.post("/api/v1/groups", body, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "group_external_id_taken"
    group_id = created.json()["id"]
    renamed = client.patch(f"/api/v1/groups/{group_id}", {"name": "VIP 群"}, format="json")
    assert renamed.json()["name"] == "VIP 群"
    assert client.get("/api/v1/groups?kind=wecom_group&search=VIP").json()["results"][0]["id"] == (
        group_id
    )
    assert client.delete(f"/api/v1/groups/{group_id}").status_code == 204
    assert client.get(f"/api/v1/groups/{group_id}").status_code == 404


def test_validation_names_fields(api_client_with_scopes) -> None:
    client = api_client_with_scopes("groups")
    response = client.post("/api/v1/groups", {"kind": "telegram", "name": ""}, format="json")
    assert response.status_code == 400
    assert {"kind", "external_id", "name"} <= set(response.json()["errors"])
    group = GroupFactory()
    bad = client.put(
        f"/api/v1/groups/{group.pk}/members",
        {"identities": [{"provider": "phone", "value": "123"}], "observed_at": "yesterday"},
        format="json",
    )
    assert bad.status_code == 400
    assert {"identities.0.value", "observed_at"} <= set(bad.json()["errors"])
    missing = client.put("/api/v1/groups/99999/members", {"customer_ids": []}, format="json")
    assert missing.status_code == 404


def test_sync_records_joins_leaves_and_rejoins(api_client_with_scopes) -> None:
    group = GroupFactory()
    a, b = CustomerFactory(), CustomerFactory()
    IdentityFactory(customer=b, provider="unionid", raw_value="u-b")
    client = api_client_with_scopes("groups")
    url = f"/api/v1/groups/{group.pk}/members"
    start = timezone.now() - timedelta(days=3)

    def sync(body: dict, days: int) -> dict:
        observed_at = (start + timedelta(days=days)).isoformat()
        response = client.put(url, {**body, "observed_at": observed_at}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    first = {"customer_ids": [a.pk], "identities": [{"provider": "unionid", "value": "u-b"}]}
    assert sync(first, 0) == {"joined": 2, "left": 0, "unchanged": 0, "stale": False}
    assert sync(first, 0) == {
        "joined": 0,
        "left": 0,
        "unchanged": 2,
        "stale": False,
    }  # same list: no change
    assert sync({"customer_ids": [a.pk]}, 1) == {
        "joined": 0,
        "left": 1,
        "unchanged": 1,
        "stale": False,
    }
    assert sync(first, 2) == {"joined": 1, "left": 0, "unchanged": 1, "stale": False}  # b re-joins
    assert stays(group) == [(a.pk, True), (b.pk, False), (b.pk, True)]
    left_at = GroupMembership.objects.get(customer=b, left_at__isnull=False).left_at
    assert left_at == start + timedelta(days=1)

    members = client.get(url).json()["results"]
    assert sorted(m["customer_id"] for m in members) == [a.pk, b.pk]
    history = client.get(f"{url}?include_left=true").json()["results"]
    assert len(history) == 3
    assert client.get(f"/api/v1/groups/{group.pk}").json()["member_count"] == 2

    assert sync({"customer_ids": []}, 3) == {"joined": 0, "left": 2, "unchanged": 0, "stale": False}
    assert not GroupMembership.objects.filter(left_at__isnull=True).exists()


def test_sync_creates_customers_of_unknown_identities(api_client_with_scopes) -> None:
    group = GroupFactory()
    response = api_client_with_scopes("groups:write").put(
        f"/api/v1/groups/{group.pk}/members",
        {"identities": [{"provider": "wecom", "namespace": "corp1", "value": "wmNew"}]},
        format="json",
    )
    assert response.json() == {"joined": 1, "left": 0, "unchanged": 0, "stale": False}
    assert GroupMembership.objects.get().customer_id == Customer.objects.get().pk


def test_group_list_has_no_n_plus_one(api_client_with_scopes) -> None:
    client = api_client_with_scopes("groups:read")
    client.get("/api/v1/groups")  # touches the key's last_used_at once
    group = GroupFactory()
    GroupMembershipFactory(group=group)
    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/groups").json()["results"][0]["member_count"] == 1
    for _ in range(10):
        GroupMembershipFactory()
    with CaptureQueriesContext(connection) as more:
        assert len(client.get("/api/v1/groups").json()["results"]) == 11
    assert len(more) == len(few)


def test_a_snapshot_observed_before_the_last_one_applied_changes_nothing(
    api_client_with_scopes,
) -> None:
    """The list observed on 2026-11-30 arrives after the one observed on 2026-12-01."""
    group = GroupFactory()
    a, b = CustomerFactory(), CustomerFactory()
    client = api_client_with_scopes("groups")
    url = f"/api/v1/groups/{group.pk}/members"
    newer = {"customer_ids": [a.pk, b.pk], "observed_at": "2026-12-01T10:00:00+08:00"}
    assert client.put(url, newer, format="json").json() == {
        "joined": 2,
        "left": 0,
        "unchanged": 0,
        "stale": False,
    }
    before = list(GroupMembership.objects.values().order_by("id"))
    customers_before = Customer.objects.count()

    older = {
        "customer_ids": [a.pk],
        "identities": [{"provider": "unionid", "value": "u-new"}],
        "observed_at": "2026-11-30T10:00:00+08:00",
    }
    response = client.put(url, older, format="json")
    assert response.status_code == 200
    assert response.json() == {"joined": 0, "left": 0, "unchanged": 0, "stale": True}
    assert list(GroupMembership.objects.values().order_by("id")) == before
    assert Customer.objects.count() == customers_before  # its identity created nobody
    group.refresh_from_db()
    assert group.members_observed_at.isoformat() == "2026-12-01T02:00:00+00:00"

    # Observed at the same time: applied again, the same list changes nothing.
    assert client.put(url, newer, format="json").json() == {
        "joined": 0,
        "left": 0,
        "unchanged": 2,
        "stale": False,
    }
    later = {"customer_ids": [a.pk], "observed_at": "2026-12-02T10:00:00+08:00"}
    assert client.put(url, later, format="json").json() == {
        "joined": 0,
        "left": 1,
        "unchanged": 1,
        "stale": False,
    }
    assert stays(group) == [(a.pk, True), (b.pk, False)]


def test_a_snapshot_observed_in_the_far_future_is_refused(api_client_with_scopes) -> None:
    group = GroupFactory()
    customer = CustomerFactory()
    observed_at = (timezone.now() + timedelta(days=2)).isoformat()
    response = api_client_with_scopes("groups").put(
        f"/api/v1/groups/{group.pk}/members",
        {"customer_ids": [customer.pk], "observed_at": observed_at},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"]["observed_at"] == [
        "Must lie between 2000-01-01T00:00:00Z and one day from now."
    ]
    assert not GroupMembership.objects.exists()
    group.refresh_from_db()
    assert group.members_observed_at is None
