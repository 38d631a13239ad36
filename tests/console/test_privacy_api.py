"""The PIPL export and erasure over the API: each needs its own scope (nothing else grants
it), answers a JSON error with a code for an unknown customer or a bad body, and is recorded
and audited once, by the key that asked."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from console.models import PrivacyRequest
from core.models import ApiKey
from core.services.api_keys import SCOPES
from crm.models import Customer, Order
from tests.console.privacy_support import privacy_events, two_people
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db


def export_url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/export"


def erase_url(customer_id: int) -> str:
    return f"/api/v1/customers/{customer_id}/erase"


def _key_actor() -> str:
    key = ApiKey.objects.get()
    return f"api_key:{key.name}:{key.prefix}"


def test_the_erase_scope_is_known_to_keys() -> None:
    assert "personal_data:erase" in SCOPES


@pytest.mark.parametrize(
    "scopes",
    [
        ("customers:read",),
        ("customers:read", "customers:write"),
        ("personal_data:erase",),
    ],
)
def test_export_needs_the_personal_data_scope(api_client_with_scopes, scopes) -> None:
    first, _second, _setting = two_people()
    response = api_client_with_scopes(*scopes).get(export_url(first.pk))
    assert response.status_code == 403
    assert response.json()["code"]
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().filter(action="personal_export").exists()


@pytest.mark.parametrize(
    "scopes",
    [
        ("customers:read", "customers:write"),
        ("personal_data:read",),
        ("customers:write", "personal_data:read"),
    ],
)
def test_erase_needs_the_erase_scope(api_client_with_scopes, scopes) -> None:
    first, _second, _setting = two_people()
    response = api_client_with_scopes(*scopes).post(erase_url(first.pk), {}, format="json")
    assert response.status_code == 403
    assert Customer.objects.filter(pk=first.pk).exists()
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_export_answers_the_file(api_client_with_scopes) -> None:
    first, second, _setting = two_people()
    response = api_client_with_scopes("personal_data:read").get(export_url(first.pk))
    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{first.pk}-personal-data.json"'
    )
    body = response.json()
    assert body["profile"]["id"] == first.pk
    assert "+8613912340001" in [i["value"] for i in body["identities"]]
    assert second.values[2] not in json.dumps(body, ensure_ascii=False)
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id) == (
        "personal_export",
        _key_actor(),
        first.pk,
    )
    assert PrivacyRequest.objects.get().requested_by == _key_actor()


def test_unknown_customer_is_a_404_with_a_code(api_client_with_scopes) -> None:
    client = api_client_with_scopes("personal_data:read", "personal_data:erase")
    for response in (
        client.get(export_url(987654)),
        client.post(erase_url(987654), {}, format="json"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "customer_not_found"
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_erase_answers_the_record_then_the_same_again(api_client_with_scopes) -> None:
    first, second, _setting = two_people()
    client = api_client_with_scopes("personal_data:erase")
    response = client.post(erase_url(first.pk), {"reason": "工单 2026-118"}, format="json")
    assert response.status_code == 200
    body = response.json()
    record = PrivacyRequest.objects.get()
    assert body["id"] == record.pk
    assert (body["kind"], body["customer_id"], body["reason"]) == (
        "erase",
        first.pk,
        "工单 2026-118",
    )
    assert body["requested_by"] == _key_actor()
    assert body["outcome"]["identities"] == 5
    assert body["outcome"]["orders_detached"] == 1
    assert not Customer.objects.filter(pk=first.pk).exists()
    assert Order.objects.get(pk=first.order.pk).customer_id is None
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id) == ("erase", _key_actor(), first.pk)

    again = client.post(erase_url(first.pk), format="json")
    assert again.status_code == 200
    assert again.json() == body
    assert PrivacyRequest.objects.count() == 1
    assert privacy_events().count() == 1
    assert Customer.objects.filter(pk=second.pk).exists()

    # Its export now says the customer was erased.
    gone = api_client_with_scopes("personal_data:read").get(export_url(first.pk))
    assert gone.status_code == 404
    assert gone.json()["code"] == "customer_erased"


def test_erase_without_a_body_is_fine(api_client_with_scopes) -> None:
    first, _second, _setting = two_people()
    response = api_client_with_scopes("personal_data:erase").post(erase_url(first.pk))
    assert response.status_code == 200
    assert response.json()["reason"] == ""


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": ["a list"]}, "reason"),
        ({"reason": "x" * 501}, "reason"),
        ([1, 2], None),
    ],
)
def test_a_bad_body_is_a_400_and_erases_nothing(api_client_with_scopes, body, field) -> None:
    first, _second, _setting = two_people()
    response = api_client_with_scopes("personal_data:erase").post(
        erase_url(first.pk), body, format="json"
    )
    assert response.status_code == 400
    payload = response.json()
    assert payload["code"]
    if field is not None:
        assert field in payload["errors"]
    assert Customer.objects.filter(pk=first.pk).exists()
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_a_body_that_is_not_json_is_refused(api_client_with_scopes) -> None:
    first, _second, _setting = two_people()
    response = api_client_with_scopes("personal_data:erase").post(
        erase_url(first.pk), "reason=x", content_type="application/json"
    )
    assert response.status_code == 400
    assert Customer.objects.filter(pk=first.pk).exists()


def test_staff_in_the_browser_export_only_with_the_personal_data_permission() -> None:
    first, _second, _setting = two_people()
    staff = User.objects.create_user("operator", is_staff=True)
    assert client_of(staff).get(export_url(first.pk)).status_code == 403
    staff.user_permissions.add(
        *seeing_every_customer([Permission.objects.get(codename="view_personal_data")])
    )
    staff = User.objects.get(pk=staff.pk)
    # Seeing personal data is not answering PIPL requests.
    assert client_of(staff).get(export_url(first.pk)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="export_personal_data"))
    staff = User.objects.get(pk=staff.pk)
    response = client_of(staff).get(export_url(first.pk), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert privacy_events().get().actor == f"user:{staff.pk}"
    # Erasing is never a session's: the admin has its own page for it.
    assert client_of(staff).post(erase_url(first.pk)).status_code == 403
    assert Customer.objects.filter(pk=first.pk).exists()


def test_anonymous_is_refused(anonymous_client: APIClient) -> None:
    first, _second, _setting = two_people()
    assert anonymous_client.get(export_url(first.pk)).status_code in (401, 403)
    assert anonymous_client.post(erase_url(first.pk)).status_code in (401, 403)
    assert Customer.objects.filter(pk=first.pk).exists()
