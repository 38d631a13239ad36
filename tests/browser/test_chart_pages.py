"""The pages with charts beyond the overview, in a real browser, on the demo brand: a finished
campaign's report, the churn model's calibration and the behaviour clusters draw with ECharts,
with no console error; each page is screenshot under .local/screenshots/."""

from collections.abc import Callable
from datetime import date, datetime
from io import StringIO
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import Page, expect

from campaigns.models import Campaign
from devstack import demo
from devstack.demo_campaigns import campaigns_load
from segments.models import ModelFit, ModelName
from segments.services.predictions import models_fit

pytestmark = pytest.mark.django_db(transaction=True)

AS_OF = date(2026, 6, 30)
AT = datetime(2026, 6, 30, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _series(page: Page, selector: str) -> list[dict[str, object]]:
    """The series ECharts drew in the chart at `selector`: their type and whether any has an
    area (a filled line)."""
    return page.evaluate(
        """(selector) => echarts.getInstanceByDom(document.querySelector(selector))
            .getOption().series.map((s) => ({type: s.type, name: s.name || "",
                                              area: Boolean(s.areaStyle)}))""",
        selector,
    )


def test_report_calibration_and_clusters_draw_their_charts(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    demo.generate(customers=1500, seed=3, orders_per_customer=4, as_of=AS_OF, progress=False)
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=StringIO())
    call_command("load_demo_segments", stdout=StringIO())
    models_fit(trigger="test", as_of=AS_OF)
    with time_machine.travel(AT, tick=False):
        campaigns_load(at=AT)

    finished = Campaign.objects.get(name="沉睡高消费客户唤醒")
    operator_page.goto(reverse("admin:campaigns_campaign_report", args=[finished.pk]))
    expect(operator_page.locator("h1")).to_have_text("效果报告")
    for kind in ("rate", "lift"):
        expect(operator_page.locator(f'[data-chart="{kind}"] svg')).to_be_visible()
    # Both variants and the holdout as bars; the lift of the campaign and each variant.
    rate = operator_page.locator('[data-chart="rate"]')
    for name in ("A", "B", "对照组"):
        expect(rate).to_contain_text(name)
    assert [s["type"] for s in _series(operator_page, '[data-chart="lift"]')] == [
        "custom",
        "scatter",
    ]
    screenshot(operator_page, "report")

    churn = ModelFit.objects.get(name=ModelName.CHURN_RISK)
    operator_page.goto(reverse("admin:segments_modelfit_change", args=[churn.pk]))
    expect(operator_page.locator("#calibration-chart svg")).to_be_visible()
    series = _series(operator_page, "#calibration-chart")
    # The model, its recency baseline (a line, not a filled wedge) and the diagonal.
    assert [(s["type"], s["area"]) for s in series] == [("line", False)] * 3
    assert [s["name"] for s in series] == ["本模型", "仅最近购买", "完全校准"]
    screenshot(operator_page, "churn")

    clusters = ModelFit.objects.get(name=ModelName.BEHAVIOUR_CLUSTERS)
    operator_page.goto(reverse("admin:segments_modelfit_change", args=[clusters.pk]))
    expect(operator_page.locator("#cluster-chart svg")).to_be_visible()
    # The recorded JSON is folded away: closed, it shows only its summary.
    details = operator_page.locator("details", has_text="查看记录的特征和参数")
    expect(details).not_to_have_attribute("open", "")
    expect(details.locator("pre")).to_be_hidden()
    screenshot(operator_page, "clusters")
