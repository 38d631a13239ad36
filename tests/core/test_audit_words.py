"""The audit trail reads in an operator's words on its list and its pages: a PIPL request by
its number (a link to its record) and its counts by kind of data, what an erasure deleted apart
from what it kept; an export's filter by the customer list's fields and values; a change's
fields by their labels, choices by theirs, moments in business time, the bound staff member by
name, scopes by their labels, secrets as changed; the pages that showed a customer among others
found by that customer's id."""

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from core.audit_display import audit_detail_lines
from core.models import AuditAction, AuditEvent
from core.services.api_keys import api_key_create, api_key_revoke
from core.services.audit import audit_change, audit_record, personal_data_view_record
from tests.factories import StaffMemberFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:core_auditevent_changelist")
NOW = dt.datetime(2026, 12, 5, 2, 0, tzinfo=dt.UTC)  # 10:00 北京时间


@pytest.fixture
def auditor() -> Client:
    user = UserFactory(
        permissions=Permission.objects.filter(
            content_type__app_label="core", codename="view_auditevent"
        )
    )
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(user)
    return client


def _page(client: Client, event: AuditEvent) -> str:
    response = client.get(reverse("admin:core_auditevent_change", args=[event.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_an_erasure_names_its_request_and_counts_deleted_apart_from_kept(auditor) -> None:
    event = audit_record(
        actor="system",
        action=AuditAction.ERASE,
        object_type="customer",
        object_id=9,
        customer_id=9,
        detail={
            "privacy_request_id": 2,
            "counts": {
                "tags": 2,
                "orders_detached": 5,
                "order_items_detached": 7,
                "identities": 3,
                "deliveries": 0,
                "customer": 1,
                "list_export_records_scrubbed": 1,
            },
        },
    )
    page = _page(auditor, event)
    url = reverse("admin:console_privacyrequest_change", args=[2])
    assert f'<div><a href="{url}">请求编号 2</a></div>' in page
    assert "<div>已删除：客户档案 1 份、身份标识 3 个、标签 2 条</div>" in page
    assert "<div>保留（已解除与该客户的关联）：订单 5 笔、订单明细 7 条</div>" in page
    assert "<div>已清除该客户的信息：名单导出记录 1 条</div>" in page
    assert "privacy_request_id" not in page and "orders_detached" not in page
    assert "触达记录" not in page  # none deleted: not listed

    listed = auditor.get(CHANGELIST).content.decode()
    assert f'<a href="{url}">请求编号 2</a>；已删除：客户档案 1 份' in listed


def test_a_personal_data_export_counts_what_it_held(auditor) -> None:
    event = audit_record(
        actor="system",
        action=AuditAction.PERSONAL_EXPORT,
        object_type="customer",
        object_id=9,
        customer_id=9,
        detail={
            "privacy_request_id": 3,
            "counts": {"orders": 1234, "tags": 0, "identities": 2, "metrics": 1},
        },
    )
    assert _lines_zh(event)[1:] == ["已导出：身份标识 2 个、订单 1234 笔、客户指标 1 份"]


def _lines_zh(event: AuditEvent) -> list[str]:
    from django.utils import translation

    with translation.override("zh-hans"):
        return [str(line) for line in audit_detail_lines(event)]


def test_an_export_names_its_filter_in_the_lists_words(auditor) -> None:
    event = audit_record(
        actor="system",
        action=AuditAction.EXPORT,
        object_type="customer_export",
        object_id=4,
        detail={
            "filter": {
                "metrics__lifecycle_state__exact": "sleeping",
                "metrics__rfm_tier__in": "important_value,general_winback",
                "owner__id__exact": "5",
                "segment": "3",
            },
            "is_searched": False,
            "row_count": 1234,
            "format": "csv",
            "is_unmasked": True,
        },
    )
    lines = _lines_zh(event)
    assert lines[0] == (
        "筛选条件：生命周期状态：沉睡；RFM 层级：重要价值客户、一般挽留客户；跟进人：5；segment = 3"
    )
    assert lines[1:] == ["按搜索缩小范围：否", "行数：1234", "文件格式：CSV", "未脱敏：是"]
    page = _page(auditor, event)
    assert "metrics__lifecycle_state__exact" not in page and "sleeping" not in page


@time_machine.travel(NOW, tick=False)
def test_a_keys_creation_and_revocation_read_in_words(auditor) -> None:
    staff_member = StaffMemberFactory(name="王导购")
    api_key, _raw = api_key_create(
        name="企微侧边栏",
        scopes=["customers:read", "personal_data:erase"],
        expires_at=dt.datetime(2027, 6, 30, 10, 0, tzinfo=dt.UTC),
        staff_member_id=staff_member.pk,
    )
    api_key_revoke(prefix=api_key.prefix)
    created, revoked = AuditEvent.objects.filter(object_type="api_key").order_by("id")

    lines = _lines_zh(created)
    assert "绑定员工：- → 王导购" in lines
    assert "到期时间：- → 2027年6月30日 18:00（北京时间）" in lines
    assert "权限范围：- → 客户：读取、个人信息：删除（个保法）" in lines
    assert "密钥：- → 已更改" in lines
    assert not any("secret_hash" in line or "staff_member_id" in line for line in lines)
    assert _lines_zh(revoked) == ["已吊销", "吊销时间：- → 2026年12月5日 10:00（北京时间）"]
    assert "王导购" in _page(auditor, created)


def test_a_changes_choices_read_by_their_labels(auditor) -> None:
    event = audit_change(
        actor="system",
        action=AuditAction.CHANGE,
        object_type="frequency_rule",
        object_id=4,
        before={"on_hit": "skip", "is_active": True},
        after={"on_hit": "defer", "is_active": False},
    )
    assert _lines_zh(event) == [
        "启用：是 → 否",
        "达到上限时：跳过本次发送 → 顺延至窗口空出，超时则跳过",
    ]


def test_the_list_names_the_staff_members_of_the_page_in_one_query(auditor) -> None:
    def rebind(count: int) -> None:
        for number in range(count):
            before, after = StaffMemberFactory(name=f"导购{number}甲"), StaffMemberFactory()
            audit_change(
                actor="system",
                action=AuditAction.CHANGE,
                object_type="api_key",
                object_id=number,
                before={"staff_member_id": before.pk},
                after={"staff_member_id": after.pk},
            )

    rebind(1)
    auditor.get(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        page = auditor.get(CHANGELIST).content.decode()
    assert "绑定员工：导购0甲 → " in page
    rebind(5)
    with CaptureQueriesContext(connection) as many:
        page = auditor.get(CHANGELIST).content.decode()
    assert "绑定员工：导购4甲 → " in page
    assert len(many) == len(few)


def test_a_customers_id_finds_its_events_and_the_pages_that_showed_it(auditor) -> None:
    own = personal_data_view_record(actor="system", customer_ids=[77])
    listed = personal_data_view_record(actor="system", customer_ids=[12, 77, 300])
    other = personal_data_view_record(actor="system", customer_ids=[12, 300])
    assert own is not None and listed is not None and other is not None

    found = auditor.get(CHANGELIST, {"q": "77"}).context["cl"].result_list
    assert {event.pk for event in found} == {own.pk, listed.pk}
    assert list(auditor.get(CHANGELIST, {"q": "7"}).context["cl"].result_list) == []
    assert list(auditor.get(CHANGELIST, {"q": "张三"}).context["cl"].result_list) == []


def test_the_search_by_a_listed_customer_can_use_its_index() -> None:
    with connection.cursor() as cursor:
        # A few rows: make the choice visible. Only a bitmap scan is left, and only the GIN
        # index can serve the containment test with one (a plain scan of another index,
        # filtered, would otherwise do as well on a near-empty table).
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("SET LOCAL enable_indexonlyscan = off")
    plan = AuditEvent.objects.filter(detail__customer_ids__contains=[77]).order_by().explain()
    assert "audit_detail_customer_ids" in plan


def test_a_campaigns_change_reads_its_relations_moments_and_secret(auditor) -> None:
    event = audit_change(
        actor="system",
        action=AuditAction.CHANGE,
        object_type="campaign",
        object_id=5,
        before={
            "state": "draft",
            "variants": [{"name": "A", "weight": 1}],
            "include_segment_ids": [1],
            "scheduled_at": None,
            "webhook_secret": "old",
        },
        after={
            "state": "scheduled",
            "variants": [{"name": "A", "weight": 2}],
            "include_segment_ids": [1, 2],
            "scheduled_at": "2026-12-05T02:00:00Z",
            "webhook_secret": "new",
        },
        secret_fields=("webhook_secret",),
    )
    lines = _lines_zh(event)
    assert "定时发送时间：- → 2026年12月5日 10:00（北京时间）" in lines
    assert "人群：1 → 1、2" in lines
    assert "签名密钥：已更改 → 已更改" in lines
    assert '版本：{"name": "A", "weight": 1} → {"name": "A", "weight": 2}' in lines
    assert any(line.startswith("状态：草稿 → ") for line in lines)
    assert not any("scheduled" in line for line in lines)
    assert "签名密钥" in _page(auditor, event)
