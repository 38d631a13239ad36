"""The segment builder in a real browser, in Chinese: an operator builds a segment by clicks and
choices alone (a nested group, a tag picked by name), sees its size and each condition's count
before saving, saves, and the saved rule is the one built; a rule written in the JSON view
comes back out of the tree unchanged; a wrong value is marked at its condition."""

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from segments.models import LifecycleState, Segment
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    CustomerTagFactory,
    SegmentFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)
# The preview answers an incomplete rule with 400 and its problems, which Chromium logs.
REFUSED_PREVIEW = r"status of 400 .*builder/preview/"

ADD_URL = "/admin/segments/segment/add/"


def brand() -> dict[str, Any]:
    """Sleeping and churned customers, some VIP, some women; active ones besides."""
    vip = TagFactory(group=TagGroupFactory(name="会员等级"), name="VIP")
    TagFactory(group=vip.group, name="普通会员")
    people = {}
    for name, state, gender, is_vip in [
        ("林小姐", LifecycleState.SLEEPING, "female", True),
        ("王先生", LifecycleState.SLEEPING, "male", True),
        ("赵女士", LifecycleState.CHURNED, "female", False),
        ("钱先生", LifecycleState.CHURNED, "male", False),
        ("孙小姐", LifecycleState.ACTIVE, "female", True),
    ]:
        customer = CustomerFactory(display_name=name, gender=gender)
        CustomerMetricsFactory(customer=customer, lifecycle_state=state)
        if is_vip:
            CustomerTagFactory(customer=customer, tag=vip)
        people[name] = customer
    return {"vip": vip, "people": people}


def condition(scope: Page | Locator, index: int) -> Locator:
    return scope.locator(".sb-leaf").nth(index)


def test_an_operator_builds_a_segment_by_pointing_and_sees_its_size_before_saving(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    data = brand()
    page = operator_page
    page.goto(ADD_URL)
    expect(page.locator("#segment-builder")).to_be_visible()
    expect(page.locator("#id_rule")).to_be_hidden()
    expect(page.locator(".sb-empty")).to_contain_text("还没有圈选条件")
    page.get_by_label("名称").fill("沉睡或流失的 VIP 及女性客户")

    # 生命周期状态 是其中之一 沉睡、流失
    page.locator(".sb-empty .sb-add-condition").click()
    first = condition(page, 0)
    first.locator(".sb-field").select_option(label="生命周期状态")
    first.locator(".sb-op").select_option(label="是其中之一")
    first.get_by_label("沉睡").check()
    first.get_by_label("流失").check()

    # A nested group: 满足任一 (标签 包含 会员等级 / VIP, 性别 是 女)
    root = page.locator(".sb-group").first
    root.locator(":scope > .sb-group-body > .sb-add .sb-add-group").click()
    nested = page.locator(".sb-group .sb-group").first
    nested.locator(".sb-mode").select_option(label="满足任一")
    tag_condition = condition(nested, 0)
    tag_condition.locator(".sb-field").select_option(label="标签")
    expect(tag_condition.locator(".sb-op")).to_have_value("0")  # 包含
    tag_condition.locator(".sb-picker-search").fill("VIP")
    tag_condition.get_by_role("button", name="会员等级 / VIP").click()
    expect(tag_condition.locator(".sb-chip")).to_have_text(re.compile("会员等级 / VIP"))
    nested.locator(":scope > .sb-group-body > .sb-add .sb-add-condition").click()
    gender_condition = condition(nested, 1)
    gender_condition.locator(".sb-field").select_option(label="性别")
    gender_condition.locator(".sb-value").select_option(label="女")

    # Sleeping or churned (4), of whom VIP or women: 林小姐, 王先生, 赵女士.
    expect(page.locator(".segment-builder-size-value")).to_have_text("3 人")
    counts = page.locator(".sb-count")
    expect(counts.nth(0)).to_have_text("单独满足此条件：4 人")
    expect(counts.nth(1)).to_have_text("单独满足此条件：4 人")
    sample = page.locator(".segment-builder-sample")
    expect(sample).to_contain_text("林小姐")
    expect(sample).to_contain_text("沉睡")
    expect(sample).not_to_contain_text("孙小姐")
    assert not Segment.objects.exists()
    screenshot(page, "built")

    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("沉睡或流失的 VIP 及女性客户")
    segment = Segment.objects.get()
    assert segment.rule == {
        "all": [
            {"field": "lifecycle_state", "op": "in", "value": ["sleeping", "churned"]},
            {
                "any": [
                    {"field": "tag", "op": "has", "value": data["vip"].pk},
                    {"field": "gender", "op": "eq", "value": "female"},
                ]
            },
        ]
    }

    # The saved segment opens in the builder with the tag's name, and the same size.
    page.goto(f"/admin/segments/segment/{segment.pk}/change/")
    expect(page.locator(".sb-picker .sb-chip")).to_have_text(re.compile("会员等级 / VIP"))
    expect(page.locator(".segment-builder-size-value")).to_have_text("3 人")
    expect(page.locator(".sb-count").nth(1)).to_have_text("单独满足此条件：4 人")
    screenshot(page, "saved")


ROUND_TRIP_RULE: dict[str, Any] = {
    "all": [
        {"not": {"field": "tag", "op": "has", "value": {"group": "会员等级", "name": "VIP"}}},
        {
            "any": [
                {
                    "field": "purchased",
                    "op": "gte",
                    "value": 2,
                    "params": {"category": ["面膜"], "within_days": 90},
                },
                {"field": "first_seen_at", "op": "after", "value": {"days_ago": 7}},
                {"field": "last_order_at", "op": "between", "value": ["2026-01-01", "2026-03-31"]},
                {"not": {"all": [{"field": "city", "op": "is_null", "value": True}]}},
            ]
        },
        {"field": "spend", "op": "gt", "value": 99.5},
        {"field": "consent.wecom", "op": "neq", "value": "opted_out"},
        {"field": "interacted", "op": "gte", "value": 1, "params": {"kind": "link_click"}},
        {"field": "group_joined", "op": "within_last_days", "value": 30},
        {"field": "first_order_at", "op": "gt", "value": "2026-02-01T08:00:00+08:00"},
        {"field": "owner", "op": "in", "value": ["LiNa"]},
        {"weird": "kept as it is"},
    ]
}


@pytest.mark.expected_browser_errors(REFUSED_PREVIEW)
def test_a_rule_from_the_json_view_round_trips_through_the_tree(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    brand()
    StaffMemberFactory(wecom_userid="LiNa", name="李娜")
    segment = SegmentFactory(name="手写规则", rule={"field": "gender", "op": "eq", "value": "male"})
    page = operator_page
    page.goto(f"/admin/segments/segment/{segment.pk}/change/")
    page.get_by_role("button", name="查看 JSON").click()
    rule_text = page.locator("#id_rule")
    expect(rule_text).to_be_visible()
    rule_text.fill(json.dumps(ROUND_TRIP_RULE, ensure_ascii=False))
    expect(page.locator(".sb-leaf")).to_have_count(11)
    # The owner is shown by name (looked up by the WeCom userid the rule holds).
    expect(page.locator('.sb-picker[data-kind="staff"] .sb-chip')).to_have_text(re.compile("李娜"))
    expect(page.locator(".sb-raw")).to_have_count(1)

    # Any change in the tree writes the whole rule back from the tree.
    root_mode = page.locator(".sb-mode").first
    root_mode.select_option(label="满足任一")
    root_mode = page.locator(".sb-mode").first
    root_mode.select_option(label="满足全部")
    assert json.loads(rule_text.input_value()) == ROUND_TRIP_RULE

    # The unknown node is refused by the server, and marked where it is.
    problem = page.locator(".sb-raw.sb-has-problem")
    expect(problem).to_be_visible()
    expect(problem.locator(".sb-problem-message")).to_contain_text("未知")
    screenshot(page, "round_trip")


@pytest.mark.expected_browser_errors(REFUSED_PREVIEW)
def test_a_missing_value_is_marked_at_its_condition_and_blocks_nothing_else(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    brand()
    page = operator_page
    page.goto(ADD_URL)
    page.locator(".sb-empty .sb-add-condition").click()
    condition(page, 0).locator(".sb-value").select_option(label="女")
    page.locator(".sb-add-condition").last.click()
    second = condition(page, 1)
    second.locator(".sb-field").select_option(label="累计消费金额")
    second.locator(".sb-number").fill("")

    expect(second).to_have_class(re.compile("sb-has-problem"))
    expect(second.locator(".sb-problem-message")).to_have_text("请在这里填写或选择一个值。")
    expect(condition(page, 0)).not_to_have_class(re.compile("sb-has-problem"))
    expect(page.locator(".segment-builder-status")).to_have_text(
        "圈选条件尚未填写完整，请查看标红的位置。"
    )
    screenshot(page, "problem")


def test_a_static_segment_has_no_conditions_to_build(operator_page: Page) -> None:
    page = operator_page
    page.goto(ADD_URL)
    page.locator(".sb-empty .sb-add-condition").click()
    page.get_by_label("名称").fill("门店导购名单")
    page.get_by_label("类型").select_option(label="静态（名单）")
    expect(page.locator("#segment-builder")).to_be_hidden()

    page.locator("input[name=_save]").click()
    expect(page.locator(".messagelist")).to_contain_text("门店导购名单")
    segment = Segment.objects.get()
    assert (segment.kind, segment.rule) == ("static", None)
