"""The API keys' admin: each key's limits as an operator reads them (expiry in business time or
已过期, allowed addresses, the staff member by name, last use), keys unused for
API_KEY_UNUSED_DAYS flagged 长期未使用 and filtered, and keys created with their limits, a bad
limit shown on its field with nothing created."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.models import ApiKey
from core.services.api_keys import api_key_create
from tests.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 北京时间
DAY = dt.timedelta(days=1)
CHANGELIST = reverse("admin:core_apikey_changelist")


@pytest.fixture
def chinese_admin(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def _key(name: str, *, created: dt.datetime, used: dt.datetime | None = None, **limits) -> ApiKey:
    with time_machine.travel(created, tick=False):
        api_key, _raw = api_key_create(name=name, scopes=["orders"], **limits)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=used)
    return api_key


def _rows(page: str) -> dict[str, str]:
    """Each key's row of the change list (its HTML), by key name."""
    rows = {}
    for row in (part.partition("</tr>")[0] for part in page.split("<tr")[2:]):
        for name in ("fresh", "old-used", "old-never", "young-never", "revoked-old", "bound"):
            if f">{name}<" in row:
                rows[name] = row
    return rows


@time_machine.travel(NOW, tick=False)
def test_the_list_shows_limits_and_flags_keys_unused_for_the_configured_days(
    chinese_admin: Client,
) -> None:
    staff_member = StaffMemberFactory(name="王导购")
    _key("fresh", created=NOW - 200 * DAY, used=NOW - 89 * DAY)
    _key("old-used", created=NOW - 200 * DAY, used=NOW - 91 * DAY)
    _key("old-never", created=NOW - 91 * DAY)
    _key("young-never", created=NOW - 89 * DAY, expires_at=NOW + DAY)
    revoked = _key("revoked-old", created=NOW - 300 * DAY)
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=NOW - 10 * DAY)
    _key(
        "bound",
        created=NOW - 10 * DAY,
        used=NOW - DAY,
        expires_at=NOW - 5 * DAY + dt.timedelta(hours=1),  # accepted then, expired now
        allowed_ips=["10.1.0.0/16", "2001:db8::1"],
        staff_member_id=staff_member.pk,
    )

    page = chinese_admin.get(CHANGELIST).content.decode()
    rows = _rows(page)

    unused = {name for name, row in rows.items() if "长期未使用" in row}
    assert unused == {"old-used", "old-never"}
    bound = rows["bound"]
    assert "王导购" in bound
    assert "已过期（2026年11月30日 11:00（北京时间））" in bound
    assert "10.1.0.0/16, 2001:db8::1" in bound
    assert "2026年12月4日 10:00（北京时间）" in bound  # last used
    assert "全部客户" in rows["fresh"] and "不限" in rows["fresh"] and "永不过期" in rows["fresh"]
    assert "从未使用" in rows["old-never"]
    assert "2026年12月6日 10:00（北京时间）" in rows["young-never"]  # expiry, still valid

    filtered = chinese_admin.get(CHANGELIST, {"unused": "yes"}).content.decode()
    assert set(_rows(filtered)) == {"old-used", "old-never"}
    used = chinese_admin.get(CHANGELIST, {"unused": "no"}).content.decode()
    assert set(_rows(used)) == {"fresh", "young-never", "revoked-old", "bound"}
    expired = chinese_admin.get(CHANGELIST, {"expired": "yes"}).content.decode()
    assert set(_rows(expired)) == {"bound"}

    with override_settings(API_KEY_UNUSED_DAYS=30):
        page = chinese_admin.get(CHANGELIST, {"unused": "yes"}).content.decode()
    assert set(_rows(page)) == {"fresh", "old-used", "old-never", "young-never"}


def test_the_list_reads_staff_names_in_one_query_whatever_the_rows(
    chinese_admin: Client,
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert chinese_admin.get(CHANGELIST).status_code == 200
        return len(captured)

    now = dt.datetime.now(dt.UTC)
    _key("one", created=now, staff_member_id=StaffMemberFactory().pk)
    few = queries()
    for index in range(5):
        _key(f"k{index}", created=now, staff_member_id=StaffMemberFactory().pk)
    assert queries() == few


def test_a_key_is_created_with_its_limits_in_the_admin(chinese_admin: Client) -> None:
    staff_member = StaffMemberFactory(name="李导购")
    response = chinese_admin.post(
        reverse("admin:core_apikey_add"),
        {
            "name": "企微侧边栏",
            "scope_choices": ["customers:read"],
            "expires_at": "2099-06-30 18:00",
            "allowed_ips_text": "203.0.113.7\n10.0.0.0/8, 2001:db8::/32",
            "staff_member": str(staff_member.pk),
        },
    )
    assert response.status_code == 302
    api_key = ApiKey.objects.get()
    assert api_key.expires_at == dt.datetime(2099, 6, 30, 10, 0, tzinfo=dt.UTC)
    assert api_key.allowed_ips == ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32"]
    assert api_key.staff_member_id == staff_member.pk


def test_a_bad_address_or_past_expiry_is_shown_on_its_field_and_nothing_is_created(
    chinese_admin: Client,
) -> None:
    response = chinese_admin.post(
        reverse("admin:core_apikey_add"),
        {
            "name": "bad",
            "scope_choices": ["customers:read"],
            "allowed_ips_text": "203.0.113.7\n10.0.0.0/33",
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["allowed_ips_text"] == ["不是有效的 IP 地址或网段（CIDR）：10.0.0.0/33"]

    response = chinese_admin.post(
        reverse("admin:core_apikey_add"),
        {"name": "past", "scope_choices": ["customers:read"], "expires_at": "2020-01-01 00:00"},
    )
    assert response.context["adminform"].form.errors["expires_at"] == ["到期时间必须晚于当前时间。"]
    assert not ApiKey.objects.exists()
