"""A campaign launched from its own page in a real browser, in Chinese: the 启动 button, the
confirmation with the dry run's funnel (ECharts) and the WeCom tasks, then the campaign's
progress moving from 待员工确认 to 已完成 without a reload as the WeCom fake's staff member
confirms. The tasks a launch enqueues run in the test's thread, in order (no worker: the point
here is the page); the WeCom calls go to the fake over real HTTP."""

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from campaigns.models import Campaign, CampaignState, DeliveryStatus
from campaigns.services.campaigns import VariantInput
from campaigns.services.pipeline import campaigns_tick, wecom_results_poll_due
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import audience, make_campaign, report_case, wecom_customers
from tests.conftest import Enqueued
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    StaffMemberFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def unconfirmed_fake(fake: FakeWeCom) -> Iterator[FakeWeCom]:
    """The WeCom fake whose staff confirm a task only when the test says so."""
    fake.configure(confirmation_delay_seconds=None)
    with override_settings(WECOM_POLL_SECONDS=1):
        yield fake


def run_enqueued(enqueued: list[Enqueued]) -> None:
    """Run the tasks enqueued so far, and those they enqueue, in order, as a worker would."""
    while enqueued:
        task = enqueued.pop(0)
        current_app.tasks[task.name](*task.args, **task.kwargs)


def test_an_operator_launches_a_campaign_from_its_page_and_watches_it_send(
    operator_page: Page,
    screenshot: Callable[..., Path],
    unconfirmed_fake: FakeWeCom,
    enqueued: list[Enqueued],
) -> None:
    owner = StaffMemberFactory(name="林导购", wecom_userid="lin")
    campaign = make_campaign(
        audience(wecom_customers(3, owner=owner), name="老客"), name="春季上新"
    )
    page = operator_page

    page.goto(f"/admin/campaigns/campaign/{campaign.pk}/change/")
    screenshot(page, "draft")
    page.get_by_role("link", name="试运行").click()
    expect(page.locator("#campaign-funnel-chart svg")).to_be_visible()
    expect(page.locator(".campaign-to-send")).to_have_text("3")
    screenshot(page, "dry-run")
    page.go_back()
    page.get_by_role("link", name="启动", exact=True).click()

    # The confirmation: the funnel drawn by ECharts, its numbers, the tasks per staff member.
    expect(page.locator("h1")).to_have_text("启动")
    expect(page.locator("#campaign-funnel-chart svg")).to_be_visible()
    expect(page.locator(".campaign-funnel-table")).to_contain_text("目标人群")
    expect(page.locator(".campaign-to-send")).to_have_text("3")
    tasks = page.locator(".campaign-tasks tbody tr")
    expect(tasks).to_have_count(1)
    expect(tasks.first).to_contain_text("林导购")
    expect(page.locator(".campaign-examples")).to_contain_text("新品上市")
    screenshot(page, "confirmation")
    page.get_by_role("button", name="确定启动").click()

    expect(page.locator(".messagelist")).to_contain_text("已启动 1 个营销活动")
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.SENDING
    # What the worker would do: plan, reserve, create the WeCom task; then the tick finds
    # nothing left to dispatch and completes the campaign, while the task awaits its staff.
    run_enqueued(enqueued)
    campaigns_tick()
    assert Campaign.objects.get(pk=campaign.pk).state == CampaignState.COMPLETED
    assert set(campaign.deliveries.values_list("status", flat=True)) == {DeliveryStatus.SUBMITTED}

    page.evaluate("window.notReloaded = true")
    state = page.locator(".campaign-progress .campaign-state")
    expect(state).to_have_text("待员工确认")
    expect(page.locator('[data-progress="text.waiting"]')).to_have_text("3")
    screenshot(page, "awaiting-staff")

    for message in unconfirmed_fake.messages():
        unconfirmed_fake.confirm(message["msgid"])
    wecom_results_poll_due(now=timezone.now() + timedelta(seconds=5))

    expect(state).to_have_text("已完成")
    expect(page.locator('[data-progress="text.sent"]')).to_have_text("3")
    expect(page.locator('[data-progress="text.waiting"]')).to_have_text("0")
    assert page.evaluate("window.notReloaded") is True  # updated in place
    screenshot(page, "completed")

    page.get_by_role("link", name="效果报告").click()
    expect(page.locator(".campaign-examples")).to_contain_text("新品上市")
    expect(page.locator("#content-main")).to_contain_text("北京时间")
    screenshot(page, "report")


def test_the_report_draws_its_charts(operator_page: Page, screenshot: Callable[..., Path]) -> None:
    campaign = CampaignFactory(name="周年庆", variants=["A", "B"], state=CampaignState.COMPLETED)
    report_case(campaign, CustomerFactory.create_batch(9), at=timezone.now() - timedelta(days=1))

    operator_page.goto(f"/admin/campaigns/campaign/{campaign.pk}/report/")

    # ECharts drew both charts (SVG renderer): conversion rate per arm, lift with its interval.
    expect(operator_page.locator("[data-source=rate-chart-data] svg")).to_be_visible()
    expect(operator_page.locator("[data-source=lift-chart-data] svg")).to_be_visible()
    expect(operator_page.locator("[data-source=rate-chart-data]")).to_contain_text("对照组")
    expect(operator_page.locator("[data-source=lift-chart-data]")).to_contain_text("全部版本")
    screenshot(operator_page, "report")


def test_the_confirmation_warns_of_a_personalised_text_and_of_another_campaigns_holdout(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    lin, zhou = StaffMemberFactory(name="林导购"), StaffMemberFactory(name="周导购")
    customers = [*wecom_customers(2, owner=lin), *wecom_customers(1, owner=zhou)]
    anniversary = CampaignFactory(name="周年庆", state=CampaignState.COMPLETED)
    for customer in customers[:2]:
        DeliveryFactory(
            campaign=anniversary,
            customer=customer,
            is_holdout=True,
            status=DeliveryStatus.HELD_OUT,
            at=timezone.now() - timedelta(days=1),
        )
    campaign = make_campaign(
        audience(customers, name="老客"),
        name="春季上新",
        variants=[VariantInput(name="A", content="{{ display_name }}，春季新品上市")],
    )

    operator_page.goto(f"/admin/campaigns/campaign/{campaign.pk}/launch/")

    warnings = operator_page.locator(".campaign-warnings li")
    expect(warnings).to_have_count(2)
    expect(warnings.nth(0)).to_contain_text("「周年庆」的对照组")
    expect(warnings.nth(1)).to_contain_text("共 3 个任务")
    expect(warnings.nth(1).get_by_role("link", name="修改版本文案")).to_be_visible()
    expect(operator_page.locator(".campaign-tasks tbody tr")).to_have_count(2)
    expect(operator_page.locator(".campaign-examples")).to_contain_text("王小美（示例）")
    screenshot(operator_page, "warnings")


def test_the_confirmation_warns_of_launching_within_the_quiet_hours(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    now = timezone.now().astimezone(ZoneInfo("Asia/Shanghai"))
    campaign = make_campaign(
        audience(wecom_customers(2), name="老客"),
        name="早安问候",
        quiet_hours_start=(now - timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_hours_end=(now + timedelta(hours=2)).time().replace(second=0, microsecond=0),
    )

    operator_page.goto(f"/admin/campaigns/campaign/{campaign.pk}/launch/")

    warnings = operator_page.locator(".campaign-warnings li")
    expect(warnings).to_have_count(1)
    expect(warnings.nth(0)).to_contain_text("现在处于该活动的免打扰时段")
    expect(warnings.nth(0)).to_contain_text("北京时间")
    screenshot(operator_page, "quiet-hours")
