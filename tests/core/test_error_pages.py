"""403 and 404 outside the API are pages of the admin in the operator's language, with a way
back to the index; under /api/ they stay JSON (the error contract). Tests run with DEBUG off."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _staff_client() -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(UserFactory())  # staff, no permission
    return client


def test_a_page_the_user_may_not_open_is_a_chinese_403() -> None:
    response = _staff_client().get(reverse("admin:core_auditevent_changelist"))
    assert response.status_code == 403
    text = response.content.decode()
    assert "<h1>没有权限</h1>" in text
    assert "您的账号无权打开此页面" in text
    assert f'<a href="{reverse("admin:index")}">返回首页</a>' in text
    assert "私域 CRM" in text  # the admin's header
    assert "Forbidden" not in text


def test_an_unknown_admin_address_is_a_chinese_404() -> None:
    response = _staff_client().get("/admin/no-such-page/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "<h1>页面不存在</h1>" in text
    assert f'<a href="{reverse("admin:index")}">返回首页</a>' in text
    assert "Not Found" not in text


def test_an_unknown_address_outside_the_admin_is_a_chinese_404_too() -> None:
    response = Client(HTTP_ACCEPT_LANGUAGE="zh-hans").get("/no-such-page")
    assert response.status_code == 404
    assert "<h1>页面不存在</h1>" in response.content.decode()


def test_under_the_api_they_stay_json() -> None:
    response = _staff_client().get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
