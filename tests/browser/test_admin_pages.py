"""The admin in a real browser, in Chinese: the login form, then the operator's daily pages (the
customers list, a customer's page, the segments, the campaigns) render their Chinese headings
and data with no console or page error; each page is screenshot under .local/screenshots/."""

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from segments.models import LifecycleState, RfmTier
from tests.browser.conftest import OPERATOR_PASSWORD
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
    TagFactory,
    TagGroupFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_operator_logs_in_through_the_chinese_login_form(
    page: Page, operator: User, screenshot: Callable[..., Path]
) -> None:
    page.goto("/admin/")

    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#site-name")).to_have_text("私域 CRM")
    screenshot(page, "login")
    page.get_by_label("用户名").fill(operator.username)
    page.get_by_label("密码").fill(OPERATOR_PASSWORD)
    page.get_by_role("button", name="登录").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text(
        re.compile(rf"欢迎，\s*{operator.username}")
    )
    expect(page.locator("#user-tools")).to_contain_text("注销")
    screenshot(page, "index")


def test_a_wrong_password_is_refused_in_chinese(page: Page, operator: User) -> None:
    page.goto("/admin/login/")
    page.get_by_label("用户名").fill(operator.username)
    page.get_by_label("密码").fill("not-the-password")
    page.get_by_role("button", name="登录").click()

    expect(page.locator(".errornote")).to_contain_text("请输入一个正确的")
    expect(page).to_have_url(re.compile(r"/admin/login/"))


@dataclass(frozen=True)
class ShownPage:
    """A page of the admin and what an operator must read on it."""

    url: str
    heading: str
    texts: tuple[str, ...]


def _customers_list() -> ShownPage:
    CustomerFactory(display_name="林晓雨")
    CustomerFactory(display_name="陈一鸣")
    return ShownPage("/admin/crm/customer/", "选择 客户", ("林晓雨", "陈一鸣"))


def _customer_page() -> ShownPage:
    customer = CustomerFactory(display_name="林晓雨")
    CustomerMetricsFactory(
        customer=customer,
        lifetime_orders=3,
        lifetime_net_spend=Decimal("689.00"),
        rfm_tier=RfmTier.IMPORTANT_VALUE,
        lifecycle_state=LifecycleState.ACTIVE,
    )
    CustomerTagFactory(
        customer=customer, tag=TagFactory(name="面膜", group=TagGroupFactory(name="兴趣偏好"))
    )
    GroupMembershipFactory(customer=customer, group=GroupFactory(name="上海老客群"))
    SegmentMembershipFactory(customer=customer, segment=SegmentFactory(name="面膜复购人群"))
    IdentityFactory(customer=customer, provider="wecom", namespace="ww_demo_corp")
    OrderFactory(customer=customer, source="miniprogram", external_id="SO20261111")
    return ShownPage(
        f"/admin/crm/customer/{customer.pk}/change/",
        "修改 客户",
        (
            "林晓雨",
            "重要价值",
            "活跃",
            "兴趣偏好/面膜",
            "最近 30 天的触达记录",
            "上海老客群",
            "面膜复购人群",
            "企业微信客户",
            "小程序 SO20261111",
        ),
    )


def _segments_list() -> ShownPage:
    segment = SegmentFactory(name="沉睡高价值客户")
    SegmentMembershipFactory(segment=segment)
    SegmentFactory(name="面膜复购人群")
    return ShownPage("/admin/segments/segment/", "选择 人群", ("沉睡高价值客户", "面膜复购人群"))


def _campaigns_list() -> ShownPage:
    CampaignFactory(name="双十一预热")
    return ShownPage(
        "/admin/campaigns/campaign/",
        "选择 营销活动",
        ("双十一预热", "企业微信客户消息", "草稿"),
    )


@pytest.mark.parametrize(
    "build",
    [_customers_list, _customer_page, _segments_list, _campaigns_list],
    ids=["customers", "customer", "segments", "campaigns"],
)
def test_the_operators_pages_render_in_chinese(
    operator_page: Page, build: Callable[[], ShownPage], screenshot: Callable[..., Path]
) -> None:
    shown = build()

    response = operator_page.goto(shown.url)

    assert response is not None and response.status == 200
    expect(operator_page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(operator_page.locator("#content h1")).to_contain_text(shown.heading)
    for text in shown.texts:
        expect(
            operator_page.locator("#content").get_by_text(text).filter(visible=True).first
        ).to_be_visible()
    screenshot(operator_page)
