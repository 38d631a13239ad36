"""The console's pages in a real browser, in Chinese: the overview's panels draw (ECharts, no
console error), a pinned segment's line leads to it, and a bulk action tags the customers an
operator selected."""

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.utils import timezone
from playwright.sync_api import Page, expect

from campaigns.models import CampaignState, Conversion, DeliveryStatus
from crm.models import CustomerTag
from segments.models import SegmentSizeSnapshot
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    CustomerMetricsFactory,
    DeliveryFactory,
    LifecycleTransitionFactory,
    OrderFactory,
    SegmentFactory,
    TagFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """The overview's panels are cached: each test reads its own data, not the last test's."""
    cache.clear()


def test_every_overview_panel_renders(operator_page: Page, screenshot: Callable[..., Path]) -> None:
    now = timezone.now()
    for index, (state, tier) in enumerate(
        [("active", "important_value"), ("active", "general_develop"), ("sleeping", None)]
    ):
        first_order = now - timedelta(days=40 * index + 35)
        metrics = CustomerMetricsFactory(
            lifecycle_state=state,
            rfm_tier=tier,
            net_spend_in_window=Decimal("398.00"),
            first_paid_at=first_order,
            customer__source_channel=["douyin", "xiaohongshu", "wecom"][index],
        )
        OrderFactory(customer=metrics.customer, paid_at=first_order)
        OrderFactory(customer=metrics.customer, paid_at=first_order + timedelta(days=20))
        LifecycleTransitionFactory(
            customer=metrics.customer, from_state="new", to_state=state, at=now
        )

    operator_page.goto("/admin/")

    expect(operator_page.locator("#overview-kpis h2")).to_have_text("核心指标")
    expect(operator_page.locator("#overview-lifecycle h2")).to_have_text("生命周期")
    # ECharts drew the lifecycle chart (SVG renderer): one bar per state present.
    chart = operator_page.locator("#overview-lifecycle-chart svg")
    expect(chart).to_be_visible()
    expect(operator_page.locator("#overview-lifecycle")).to_contain_text("沉睡")

    expect(operator_page.locator("#overview-lifecycle-flow h2")).to_have_text("生命周期流转")
    expect(operator_page.locator("#overview-lifecycle-flow-chart svg")).to_be_visible()
    expect(operator_page.locator("#overview-lifecycle-flow-chart")).to_contain_text("新客")
    expect(operator_page.locator("#overview-rfm h2")).to_have_text("RFM 分层")
    expect(operator_page.locator("#overview-rfm-chart svg")).to_be_visible()
    expect(operator_page.locator("#overview-rfm")).to_contain_text("重要价值客户")
    expect(operator_page.locator("#overview-retention h2")).to_have_text("留存")
    expect(operator_page.locator("#overview-retention-chart svg")).to_be_visible()
    expect(operator_page.locator("#overview-retention")).to_contain_text("小红书")
    # Computed on the first look (no nightly run yet), and dated.
    expect(operator_page.locator("#overview-retention .overview-computed")).to_contain_text(
        "北京时间"
    )
    screenshot(operator_page, "overview")

    # A flow of the matrix opens the customers who made that move.
    operator_page.locator("#overview-lifecycle-flow table a").first.click()
    expect(operator_page.locator("#changelist-filter")).to_contain_text("新客 → 活跃")
    expect(operator_page.locator("#result_list tbody tr")).to_have_count(2)
    screenshot(operator_page, "moved")


def test_an_operator_tags_the_selected_customers(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    chosen = CustomerFactory(display_name="林晓雨")
    CustomerFactory(display_name="陈一鸣")
    tag = TagFactory(name="高意向")

    operator_page.goto("/admin/crm/customer/")
    row = operator_page.locator("#result_list tr", has_text="林晓雨")
    row.locator("input.action-select").check()
    operator_page.locator("select[name=action]").select_option("tag_customers")
    operator_page.get_by_role("button", name="执行").click()

    expect(operator_page.locator("#content")).to_contain_text("对所选的 1 位客户：")
    operator_page.get_by_label("标签").select_option(str(tag.pk))
    screenshot(operator_page, "choice")
    operator_page.get_by_role("button", name="确认打标签").click()

    expect(operator_page.locator(".messagelist")).to_contain_text("已给 1 位客户打上标签")
    assert list(CustomerTag.objects.values_list("customer_id", "tag_id")) == [(chosen.pk, tag.pk)]
    screenshot(operator_page, "tagged")


def test_the_acquisition_segments_campaigns_and_pressure_panels_render(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    now = timezone.now()
    for index, channel in enumerate(["douyin", "douyin", "xiaohongshu", "wecom", "douyin"]):
        customer = CustomerFactory(
            source_channel=channel, first_seen_at=now - timedelta(days=index * 6)
        )
        if index % 2 == 0:
            OrderFactory(
                customer=customer, paid_at=now - timedelta(days=index * 6 - 1 if index else 0)
            )
    segment = SegmentFactory(name="沉睡高价值客户", pinned=True, member_count=120)
    for days_ago, size in [(20, 80), (12, 95), (3, 120)]:
        SegmentSizeSnapshot.objects.create(
            segment=segment, at=now - timedelta(days=days_ago), size=size, rule_version=1
        )
    campaign = CampaignFactory(
        name="春季召回",
        state=CampaignState.COMPLETED,
        launched_at=now - timedelta(days=5),
        finished_at=now - timedelta(days=4),
    )
    for index in range(12):
        held = index >= 8
        delivery = DeliveryFactory(
            campaign=campaign,
            is_holdout=held,
            status=DeliveryStatus.HELD_OUT if held else DeliveryStatus.SENT,
            at=now - timedelta(days=5, hours=index),
        )
        if index in (0, 1, 2, 8):
            order = OrderFactory(customer=delivery.customer, paid_at=now - timedelta(days=4))
            Conversion.objects.create(
                delivery=delivery,
                order=order,
                campaign=campaign,
                customer=delivery.customer,
                is_holdout=held,
                credit=Decimal(1),
                revenue=order.total_amount,
                converted_at=order.paid_at,
            )

    operator_page.goto("/admin/")

    for panel, title in [
        ("acquisition", "渠道获客"),
        ("pinned", "钉选人群"),
        ("campaigns", "营销活动"),
        ("pressure", "触达压力"),
    ]:
        expect(operator_page.locator(f"#overview-{panel} h2")).to_have_text(title)
    for chart in ["acquisition", "pinned", "campaigns", "pressure-weeks", "pressure-received"]:
        expect(operator_page.locator(f"#overview-{chart}-chart svg")).to_be_visible()
    expect(operator_page.locator("#overview-acquisition")).to_contain_text("抖音")
    expect(operator_page.locator("#overview-pinned")).to_contain_text("沉睡高价值客户")
    expect(operator_page.locator("#overview-campaigns")).to_contain_text("春季召回")
    expect(operator_page.locator("#overview-pressure")).to_contain_text("企业微信平台群发限制")
    screenshot(operator_page, "activity")

    operator_page.locator("#overview-pinned a", has_text="沉睡高价值客户").click()
    expect(operator_page).to_have_url(re.compile(rf"/admin/segments/segment/{segment.pk}/change/"))


def test_a_campaign_where_nobody_converted_shows_its_lift_without_an_interval(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    now = timezone.now()
    campaign = CampaignFactory(
        name="冷启动",
        state=CampaignState.COMPLETED,
        launched_at=now - timedelta(days=5),
        finished_at=now - timedelta(days=4),
    )
    for index in range(6):
        held = index >= 4
        DeliveryFactory(
            campaign=campaign,
            is_holdout=held,
            status=DeliveryStatus.HELD_OUT if held else DeliveryStatus.SENT,
            at=now - timedelta(days=5),
        )

    operator_page.goto("/admin/")

    panel = operator_page.locator("#overview-campaigns")
    expect(panel.locator("tbody tr", has_text="冷启动")).to_contain_text("0.00 个百分点")
    expect(panel.locator("tbody tr", has_text="冷启动")).not_to_contain_text("0.00 至")
    # The lift's dot is drawn, without whiskers (no page error from the missing interval).
    expect(operator_page.locator("#overview-campaigns-chart svg")).to_be_visible()
    screenshot(operator_page, "campaign-without-interval")
