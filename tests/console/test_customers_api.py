"""The customer lookup (the 360° view): by id (read, partial update) and by identity (read,
upsert), with the CRM's profile and the segmentation app's metrics and segments."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from crm.models import Customer
from segments.services.recompute import recompute_full
from tests.factories import (
    CustomerFactory,
    CustomerMergeFactory,
    IdentityFactory,
    OrderFactory,
    TagFactory,
)
from tests.segments.recompute_support import AS_OF, buyer

pytestmark = pytest.mark.django_db

Client = Callable[..., APIClient]

PHONE = "13812341234"


def test_read_scope_cannot_write(api_client_with_scopes) -> None:
    response = api_client_with_scopes("customers:read").put(
        "/api/v1/customers/by-identity/unionid/u1", {}, format="json"
    )
    assert response.status_code == 403
    assert Customer.objects.count() == 0


def test_put_by_identity_creates_then_updates(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:write", "customers:read")
    url = "/api/v1/customers/by-identity/wecom/wmABCDEF123?namespace=ww_corp"
    created = client.put(url, {"display_name": "林小姐", "owner": "zhangsan"}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["customer"]["display_name"] == "林小姐"
    assert body["customer"]["owner"] == "zhangsan"
    updated = client.put(url, {"member_level": 3}, format="json")
    assert updated.status_code == 200
    assert updated.json()["customer"]["member_level"] == 3
    assert updated.json()["customer"]["display_name"] == "林小姐"
    assert Customer.objects.count() == 1


def test_put_with_bad_fields_names_them(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:write")
    response = client.put(
        "/api/v1/customers/by-identity/phone/12345",
        {"gender": "robot", "member_level": -1},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {"value"}
    response = client.put(
        f"/api/v1/customers/by-identity/phone/{PHONE}",
        {"gender": "robot", "member_level": -1},
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"gender", "member_level"}
    assert Customer.objects.count() == 0


def test_get_by_identity_returns_the_sidebar_view(api_client_with_scopes) -> None:
    customer = IdentityFactory(provider="unionid", raw_value="oU1").customer
    OrderFactory(
        customer=customer,
        total_amount="100.00",
        refunded_amount="30.00",
        status="partially_refunded",
    )
    OrderFactory(customer=customer, total_amount="50.00")
    tag = TagFactory(name="护肤")
    customer.customer_tags.create(tag=tag)
    client = api_client_with_scopes("customers:read")
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/api/v1/customers/by-identity/unionid/oU1")
    assert response.status_code == 200
    body = response.json()
    assert body["customer"]["id"] == customer.pk
    assert body["order_summary"]["paid_order_count"] == 2
    assert body["order_summary"]["net_spend"] == "120.00"
    assert [t["name"] for t in body["tags"]] == ["护肤"]
    # The predictions row: one more query; the rate limit: a read and a write of its count;
    # the key's use this hour: one upsert of its counter in the cache table.
    assert len(captured) <= 16
    missing = client.get("/api/v1/customers/by-identity/unionid/nobody")
    assert missing.status_code == 404
    assert missing.json()["code"] == "customer_not_found"


def test_patch_updates_profile_fields(api_client_with_scopes) -> None:
    customer = CustomerFactory(city="上海")
    client = api_client_with_scopes("customers:write")
    response = client.patch(f"/api/v1/customers/{customer.pk}", {"city": "杭州"}, format="json")
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.city == "杭州"
    assert client.patch("/api/v1/customers/999999", {"city": "x"}, format="json").status_code == 404


def test_detail_of_a_merged_customer_points_to_the_survivor(api_client_with_scopes) -> None:
    survivor = CustomerFactory()
    CustomerMergeFactory(survivor=survivor, merged_customer_id=424242)
    response = api_client_with_scopes("customers:read").get("/api/v1/customers/424242")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_merged"
    assert response.json()["errors"]["survivor_id"] == survivor.pk


def test_customer_lookup_carries_metrics_and_segments(api_client_with_scopes: Client) -> None:
    customer = buyer(recency=3, orders=2, spend=300)
    IdentityFactory(customer=customer, provider="unionid", raw_value="union-metrics-1")
    client = api_client_with_scopes("customers:read")
    body = client.get("/api/v1/customers/by-identity/unionid/union-metrics-1").json()
    assert (body["metrics"], body["segments"]) == (None, [])
    recompute_full(trigger="test", as_of=AS_OF)
    metrics = client.get(f"/api/v1/customers/{customer.pk}").json()["metrics"]
    # The only buyer sits on every breakpoint: the most recent, the least frequent and spending.
    assert (metrics["r_score"], metrics["f_score"], metrics["m_score"]) == (5, 1, 1)
    assert (metrics["rfm_tier"], metrics["lifecycle_state"]) == ("general_develop", "new")
    assert metrics["days_since_last_order"] is not None
    assert metrics["lifetime_orders"] == 2
    assert Decimal(metrics["lifetime_net_spend"]) == Decimal("300.00")


# --- The identity in the body: `POST customers/lookup` and `POST customers/by-identity`. ---

LOOKUP = "/api/v1/customers/lookup"
UPSERT = "/api/v1/customers/by-identity"


def test_lookup_in_the_body_answers_what_the_get_answers(api_client_with_scopes) -> None:
    customer = IdentityFactory(provider="phone", raw_value=PHONE).customer
    IdentityFactory(customer=customer, provider="wecom", namespace="ww_corp", raw_value="wmLin1")
    OrderFactory(customer=customer, total_amount="88.00")
    customer.customer_tags.create(tag=TagFactory(name="护肤"))
    client = api_client_with_scopes("customers:read")
    got = client.get(f"/api/v1/customers/by-identity/phone/{PHONE}")
    posted = client.post(LOOKUP, {"provider": "phone", "value": PHONE}, format="json")
    assert (got.status_code, posted.status_code) == (200, 200)
    assert posted.json() == got.json()
    assert posted.json()["customer"]["id"] == customer.pk
    assert posted.json()["order_summary"]["net_spend"] == "88.00"
    # Masked without personal_data:read, as the GET masks them.
    phones = [
        i["value"] for i in posted.json()["customer"]["identities"] if i["provider"] == "phone"
    ]
    assert phones == ["13****34"]
    by_wecom = client.post(
        LOOKUP, {"provider": "wecom", "namespace": "ww_corp", "value": "wmLin1"}, format="json"
    )
    assert by_wecom.json()["customer"]["id"] == customer.pk
    # The new route is no deprecated one.
    assert "Deprecation" not in posted.headers


def test_lookup_in_the_body_unmasks_for_personal_data_read(api_client_with_scopes) -> None:
    IdentityFactory(provider="phone", raw_value=PHONE)
    client = api_client_with_scopes("customers:read", "personal_data:read")
    body = client.post(LOOKUP, {"provider": "phone", "value": PHONE}, format="json").json()
    phones = [i["value"] for i in body["customer"]["identities"] if i["provider"] == "phone"]
    assert phones == ["+8613812341234"]


def test_lookup_in_the_body_answers_the_gets_errors(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:read")
    missing = client.post(LOOKUP, {"provider": "phone", "value": "13900000000"}, format="json")
    assert missing.status_code == 404
    assert missing.json() == client.get("/api/v1/customers/by-identity/phone/13900000000").json()
    assert missing.json()["code"] == "customer_not_found"
    bad = client.post(LOOKUP, {"provider": "phone", "value": "12345"}, format="json")
    assert bad.status_code == 400
    assert bad.json() == client.get("/api/v1/customers/by-identity/phone/12345").json()
    assert set(bad.json()["errors"]) == {"value"}
    shapeless = client.post(LOOKUP, ["phone"], format="json")
    assert shapeless.status_code == 400
    assert client.post(LOOKUP, {"provider": "fax", "value": "1"}, format="json").json()[
        "errors"
    ] == {"provider": ['"fax" is not a valid choice.']}


def test_lookup_in_the_body_is_a_read(api_client_with_scopes, anonymous_client) -> None:
    IdentityFactory(provider="unionid", raw_value="oU1")
    body = {"provider": "unionid", "value": "oU1"}
    assert api_client_with_scopes("customers:read").post(LOOKUP, body).status_code == 200
    assert api_client_with_scopes("customers:write").post(LOOKUP, body).status_code == 403
    assert api_client_with_scopes("orders:read").post(LOOKUP, body).status_code == 403
    assert anonymous_client.post(LOOKUP, body).status_code in (401, 403)


def test_upsert_in_the_body_creates_then_updates(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:write", "customers:read")
    identity = {"provider": "wecom", "namespace": "ww_corp", "value": "wmABCDEF123"}
    created = client.post(
        UPSERT, {"identity": identity, "display_name": "林小姐", "owner": "zhangsan"}
    )
    assert created.status_code == 201
    assert created.json()["customer"]["display_name"] == "林小姐"
    assert "Deprecation" not in created.headers
    updated = client.post(
        UPSERT,
        {
            "identity": identity,
            "member_level": 3,
            "identities": [{"provider": "unionid", "value": "oU-lin"}],
        },
    )
    assert updated.status_code == 200
    assert (updated.json()["customer"]["member_level"], Customer.objects.count()) == (3, 1)
    # The PUT of the old route names the same customer, and answers the same.
    put = client.put("/api/v1/customers/by-identity/unionid/oU-lin", {}, format="json")
    assert put.status_code == 200
    assert put.json() == client.post(UPSERT, {"identity": identity}).json()
    assert client.post(LOOKUP, identity).json()["customer"]["display_name"] == "林小姐"


def test_upsert_in_the_body_refuses_bad_fields_and_writes_nothing(api_client_with_scopes) -> None:
    client = api_client_with_scopes("customers:write")
    response = client.post(
        UPSERT,
        {"identity": {"provider": "phone", "value": "12345"}, "gender": "robot"},
    )
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"identity.value", "gender"}
    assert client.post(UPSERT, {"display_name": "x"}).json()["errors"] == {
        "identity": ["This field is required."]
    }
    assert (
        api_client_with_scopes("customers:read")
        .post(UPSERT, {"identity": {"provider": "phone", "value": PHONE}})
        .status_code
        == 403
    )
    assert Customer.objects.count() == 0


def test_path_routes_are_deprecated_and_point_to_their_successors(api_client_with_scopes) -> None:
    IdentityFactory(provider="unionid", raw_value="oU1")
    client = api_client_with_scopes("customers")
    for response, successor in [
        (client.get("/api/v1/customers/by-identity/unionid/oU1"), LOOKUP),
        (client.get("/api/v1/customers/by-identity/unionid/nobody"), LOOKUP),  # errors too
        (client.put("/api/v1/customers/by-identity/unionid/oU1", {}, format="json"), UPSERT),
    ]:
        assert response["Deprecation"] == "true"
        assert response["Link"] == f'<{successor}>; rel="successor-version"'
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    by_path = schema["paths"]["/api/v1/customers/by-identity/{provider}/{value}"]
    assert (by_path["get"]["deprecated"], by_path["put"]["deprecated"]) == (True, True)
    assert "deprecated" not in schema["paths"]["/api/v1/customers/lookup"]["post"]
    assert "deprecated" not in schema["paths"]["/api/v1/customers/by-identity"]["post"]
