"""The overview (运营看板) right after the demo brand's load (`make run`), in a real browser:
the pinned demo segments, refreshed once, show as a dot each at today's size (a line of one
point would draw nothing), with no console error."""

from collections.abc import Callable
from datetime import date
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from devstack import demo

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_pinned_demo_segments_show_on_the_overview_at_first_look(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    as_of = date(2026, 6, 30)
    demo.generate(customers=400, seed=3, orders_per_customer=4, as_of=as_of, progress=False)
    call_command("recompute", "--as-of", as_of.isoformat(), "--no-progress", stdout=StringIO())
    call_command("load_demo_segments", "--if-empty", stdout=StringIO())

    operator_page.goto("/admin/?period=7")
    panel = operator_page.locator("#overview-pinned")
    for name in ("沉睡高消费客户", "近 30 天新客", "重要价值客户"):
        expect(panel.locator("table")).to_contain_text(name)
    expect(panel.locator("#overview-pinned-chart svg")).to_be_visible()
    series = operator_page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById("overview-pinned-chart"))
            .getOption().series.map((s) => ({name: s.name, dot: s.showSymbol,
                                             last: s.data[s.data.length - 1]}))"""
    )
    assert {s["name"] for s in series} == {"沉睡高消费客户", "近 30 天新客", "重要价值客户"}
    assert all(s["dot"] and s["last"] > 0 for s in series), series
    panel.scroll_into_view_if_needed()
    screenshot(operator_page)
