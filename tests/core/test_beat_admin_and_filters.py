"""What the admin's lists and pages say in zh-hans beyond labels: django-celery-beat's pages
(core.beat_admin), the trigger filters of runs and fits (core.admin.actor_list_filter), and the
dry run's times with their zone."""

from datetime import UTC, datetime, time

import pytest
import time_machine
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tests.factories.campaigns import CampaignFactory
from tests.factories.segments import RecomputeRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def test_periodic_tasks_and_crontabs_read_in_chinese(chinese: Client) -> None:
    crontab = CrontabSchedule.objects.create(minute="30", hour="2", day_of_week="0")
    PeriodicTask.objects.create(name="每周日凌晨任务", task="segments.recompute", crontab=crontab)

    tasks = chinese.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    content = tasks.content.decode()
    assert tasks.status_code == 200
    assert "执行时间" in content
    assert "在 02:30, 仅在 周日（北京时间）" in content
    # The task filter names each task by the periodic tasks that run it, not by its code.
    assert "以 任务" in content
    assert '?task=segments.recompute">每周日凌晨任务</a>' in content
    assert ">segments.recompute<" not in content
    assert "执行计划" not in content and "昵称" not in content
    # The package's own name of a task ("name: 30 2 * * 0 (m/h/dM/MY/d) Asia/Shanghai") stays
    # in the row checkbox's label for screen readers; no column shows it.
    assert "(m/h/dM/MY/d)</td>" not in content and "Asia/Shanghai</td>" not in content
    for english in ("Task Name", ">Scheduler<", ">Interval Schedule<"):
        assert english not in content

    task = PeriodicTask.objects.get(name="每周日凌晨任务")
    form = chinese.get(reverse("admin:django_celery_beat_periodictask_change", args=[task.pk]))
    content = form.content.decode()
    assert form.status_code == 200
    for word in (
        "任务名",
        "执行计划",
        "参数",
        "执行选项",
        "执行时间说明",
        "取消勾选即停用此定时任务",
    ):
        assert word in content
    for english in ("Arguments", "Execution Options", "Translation:", "(m/h/dM/MY/d)"):
        assert english not in content
    assert "<h2>每周日凌晨任务</h2>" in content

    crontabs = chinese.get(reverse("admin:django_celery_beat_crontabschedule_changelist"))
    content = crontabs.content.decode()
    assert "Crontab 表达式" in content and "30 2 * * 0" in content
    assert "Human readable" not in content
    schedule = chinese.get(
        reverse("admin:django_celery_beat_crontabschedule_change", args=[crontab.pk])
    )
    assert "使用此执行计划的定时任务" in schedule.content.decode()


def test_trigger_filters_name_who_triggered(chinese: Client, admin_user: User) -> None:
    admin_user.first_name = "张三"
    admin_user.save()
    RecomputeRunFactory(trigger="schedule")
    RecomputeRunFactory(trigger=f"user:{admin_user.pk}")
    RecomputeRunFactory(trigger=f"admin:user:{admin_user.pk}")
    url = reverse("admin:segments_recomputerun_changelist")

    page = chinese.get(url)
    choices = [
        choice["display"]
        for choice in page.context["cl"].filter_specs[2].choices(page.context["cl"])
    ]
    assert choices == ["全部", "定时任务", "张三"]  # one choice per person, not per code
    assert f"user:{admin_user.pk}" not in page.content.decode()

    by_person = chinese.get(url, {"trigger": "张三"})
    assert by_person.context["cl"].result_count == 2
    by_schedule = chinese.get(url, {"trigger": "定时任务"})
    assert by_schedule.context["cl"].result_count == 1

    fits = chinese.get(reverse("admin:segments_modelfit_changelist"))
    assert fits.status_code == 200


def test_the_dry_run_names_the_zone_of_its_times(chinese: Client) -> None:
    campaign = CampaignFactory(quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0))
    night = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 22:00 in Shanghai, within quiet hours
    with time_machine.travel(night, tick=False):
        page = chinese.get(reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk]))
    content = page.content.decode()
    assert page.status_code == 200
    assert "2026年3月2日 22:00（北京时间）" in content
    assert "2026年3月3日 09:00（北京时间）" in content
