"""The segment portrait (人群画像) in a real browser, in Chinese: from the segments list to a
segment's portrait, every dimension's chart drawn (ECharts, no console error) next to its
table, over-indexed values marked; and the builder's JSON of a rule's portrait, fetched from
the page with the session and its CSRF token."""

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from segments.models import Segment
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerPredictionFactory,
    OrderFactory,
    SegmentFactory,
    SegmentMembershipFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)

DIMENSIONS = [
    "gender",
    "province",
    "city",
    "source_channel",
    "lifecycle_state",
    "rfm_tier",
    "spend_band",
    "value_band",
    "category",
]


def brand() -> Segment:
    """Sixty customers; the segment holds the twenty skincare buyers of Zhejiang, women
    mostly, with two men (a cell too small to show)."""
    segment = SegmentFactory(kind="static", name="浙江护肤高价值")
    places = [("浙江", "杭州"), ("浙江", "宁波"), ("广东", "广州"), ("上海", "上海")]
    channels = ["douyin", "xiaohongshu", "wecom", "miniprogram"]
    tiers = ["important_value", "general_develop", "important_retain", None]
    states = ["active", "new", "sleeping", "churned"]
    for n in range(60):
        in_segment = n < 20
        province, city = places[0 if in_segment and n % 2 else 1] if in_segment else places[n % 4]
        customer = CustomerFactory(
            gender="male" if n in (0, 1, 40, 41, 42, 43, 44, 45) else "female",
            province=province,
            city=city,
            source_channel=channels[n % 4] if n % 7 else "",
        )
        CustomerMetricsFactory(
            customer=customer,
            lifecycle_state="active" if in_segment else states[n % 4],
            rfm_tier="important_value" if in_segment else tiers[n % 4],
            lifetime_orders=n % 5,
            lifetime_net_spend=Decimal(1200 if in_segment else 80 * (n % 5)),
        )
        if n % 5:
            CustomerPredictionFactory(customer=customer, predicted_value=Decimal(50 * n))
            OrderFactory(
                customer=customer,
                items=[("SK-1", "护肤")] if in_segment else [("MU-1", "美妆"), ("FR-1", "香氛")],
            )
        if in_segment:
            SegmentMembershipFactory(segment=segment, customer=customer)
    return segment


def test_an_operator_reads_a_segment_s_portrait(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    segment = brand()

    operator_page.goto("/admin/segments/segment/")
    screenshot(operator_page, "list")
    operator_page.locator("#result_list tr", has_text=segment.name).get_by_role(
        "link", name="查看人群画像"
    ).click()

    expect(operator_page.locator("#content h1")).to_have_text("浙江护肤高价值的人群画像")
    expect(operator_page.locator(".portrait-figure-value").first).to_have_text("20")
    for name in DIMENSIONS:
        # ECharts drew each chart (SVG renderer), next to its table.
        expect(operator_page.locator(f"#portrait-{name} .portrait-chart svg")).to_be_visible()
        expect(operator_page.locator(f"#portrait-{name} table tbody tr").first).to_be_visible()
    gender = operator_page.locator("#portrait-gender")
    expect(gender.locator("h2")).to_have_text("性别")
    # 18 of 20 women against 52 of 60: TGI 104; 2 men: too few to show.
    expect(gender.locator("tr", has_text="女")).to_contain_text("90%")
    expect(gender.locator("tr", has_text="男")).to_contain_text("少于 5 人")
    # Every member bought skincare, a third of all customers did: TGI 300, highlighted.
    skincare = operator_page.locator("#portrait-category tr.portrait-high", has_text="护肤")
    expect(skincare).to_contain_text("300")
    expect(operator_page.locator("#portrait-lifecycle_state")).to_contain_text("活跃")
    screenshot(operator_page)

    # The builder's live portrait: a rule's, as JSON, with the session and its CSRF token.
    answer = operator_page.evaluate(
        """async () => {
            const token = document.cookie.match(/csrftoken=([^;]+)/);
            const response = await fetch("/admin/segments/segment/portrait/", {
                method: "POST",
                headers: {"Content-Type": "application/json",
                          "X-CSRFToken": token ? token[1] : ""},
                body: JSON.stringify({rule: {field: "city", op: "eq", value: "广州"}}),
            });
            return {status: response.status, body: await response.json()};
        }"""
    )
    assert answer["status"] == 200, answer
    assert answer["body"]["size"] == "10"
    assert [d["name"] for d in answer["body"]["dimensions"]] == DIMENSIONS


PORTRAIT_PATH = "/admin/segments/segment/portrait/"


def test_the_builder_draws_the_portrait_of_the_rule_being_built(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    brand()
    page = operator_page
    portraits: list[str] = []
    page.on(
        "request",
        lambda request: (
            portraits.append(request.post_data or "")
            if request.url.endswith(PORTRAIT_PATH)
            else None
        ),
    )
    page.goto("/admin/segments/segment/add/")
    section = page.locator("#segment-builder-portrait")
    toggle = section.get_by_role("button", name="查看人群画像")
    expect(toggle).to_be_visible()
    expect(section.locator(".builder-portrait-body")).to_be_hidden()

    page.locator(".segment-builder-json-toggle").click()
    page.locator("#id_rule").fill('{"field": "rfm_tier", "op": "eq", "value": "important_value"}')
    # The preview alone: the folded portrait is not asked for.
    expect(page.locator(".segment-builder-size-value")).to_have_text("30 人")
    assert portraits == []

    toggle.click()
    status = section.locator(".builder-portrait-status")
    expect(status).to_contain_text("30")
    for name in DIMENSIONS:
        expect(section.locator(f'.portrait-chart[data-dimension="{name}"] svg')).to_be_visible()
    expect(section.get_by_role("button", name="收起人群画像")).to_be_visible()
    assert len(portraits) == 1
    screenshot(page, "open")

    # A changed rule, previewed, redraws the open portrait once (waited for: on a loaded
    # machine the request may leave after the size is shown).
    with page.expect_request(lambda request: request.url.endswith(PORTRAIT_PATH)):
        page.locator("#id_rule").fill('{"field": "city", "op": "eq", "value": "广州"}')
    expect(page.locator(".segment-builder-size-value")).to_have_text("10 人")
    expect(status).to_contain_text("10")
    expect(section.locator('.portrait-chart[data-dimension="city"] svg')).to_be_visible()
    assert len(portraits) == 2
    assert "广州" in portraits[1]
    screenshot(page, "redrawn")

    # Folded again: later previews ask for nothing.
    section.get_by_role("button", name="收起人群画像").click()
    page.locator("#id_rule").fill('{"field": "city", "op": "eq", "value": "杭州"}')
    expect(page.locator(".sb-previewing")).to_have_count(0)
    page.wait_for_timeout(1500)
    assert len(portraits) == 2
