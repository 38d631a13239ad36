"""Tags over the API: CRUD with counts, bulk assign/remove, exclusive tag groups."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.services.api_keys import api_key_create, api_key_revoke
from crm.models import Customer, CustomerTag, Tag, TagGroup
from tests.factories import (
    CustomerFactory,
    CustomerTagFactory,
    IdentityFactory,
    TagFactory,
    TagGroupFactory,
)

pytestmark = pytest.mark.django_db


def holdings() -> set[tuple[int, str]]:
    return set(CustomerTag.objects.values_list("customer_id", "tag__name"))


@pytest.mark.parametrize(
    ("method", "url", "access"),
    [
        ("get", "/api/v1/tag-groups", "read"),
        ("post", "/api/v1/tag-groups", "write"),
        ("get", "/api/v1/tags", "read"),
        ("post", "/api/v1/tags", "write"),
        ("post", "/api/v1/tags/assign", "write"),
        ("post", "/api/v1/tags/remove", "write"),
    ],
)
def test_auth_is_required_and_scoped(
    api_client_with_scopes, anonymous_client, method, url, access
) -> None:
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)
    other = "write" if access == "read" else "read"
    for scopes in (("customers",), (f"tags:{other}",)):
        client = api_client_with_scopes(*scopes)
        assert getattr(client, method)(url, {}, format="json").status_code == 403
    api_key, raw_key = api_key_create(name="t", scopes=[f"tags:{access}"])
    api_key_revoke(prefix=api_key.prefix)
    anonymous_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    assert getattr(anonymous_client, method)(url, {}, format="json").status_code in (401, 403)
    assert not TagGroup.objects.exists()


def test_tag_group_and_tag_crud(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags")
    group = client.post(
        "/api/v1/tag-groups", {"name": "消费能力", "is_exclusive": True}, format="json"
    )
    assert group.status_code == 201
    assert group.json()["tag_count"] == 0
    group_id = group.json()["id"]
    tag = client.post("/api/v1/tags", {"group": group_id, "name": "高"}, format="json")
    assert tag.status_code == 201
    assert (tag.json()["group_name"], tag.json()["customer_count"]) == ("消费能力", 0)
    duplicate = client.post("/api/v1/tags", {"group": group_id, "name": "高"}, format="json")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "tag_name_taken"
    renamed = client.patch(f"/api/v1/tags/{tag.json()['id']}", {"name": "高消费"}, format="json")
    assert renamed.json()["name"] == "高消费"
    assert client.get(f"/api/v1/tag-groups/{group_id}").json()["tag_count"] == 1
    refused = client.delete(f"/api/v1/tag-groups/{group_id}")
    assert refused.status_code == 409
    assert TagGroup.objects.filter(pk=group_id).exists()
    assert client.delete(f"/api/v1/tags/{tag.json()['id']}").status_code == 204
    assert client.delete(f"/api/v1/tag-groups/{group_id}").status_code == 204
    assert not TagGroup.objects.exists()


def test_validation_names_fields(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags")
    response = client.post("/api/v1/tag-groups", {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    response = client.post("/api/v1/tags", {"group": "x", "name": "a" * 65}, format="json")
    assert set(response.json()["errors"]) == {"group", "name"}
    missing_group = client.post("/api/v1/tags", {"group": 99999, "name": "a"}, format="json")
    assert missing_group.status_code == 404
    assert client.get("/api/v1/tags/99999").status_code == 404


def test_assign_by_ids_and_identities_then_again_changes_nothing(api_client_with_scopes) -> None:
    tag = TagFactory(name="敏感肌")
    known = CustomerFactory()
    by_identity = IdentityFactory(provider="unionid", raw_value="u-1").customer
    client = api_client_with_scopes("tags:write")
    body = {
        "customer_ids": [known.pk],
        "identities": [
            {"provider": "unionid", "value": "u-1"},
            {"provider": "unionid", "value": "u-new"},  # a new customer
        ],
        "tags": [{"id": tag.pk}],
        "source": "import",
    }
    response = client.post("/api/v1/tags/assign", body, format="json")
    assert response.json() == {"assigned": 3, "replaced": 0, "unchanged": 0}
    new = Customer.objects.exclude(pk__in=[known.pk, by_identity.pk]).get()
    assert holdings() == {(known.pk, "敏感肌"), (by_identity.pk, "敏感肌"), (new.pk, "敏感肌")}
    assert set(CustomerTag.objects.values_list("source", flat=True)) == {"import"}
    again = client.post("/api/v1/tags/assign", body, format="json")
    assert again.json() == {"assigned": 0, "replaced": 0, "unchanged": 3}
    assert CustomerTag.objects.count() == 3


def test_exclusive_group_assign_replaces(api_client_with_scopes) -> None:
    group = TagGroupFactory(name="消费能力", is_exclusive=True)
    high, low = TagFactory(group=group, name="高"), TagFactory(group=group, name="低")
    customer = CustomerFactory()
    client = api_client_with_scopes("tags:write")
    client.post(
        "/api/v1/tags/assign",
        {"customer_ids": [customer.pk], "tags": [{"id": high.pk}]},
        format="json",
    )
    response = client.post(
        "/api/v1/tags/assign",
        {"customer_ids": [customer.pk], "tags": [{"group": "消费能力", "name": "低"}]},
        format="json",
    )
    assert response.json() == {"assigned": 1, "replaced": 1, "unchanged": 0}
    assert holdings() == {(customer.pk, "低")}
    assert CustomerTag.objects.get().exclusive_group_id == group.pk
    assert low.pk == CustomerTag.objects.get().tag_id


def test_two_tags_of_one_exclusive_group_are_refused(api_client_with_scopes) -> None:
    group = TagGroupFactory(is_exclusive=True)
    first, second = TagFactory(group=group), TagFactory(group=group)
    customer = CustomerFactory()
    response = api_client_with_scopes("tags:write").post(
        "/api/v1/tags/assign",
        {"customer_ids": [customer.pk], "tags": [{"id": first.pk}, {"id": second.pk}]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "several_tags_of_exclusive_group"
    assert not CustomerTag.objects.exists()


def test_unknown_tags_and_customers_are_named(api_client_with_scopes) -> None:
    customer = CustomerFactory()
    client = api_client_with_scopes("tags:write")
    unknown_tag = client.post(
        "/api/v1/tags/assign",
        {"customer_ids": [customer.pk], "tags": [{"group": "兴趣偏好", "name": "露营"}]},
        format="json",
    )
    assert unknown_tag.status_code == 400
    assert unknown_tag.json()["code"] == "unknown_tags"
    assert "兴趣偏好/露营" in unknown_tag.json()["detail"]
    unknown_customer = client.post(
        "/api/v1/tags/assign",
        {"customer_ids": [customer.pk, 999999], "tags": [{"id": TagFactory().pk}]},
        format="json",
    )
    assert unknown_customer.status_code == 400
    assert unknown_customer.json()["code"] == "unknown_customers"
    assert not CustomerTag.objects.exists()
    assert not Tag.objects.filter(name="露营").exists()


def test_create_missing_creates_the_tag_and_group(api_client_with_scopes) -> None:
    customer = CustomerFactory()
    response = api_client_with_scopes("tags:write").post(
        "/api/v1/tags/assign",
        {
            "customer_ids": [customer.pk],
            "tags": [{"group": "兴趣偏好", "name": "露营"}],
            "create_missing": True,
        },
        format="json",
    )
    assert response.json()["assigned"] == 1
    tag = Tag.objects.select_related("group").get(name="露营")
    assert (tag.group.name, tag.group.is_exclusive) == ("兴趣偏好", False)


def test_remove(api_client_with_scopes) -> None:
    tag = TagFactory()
    customers = [CustomerFactory() for _ in range(3)]
    for customer in customers:
        CustomerTagFactory(customer=customer, tag=tag)
    IdentityFactory(customer=customers[0], provider="unionid", raw_value="u-0")
    response = api_client_with_scopes("tags:write").post(
        "/api/v1/tags/remove",
        {
            "customer_ids": [customers[1].pk],
            "identities": [
                {"provider": "unionid", "value": "u-0"},
                {"provider": "unionid", "value": "nobody"},
            ],
            "tags": [{"id": tag.pk}],
        },
        format="json",
    )
    assert response.json() == {"removed": 2, "unknown_identities": 1}
    assert set(CustomerTag.objects.values_list("customer_id", flat=True)) == {customers[2].pk}
    assert Customer.objects.count() == 3  # remove never creates customers


def test_making_a_group_exclusive(api_client_with_scopes) -> None:
    group = TagGroupFactory(name="肤质")
    dry, oily = TagFactory(group=group, name="干性"), TagFactory(group=group, name="油性")
    both, one = CustomerFactory(), CustomerFactory()
    CustomerTagFactory(customer=both, tag=dry)
    CustomerTagFactory(customer=both, tag=oily)
    CustomerTagFactory(customer=one, tag=dry)
    client = api_client_with_scopes("tags")
    url = f"/api/v1/tag-groups/{group.pk}"
    refused = client.patch(url, {"is_exclusive": True}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "customers_hold_several_tags_of_group"
    group.refresh_from_db()
    assert not group.is_exclusive
    assert not CustomerTag.objects.filter(exclusive_group__isnull=False).exists()

    CustomerTag.objects.filter(customer=both, tag=oily).delete()
    assert client.patch(url, {"is_exclusive": True}, format="json").json()["is_exclusive"]
    assert set(CustomerTag.objects.values_list("exclusive_group_id", flat=True)) == {group.pk}
    client.patch(url, {"is_exclusive": False}, format="json")
    assert set(CustomerTag.objects.values_list("exclusive_group_id", flat=True)) == {None}


def test_lists_count_without_n_plus_one(api_client_with_scopes) -> None:
    client = api_client_with_scopes("tags:read")
    client.get("/api/v1/tags")  # touches the key's last_used_at once
    tag = TagFactory()
    CustomerTagFactory(tag=tag)
    with CaptureQueriesContext(connection) as few:
        first = client.get("/api/v1/tags").json()["results"]
    assert [(t["name"], t["customer_count"]) for t in first] == [(tag.name, 1)]
    for _ in range(10):
        CustomerTagFactory()
    with CaptureQueriesContext(connection) as more:
        assert len(client.get("/api/v1/tags").json()["results"]) == 11
        client.get("/api/v1/tag-groups")
    with CaptureQueriesContext(connection) as groups_few:
        client.get("/api/v1/tag-groups?search=zzz")
    assert len(more) == len(few) + len(groups_few)
