"""/api/v1/contact-ways: create, list with each code's report, read, change, stop and the QR
image, against the WeCom fake; bad input is a 4xx with a code and the field, WeCom's refusal a
409 with nothing stored; a key bound to a staff member is refused (the report counts every
owner's customers)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.services.api_keys import api_key_create
from crm.models import ContactWay, WeComFollow
from crm.wecom.acquisition import acquisition_record
from devstack.wecom_fake import FakeWeCom
from devstack.wecom_fake_contact_ways import qr_png
from tests.factories import CustomerFactory, StaffMemberFactory, TagFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/contact-ways"


@pytest.fixture
def client(api_client_with_scopes):
    return api_client_with_scopes("contact_ways:read", "contact_ways:write")


def _body(**overrides):
    staff = StaffMemberFactory(wecom_userid="zhangsan")
    return {
        "name": "抖音 0312 视频",
        "state": "dy0312",
        "staff_member_ids": [staff.pk],
        "source_channel": "douyin",
    } | overrides


def test_create_read_change_and_stop(client, fake: FakeWeCom) -> None:
    tag = TagFactory()
    response = client.post(URL, _body(auto_tag_ids=[tag.pk]), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["state"] == "dy0312"
    assert created["auto_tag_ids"] == [tag.pk]
    assert created["has_qr_code_image"] is True
    assert created["is_active"] is True
    assert created["report"]["added"] == 0
    assert created["report"]["repeat_rate"] is None
    way_id = created["id"]
    assert created["config_id"] in fake.directory.contact_ways

    response = client.get(f"{URL}/{way_id}")
    assert response.status_code == 200
    assert response.json()["name"] == "抖音 0312 视频"

    response = client.patch(f"{URL}/{way_id}", {"name": "新视频"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "新视频"
    assert fake.directory.contact_ways[created["config_id"]].remark == "新视频"

    response = client.post(f"{URL}/{way_id}/deactivate")
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert fake.directory.contact_ways == {}
    response = client.get(URL, {"is_active": "false"})
    assert [row["id"] for row in response.json()["results"]] == [way_id]
    assert client.get(URL, {"is_active": "true"}).json()["results"] == []


def test_the_qr_code_is_a_png(client, fake: FakeWeCom) -> None:
    created = client.post(URL, _body(), format="json").json()
    response = client.get(f"{URL}/{created['id']}/qr-code")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content == qr_png(created["config_id"])
    response = client.get(f"{URL}/999999/qr-code")
    assert response.status_code == 404
    assert response.json()["code"] == "contact_way_not_found"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"state": "带中文"}, "state"),
        ({"state": "a" * 31}, "state"),
        ({"staff_member_ids": []}, "staff_member_ids"),
        ({"staff_member_ids": [2**70]}, "staff_member_ids.0"),
        ({"staff_member_ids": "1"}, "staff_member_ids"),
        ({"kind": 9}, "kind"),
        ({"source_channel": "tv"}, "source_channel"),
        ({"auto_tag_ids": list(range(1, 30))}, "auto_tag_ids"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, fake: FakeWeCom, overrides, field) -> None:
    response = client.post(URL, _body(**overrides), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert field in response.json()["errors"]
    assert not ContactWay.objects.exists()
    assert fake.calls() == []


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"staff_member_ids": [987654]}, "contact_way_staff_members", "staff_member_ids"),
        ({"auto_tag_ids": [987654]}, "contact_way_unknown_tags", "auto_tag_ids"),
    ],
)
def test_unknown_ids_are_a_400_with_the_services_code(
    client, fake: FakeWeCom, overrides, code, field
) -> None:
    response = client.post(URL, _body(**overrides), format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert field in response.json()["errors"]


def test_a_taken_state_is_a_409(client, fake: FakeWeCom) -> None:
    assert client.post(URL, _body(), format="json").status_code == 201
    response = client.post(URL, _body(), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "contact_way_state_taken"
    assert response.json()["errors"]["state"]


def test_wecom_refusing_is_a_409_and_nothing_is_stored(client, fake: FakeWeCom) -> None:
    fake.inject_errcode("externalcontact/add_contact_way", 84074)
    response = client.post(URL, _body(), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "wecom_refused"
    assert "84074" in response.json()["detail"]
    assert not ContactWay.objects.exists()


def test_wecom_out_of_reach_is_a_409_and_nothing_is_stored(client, settings) -> None:
    """No WeCom answers (here a closed loopback port; in CI, no route to WeCom at all): the
    token request itself fails, which must read as WeCom being out of reach, not a 500."""
    settings.WECOM_API_BASE_URL = "http://127.0.0.1:9/cgi-bin/"
    response = client.post(URL, _body(), format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "wecom_refused"
    assert not ContactWay.objects.exists()


def test_the_list_carries_reports_in_constant_queries(client, fake: FakeWeCom) -> None:
    staff = StaffMemberFactory(wecom_userid="zhangsan")

    def add_way(i: int) -> int:
        body = {"name": f"视频{i}", "state": f"v{i}", "staff_member_ids": [staff.pk]}
        way_id = client.post(URL, body, format="json").json()["id"]
        customer = CustomerFactory()
        added_at = timezone.now() - timedelta(days=10)
        WeComFollow.objects.create(
            customer=customer,
            staff_member=staff,
            added_at=added_at,
            state=f"v{i}",
            observed_at=added_at,
        )
        acquisition_record(
            customer_id=customer.pk,
            state=f"v{i}",
            staff_member_id=staff.pk,
            acquired_at=added_at,
            actor="test",
        )
        return way_id

    add_way(0)
    with CaptureQueriesContext(connection) as one:
        response = client.get(URL)
    assert response.json()["results"][0]["report"]["added"] == 1
    for i in range(1, 6):
        add_way(i)
    with CaptureQueriesContext(connection) as six:
        response = client.get(URL)
    rows = response.json()["results"]
    assert len(rows) == 6
    assert [row["report"]["acquired"] for row in rows] == [1] * 6
    assert len(six) == len(one)


def test_scopes_are_needed(api_client_with_scopes, fake: FakeWeCom) -> None:
    reader = api_client_with_scopes("contact_ways:read")
    assert reader.get(URL).status_code == 200
    response = reader.post(URL, _body(), format="json")
    assert response.status_code == 403
    assert api_client_with_scopes("customers:read").get(URL).status_code == 403


def test_a_key_bound_to_a_staff_member_is_refused(fake: FakeWeCom) -> None:
    from rest_framework.test import APIClient

    api_key, raw_key = api_key_create(name="sidebar", scopes=["contact_ways"])
    api_key.staff_member_id = StaffMemberFactory().pk
    api_key.save(update_fields=["staff_member_id"])
    bound = APIClient(HTTP_ACCEPT_LANGUAGE="en")
    bound.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw_key}")
    response = bound.get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "owner_scope_refused"


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"staff_member_ids": []},
        {"staff_member_ids": [-1]},
        {"auto_tag_ids": ["x"]},
        {"source_channel": "tv"},
        {"skip_verify": "maybe"},
        {"name": "a\x00b"},
    ],
)
def test_a_hostile_change_is_a_400_and_changes_nothing(client, fake: FakeWeCom, body) -> None:
    created = client.post(URL, _body(), format="json").json()
    calls = len(fake.calls())
    response = client.patch(f"{URL}/{created['id']}", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"]
    assert ContactWay.objects.get().name == "抖音 0312 视频"
    assert len(fake.calls()) == calls
