"""The channel QR code admin: the list with each code's report (in constant queries), a form
that creates and changes codes through the service (in WeCom first), the image on the page and
as a download, and stopping codes after a confirmation."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import ContactWay, WeComFollow
from crm.wecom.acquisition import acquisition_record
from crm.wecom.contact_ways import contact_way_create
from devstack.wecom_fake import FakeWeCom
from devstack.wecom_fake_contact_ways import qr_png
from tests.factories import CustomerFactory, StaffMemberFactory, TagFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:crm_contactway_changelist"


@pytest.fixture
def chinese(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def _way(state: str, **extra) -> ContactWay:
    staff = extra.pop("staff", None) or StaffMemberFactory()
    way = contact_way_create(
        name=f"视频{state}", state=state, staff_member_ids=[staff.pk], actor="test", **extra
    )
    customer = CustomerFactory()
    added_at = timezone.now() - timedelta(days=40)
    WeComFollow.objects.create(
        customer=customer, staff_member=staff, added_at=added_at, state=state, observed_at=added_at
    )
    acquisition_record(
        customer_id=customer.pk,
        state=state,
        staff_member_id=staff.pk,
        acquired_at=added_at,
        actor="test",
    )
    return way


def test_the_list_shows_each_codes_report_in_constant_queries(
    admin_client_en: Client, fake: FakeWeCom
) -> None:
    _way("v0")
    with CaptureQueriesContext(connection) as one:
        page = admin_client_en.get(reverse(CHANGELIST)).content.decode()
    assert "视频v0" in page
    assert "100% / 100%" in page  # still connected after 7 / 30 days
    assert "Repeat rate" in page or "repeat-purchase rate" in page.lower()
    for i in range(1, 6):
        _way(f"v{i}")
    with CaptureQueriesContext(connection) as six:
        page = admin_client_en.get(reverse(CHANGELIST)).content.decode()
    assert page.count("100% / 100%") == 6
    assert len(six) == len(one)


def test_a_code_is_created_through_the_form_and_its_image_shown_and_downloadable(
    admin_client_en: Client, fake: FakeWeCom
) -> None:
    staff = StaffMemberFactory(wecom_userid="zhangsan")
    tag = TagFactory()
    response = admin_client_en.post(
        reverse("admin:crm_contactway_add"),
        {
            "name": "小红书笔记",
            "state": "",
            "kind": "1",
            "staff_members": [staff.pk],
            "auto_tags": [tag.pk],
            "source_channel": "xiaohongshu",
            "skip_verify": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    way = ContactWay.objects.get()
    assert way.state.startswith("cw")
    assert fake.directory.contact_ways[way.config_id].user == ["zhangsan"]
    assert list(way.auto_tags.all()) == [tag]

    page = admin_client_en.get(reverse("admin:crm_contactway_change", args=[way.pk]))
    image_url = reverse("admin:crm_contactway_qr_code", args=[way.pk])
    assert f'<img src="{image_url}"' in page.content.decode()
    shown = admin_client_en.get(image_url)
    assert shown["Content-Type"] == "image/png"
    assert shown.content == qr_png(way.config_id)
    download = admin_client_en.get(image_url + "?download=1")
    assert download["Content-Disposition"] == f'attachment; filename="contact-way-{way.pk}.png"'
    assert download.content == shown.content


def test_a_wecom_refusal_shows_on_the_form_and_stores_nothing(
    admin_client_en: Client, fake: FakeWeCom
) -> None:
    fake.inject_errcode("externalcontact/add_contact_way", 60011)
    staff = StaffMemberFactory()
    response = admin_client_en.post(
        reverse("admin:crm_contactway_add"),
        {"name": "直播间", "state": "live1", "kind": "1", "staff_members": [staff.pk]},
    )
    assert response.status_code == 200
    assert "60011" in response.content.decode()
    assert not ContactWay.objects.exists()


def test_the_image_needs_the_view_permission(fake: FakeWeCom) -> None:
    way = _way("v1")
    clerk = User.objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(clerk)
    response = client.get(reverse("admin:crm_contactway_qr_code", args=[way.pk]))
    assert response.status_code == 403
    anonymous = Client().get(reverse("admin:crm_contactway_qr_code", args=[way.pk]))
    assert anonymous.status_code == 302  # to the login page


def test_stopping_asks_first_then_stops_in_wecom(admin_client_en: Client, fake: FakeWeCom) -> None:
    way = _way("v1")
    data = {"action": "deactivate", "_selected_action": [way.pk]}
    response = admin_client_en.post(reverse(CHANGELIST), data)
    assert response.status_code == 200
    assert "视频v1" in response.content.decode()
    assert ContactWay.objects.get().is_active
    response = admin_client_en.post(reverse(CHANGELIST), data | {"confirm": "yes"})
    assert response.status_code == 302
    assert not ContactWay.objects.get().is_active
    assert fake.directory.contact_ways == {}


def test_the_pages_read_in_chinese(chinese: Client, fake: FakeWeCom) -> None:
    """Needs the slice's words in the catalogue (merged into django.po centrally)."""
    way = _way("v1")
    page = chinese.get(reverse(CHANGELIST)).content.decode()
    for words in ("渠道活码", "渠道参数", "员工", "来源渠道", "复购率"):
        assert words in page
    change = chinese.get(reverse("admin:crm_contactway_change", args=[way.pk])).content.decode()
    assert "下载二维码" in change
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page, flags=re.S)
    assert not [h for h in headers if re.search(r"[A-Za-z]{3,}", re.sub(r"<[^>]+>", "", h))]


def test_a_stopped_codes_page_shows_it_read_only_with_its_image(
    admin_client_en: Client, fake: FakeWeCom
) -> None:
    way = _way("v1")
    admin_client_en.post(
        reverse(CHANGELIST),
        {"action": "deactivate", "_selected_action": [way.pk], "confirm": "yes"},
    )
    page = admin_client_en.get(reverse("admin:crm_contactway_change", args=[way.pk]))
    content = page.content.decode()
    assert page.status_code == 200
    assert 'name="name"' not in content  # nothing to change
    assert reverse("admin:crm_contactway_qr_code", args=[way.pk]) in content
    assert 'name="_selected_action"' not in content
    # Never deleted: its customers' first touch names it.
    assert admin_client_en.get(
        reverse("admin:crm_contactway_delete", args=[way.pk])
    ).status_code in (302, 403)
    assert ContactWay.objects.filter(pk=way.pk).exists()
