"""The API keys' admin in an operator's words: scopes by their labels (the code beside them for
integrators), a revoked key marked 已吊销 and filtered as 有效 / 已吊销, the day's request count
said to be updated every 5 minutes, the new key named with its prefix once created; and
django-axes' lockout column labelled."""

import datetime as dt

import pytest
import time_machine
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from core.models import ApiKey
from core.services.api_keys import SCOPE_LABELS, SCOPES, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:core_apikey_changelist")
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 北京时间


@pytest.fixture
def chinese_admin(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def test_every_scope_has_a_label() -> None:
    assert set(SCOPE_LABELS) == set(SCOPES)


def test_the_create_form_offers_scopes_by_label_with_their_code(chinese_admin: Client) -> None:
    page = chinese_admin.get(reverse("admin:core_apikey_add")).content.decode()
    assert '客户：读取 <code class="scope-code">customers:read</code>' in page
    assert '个人信息：查看明文 <code class="scope-code">personal_data:read</code>' in page
    assert '个人信息：删除（个保法） <code class="scope-code">personal_data:erase</code>' in page
    assert '审计日志：读取 <code class="scope-code">audit:read</code>' in page


def test_a_created_key_is_named_with_its_prefix(chinese_admin: Client) -> None:
    response = chinese_admin.post(
        reverse("admin:core_apikey_add"),
        {"name": "企微侧边栏-试用", "scope_choices": ["customers:read", "audit:read"]},
        follow=True,
    )
    api_key = ApiKey.objects.get()
    assert api_key.scopes == ["audit:read", "customers:read"]
    texts = [str(message) for message in response.context["messages"]]
    assert any(f"企微侧边栏-试用 ({api_key.prefix})" in text for text in texts)
    assert not any("()" in text for text in texts)


@time_machine.travel(NOW, tick=False)
def test_the_list_and_page_read_scopes_and_revocation_in_words(chinese_admin: Client) -> None:
    valid, _raw = api_key_create(name="valid-key", scopes=["customers:read", "audit:read"])
    revoked, _raw = api_key_create(name="revoked-key", scopes=["personal_data:erase"])
    api_key_revoke(prefix=revoked.prefix)

    response = chinese_admin.get(CHANGELIST)
    page = response.content.decode()
    rows = {
        name: row
        for row in (part.partition("</tr>")[0] for part in page.split("<tr")[2:])
        for name in ("valid-key", "revoked-key")
        if f">{name}<" in row
    }
    assert "审计日志：读取、客户：读取" in rows["valid-key"]
    assert ">有效<" in rows["valid-key"]
    assert "已吊销（2026年12月5日 10:00（北京时间））" in rows["revoked-key"]
    assert "近 24 小时调用次数（每 5 分钟更新）" in page
    assert "?revoked=no" in page and ">有效</a>" in page
    assert "?revoked=yes" in page and ">已吊销</a>" in page
    assert "空" not in [
        str(choice["display"])
        for spec in response.context["cl"].filter_specs
        for choice in spec.choices(response.context["cl"])
    ]

    by_status = {
        value: [
            key.name
            for key in chinese_admin.get(CHANGELIST, {"revoked": value}).context["cl"].result_list
        ]
        for value in ("no", "yes")
    }
    assert by_status == {"no": ["valid-key"], "yes": ["revoked-key"]}

    detail = chinese_admin.get(reverse("admin:core_apikey_change", args=[valid.pk]))
    text = detail.content.decode()
    assert '<div>客户：读取 <code class="scope-code">customers:read</code></div>' in text
    assert "有效" in text


def test_the_login_failures_status_column_is_labelled(chinese_admin: Client) -> None:
    AccessAttempt.objects.create(
        username="someone", ip_address="203.0.113.7", failures_since_start=2, user_agent="x"
    )
    page = chinese_admin.get(reverse("admin:axes_accessattempt_changelist")).content.decode()
    assert ">状态<" in page
    assert ">Status<" not in page
