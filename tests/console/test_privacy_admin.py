"""The PIPL export and erasure on the customer page (客户 360°): shown only to users holding the
permissions, the erasure confirmed on a page that says what goes and what stays, each recorded
and audited once with the user as actor; the request records read-only in the admin."""

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from console.models import PrivacyRequest
from crm.models import Customer, Order
from tests.console.privacy_support import privacy_events, two_people
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db


def _user(*codenames: str) -> User:
    user = User.objects.create_user("operator", is_staff=True, first_name="小", last_name="李")
    user.user_permissions.add(
        *seeing_every_customer(
            [
                Permission.objects.get(codename="view_customer"),
                *(Permission.objects.get(codename=c) for c in codenames),
            ]
        )
    )
    return User.objects.get(pk=user.pk)


def _change_url(customer_id: int) -> str:
    return reverse("admin:crm_customer_change", args=[customer_id])


def _export_url(customer_id: int) -> str:
    return reverse("admin:crm_customer_personal_export", args=[customer_id])


def _erase_url(customer_id: int) -> str:
    return reverse("admin:crm_customer_erase", args=[customer_id])


def test_the_page_shows_the_tools_to_users_holding_the_permissions(admin_client_en) -> None:
    first, _second, _setting = two_people()
    page = admin_client_en.get(_change_url(first.pk)).content.decode()
    assert _export_url(first.pk) in page
    assert _erase_url(first.pk) in page
    assert "Export personal data (JSON)" in page
    assert "Erase personal data" in page


def test_the_page_hides_the_tools_from_users_without_them() -> None:
    first, _second, _setting = two_people()
    page = client_of(_user()).get(_change_url(first.pk)).content.decode()
    assert _export_url(first.pk) not in page
    assert _erase_url(first.pk) not in page
    # Seeing personal data is not answering PIPL requests (a 导购 sees their customers').
    page = client_of(_user_with("view_personal_data")).get(_change_url(first.pk))
    assert _export_url(first.pk) not in page.content.decode()
    page = client_of(_user_with("view_personal_data", "export_personal_data"))
    page = page.get(_change_url(first.pk))
    text = page.content.decode()
    assert _export_url(first.pk) in text
    assert _erase_url(first.pk) not in text


def _user_with(*codenames: str) -> User:
    User.objects.filter(username="operator").delete()
    return _user(*codenames)


def test_export_and_erase_are_refused_without_the_permissions() -> None:
    first, _second, _setting = two_people()
    client = client_of(_user())
    assert client.get(_export_url(first.pk)).status_code == 403
    assert client.get(_erase_url(first.pk)).status_code == 403
    assert client.post(_erase_url(first.pk), {"confirm": "on"}).status_code == 403
    # The export permission is not the erasure's.
    client = client_of(_user_with("view_personal_data"))
    assert client.post(_erase_url(first.pk), {"confirm": "on"}).status_code == 403
    assert Customer.objects.filter(pk=first.pk).exists()
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_export_downloads_the_json_and_is_audited_with_the_user() -> None:
    first, second, _setting = two_people()
    user = _user("view_personal_data", "export_personal_data")
    response = client_of(user).get(_export_url(first.pk))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{first.pk}-personal-data.json"'
    )
    text = response.content.decode()
    assert "测试顾客甲1号" in text  # unescaped Chinese, as the person reads it
    data = json.loads(text)
    assert data["profile"]["id"] == first.pk
    assert second.values[2] not in text
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id) == (
        "personal_export",
        f"user:{user.pk}",
        first.pk,
    )


def test_the_confirmation_page_says_what_goes_and_what_stays() -> None:
    first, _second, _setting = two_people()
    user = _user("erase_personal_data")
    client = client_of(user)
    page = client.get(_erase_url(first.pk))
    assert page.status_code == 200
    text = page.content.decode()
    assert "will be erased, at once and for good" in text
    assert "Orders and their items, with amounts and dates" in text
    assert "a later order from the same phone makes a new customer" in text
    # Looking changes nothing; an unconfirmed post neither.
    response = client.post(_erase_url(first.pk), {"reason": "x"})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Customer.objects.filter(pk=first.pk).exists()
    assert not PrivacyRequest.objects.exists()
    assert not privacy_events().exists()


def test_the_confirmation_page_reads_in_chinese() -> None:
    first, _second, _setting = two_people()
    client = client_of(_user("erase_personal_data"))
    text = client.get(_erase_url(first.pk), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "删除个人信息" in text
    assert "订单及其明细" in text
    assert "将被保留的信息" in text


def test_erasure_from_the_page_is_recorded_and_audited_with_the_user() -> None:
    first, second, _setting = two_people()
    user = _user("erase_personal_data")
    response = client_of(user).post(
        _erase_url(first.pk), {"reason": "工单 118", "confirm": "on"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("admin:crm_customer_changelist")
    assert "was erased" in response.content.decode()
    assert not Customer.objects.filter(pk=first.pk).exists()
    assert Customer.objects.filter(pk=second.pk).exists()
    assert Order.objects.get(pk=first.order.pk).customer_id is None
    record = PrivacyRequest.objects.get()
    assert (record.kind, record.requested_by, record.reason) == (
        "erase",
        f"user:{user.pk}",
        "工单 118",
    )
    [event] = privacy_events().all()
    assert (event.action, event.actor, event.customer_id) == ("erase", f"user:{user.pk}", first.pk)
    # The customer is gone: its pages answer 404 (or the admin's redirect), not an error.
    assert client_of(user).get(_erase_url(first.pk)).status_code == 404


def test_the_request_records_are_read_only_with_the_actor_by_name(admin_client_en) -> None:
    first, _second, _setting = two_people()
    user = _user("erase_personal_data")
    client_of(user).post(_erase_url(first.pk), {"confirm": "on"})
    record = PrivacyRequest.objects.get()
    listing = admin_client_en.get(reverse("admin:console_privacyrequest_changelist"))
    assert listing.status_code == 200
    text = listing.content.decode()
    assert "小 李" in text  # the user's name, not the actor code
    assert f"user:{user.pk}" not in text
    assert "Beijing time" in text
    for kind, count in (("export", 0), ("erase", 1)):
        filtered = admin_client_en.get(
            reverse("admin:console_privacyrequest_changelist"), {"kind__exact": kind}
        )
        assert filtered.context["cl"].result_count == count
    page = admin_client_en.get(reverse("admin:console_privacyrequest_change", args=[record.pk]))
    assert page.status_code == 200
    assert "5 identities" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    delete = reverse("admin:console_privacyrequest_delete", args=[record.pk])
    assert admin_client_en.post(delete, {"post": "yes"}).status_code == 403
    assert PrivacyRequest.objects.filter(pk=record.pk).exists()
