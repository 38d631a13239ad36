"""The audit trail in a real browser, in Chinese: the list reads actors by name, times in Beijing
time and each change as before -> after; an entry's page has nothing to save or delete."""

from collections.abc import Callable
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from core.models import AuditAction, AuditEvent
from core.services.audit import audit_change, personal_data_view_record
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_audit_trail_reads_in_chinese_and_offers_no_change(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    auditor = UserFactory(username="lisi", first_name="李四")
    change = audit_change(
        actor=f"user:{auditor.pk}",
        action=AuditAction.CHANGE,
        object_type="frequency_rule",
        object_id=3,
        before={"max_count": 3},
        after={"max_count": 5},
    )
    personal_data_view_record(actor="api_key:erp:ab12cd34ef56", customer_ids=[41, 42])

    operator_page.goto(reverse("admin:core_auditevent_changelist"))
    expect(operator_page.locator("#content h1")).to_contain_text("审计记录")
    table = operator_page.locator("#result_list")
    expect(table).to_contain_text("李四")
    expect(table).to_contain_text("API 密钥「erp」")
    expect(table).to_contain_text("最多发送次数：3 → 5")
    expect(table).to_contain_text("查看个人信息")
    expect(table).to_contain_text("生日、身份标识")  # the fields by their names
    expect(table).to_contain_text("客户：41、42")
    expect(table).to_contain_text("北京时间")
    expect(operator_page.locator("#changelist-filter")).to_contain_text("操作人")
    add_url = reverse("admin:core_auditevent_add")
    expect(operator_page.locator(f'a[href="{add_url}"]')).to_have_count(0)  # no 增加 anywhere
    expect(operator_page.locator("select[name=action]")).to_have_count(0)
    screenshot(operator_page, "list")

    operator_page.goto(reverse("admin:core_auditevent_change", args=[change.pk]))
    expect(operator_page.locator("#content h2")).to_have_text("修改 频控规则 #3")
    expect(operator_page.locator("input[name=_save]")).to_have_count(0)
    expect(operator_page.locator("a.deletelink")).to_have_count(0)
    screenshot(operator_page, "entry")
    assert AuditEvent.objects.count() == 2
