"""Pages whose words and times were English or zoneless, in a real browser, in Chinese: the
periodic tasks (django-celery-beat's pages, core.beat_admin) and a campaign's dry run with its
times in Beijing time; each page is screenshot under .local/screenshots/."""

import re
from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from playwright.sync_api import Page, expect

from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_periodic_tasks_read_in_chinese(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    # The schedule as the migrations write it (a transactional test before this one may have
    # flushed their rows).
    nightly_at, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name="每晚全量重算（RFM、生命周期、人群）",
        defaults={"task": "segments.recompute_full", "crontab": nightly_at},
    )
    operator_page.goto(reverse("admin:django_celery_beat_periodictask_changelist"))
    table = operator_page.locator("#result_list")
    expect(table).to_contain_text("每晚全量重算（RFM、生命周期、人群）")
    expect(table).to_contain_text("（北京时间）")
    expect(table).not_to_contain_text("(m/h/dM/MY/d)")
    screenshot(operator_page, "list")

    nightly = PeriodicTask.objects.get(name="每晚全量重算（RFM、生命周期、人群）")
    operator_page.goto(reverse("admin:django_celery_beat_periodictask_change", args=[nightly.pk]))
    expect(operator_page.locator("#content h2").first).to_have_text(nightly.name)
    expect(operator_page.locator("#content")).not_to_contain_text("Translation")
    screenshot(operator_page, "task")


def test_the_dry_run_shows_its_times_in_beijing_time(
    operator_page: Page, screenshot: Callable[..., Path]
) -> None:
    campaign = CampaignFactory(
        name="会员日", quiet_hours_start=time(0, 0), quiet_hours_end=time(23, 59)
    )
    operator_page.goto(reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk]))
    content = operator_page.locator("#content-main")
    expect(content).to_contain_text(re.compile(r"预演在 .+（北京时间） 启动此活动"))
    expect(content).to_contain_text(re.compile(r"将等到 .+（北京时间）.*再发送"))
    screenshot(operator_page)
