"""The admin in zh-hans reads in the operators' words (docs: /work/shared/OPERATORS.md's
glossary): model names, column headers, captions, actors, periodic tasks and times."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.contrib.admin.utils import label_for_field
from django.contrib.auth.models import User
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django_celery_beat.models import PeriodicTask

from campaigns.models import ScheduleKind
from crm.models import Customer, Tag
from segments.models import LifecycleState, RfmPolicy, RfmTier
from tests.factories.campaigns import CampaignFactory
from tests.factories.crm import (
    ConsentFactory,
    CustomerFactory,
    CustomerMergeFactory,
    CustomerTagFactory,
    StaffMemberFactory,
)
from tests.factories.segments import CustomerMetricsFactory, RecomputeRunFactory

pytestmark = pytest.mark.django_db

PROJECT_APPS = {"core", "crm", "segments", "campaigns", "console"}
# Latin that belongs in a Chinese label: names of things operators use as such.
LATIN_WORDS = {
    "ID",
    "id",
    "RFM",
    "R",
    "F",
    "M",
    "SKU",
    "API",
    "TGI",
    "Webhook",
    "URL",
    "userid",
    "p",
}


def _latin_words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", text)) - LATIN_WORDS


@pytest.fixture
def chinese(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def _column_headers(page: str) -> list[str]:
    headers = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', page, flags=re.S)
    texts = [re.sub(r"<[^>]+>", " ", header) for header in headers]
    return [" ".join(text.split()) for text in texts if text.strip()]


def test_every_column_and_field_label_of_the_products_admin_is_chinese(admin_user) -> None:
    request = RequestFactory().get("/")
    request.user = admin_user
    english = []
    with translation.override("zh-hans"):
        for model, model_admin in admin.site._registry.items():
            if model._meta.app_label not in PROJECT_APPS:
                continue
            names = [*model_admin.get_list_display(request), *model_admin.get_fields(request)]
            form = model_admin.get_form(request)()
            for name in names:
                if not isinstance(name, str) or name == "action_checkbox":
                    continue
                # A form's field is labelled by the form (as the page renders it).
                if name in form.fields:
                    label = str(form[name].label)
                else:
                    label = str(label_for_field(name, model, model_admin))
                if _latin_words(label):
                    english.append(f"{model._meta.label}.{name}: {label}")
            for name in (str(model._meta.verbose_name), str(model._meta.verbose_name_plural)):
                if _latin_words(name):
                    english.append(f"{model._meta.label}: {name}")
    assert english == []


def test_the_index_names_models_as_operators_do(chinese: Client) -> None:
    page = chinese.get(reverse("admin:index")).content.decode()
    assert ">客户</a>" in page
    assert ">客户数</a>" not in page  # the model (a count such as 购买客户数 may show)
    assert ">权限组</a>" in page  # Django's auth groups
    assert ">社群</a>" in page  # the customers' group chats
    assert "在职" not in page
    assert ">定时任务</a>" in page  # django-celery-beat's periodic tasks
    assert "周期任务" not in page and "周期性任务" not in page


def test_headers_captions_and_actors_of_lists(chinese: Client, admin_user: User) -> None:
    admin_user.first_name = "张三"
    admin_user.save()
    StaffMemberFactory()
    ConsentFactory()
    CustomerMergeFactory(actor=f"user:{admin_user.pk}")
    RecomputeRunFactory(trigger="schedule")

    staff = chinese.get(reverse("admin:crm_staffmember_changelist")).content.decode()
    assert "启用" in _column_headers(staff)
    assert "在职" not in staff

    consents = chinese.get(reverse("admin:crm_consent_changelist")).content.decode()
    headers = _column_headers(consents)
    assert headers[-5:-2] == ["客户", "渠道", "状态"]  # after the app list's, before others
    assert [header for header in headers if _latin_words(header)] == []

    merges = chinese.get(reverse("admin:crm_customermerge_changelist")).content.decode()
    assert '<td class="field-actor_label">张三</td>' in merges
    assert f"user:{admin_user.pk}" not in merges

    runs = chinese.get(reverse("admin:segments_recomputerun_changelist")).content.decode()
    assert '<td class="field-trigger_label">定时任务</td>' in runs


def test_policies_read_as_named_versions_by_their_author(chinese: Client) -> None:
    policy = RfmPolicy.objects.get(version=1)  # the default, created by a migration
    page = chinese.get(reverse("admin:segments_rfmpolicy_change", args=[policy.pk])).content
    content = page.decode()
    assert "RFM 策略 v1" in content
    assert "系统" in content  # created_by "default"
    assert "RFM v1" not in content


def test_captions_use_the_display_labels() -> None:
    metrics = CustomerMetricsFactory(
        lifecycle_state=LifecycleState.SLEEPING, rfm_tier=RfmTier.IMPORTANT_VALUE
    )
    with translation.override("zh-hans"):
        assert str(metrics) == "沉睡 · 重要价值客户"
        assert str(Customer._meta.verbose_name_plural) == "客户"
    with translation.override("en"):
        assert str(metrics) == "Sleeping · Important value"


def test_periodic_tasks_are_named_in_chinese() -> None:
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {
        "每晚全量重算（RFM、生命周期、人群）",
        "每分钟重算新数据涉及的客户",
        "每周训练预测模型",
        "每晚预测模型评分",
        "营销活动：启动、预留名额、恢复与结束",
        "营销活动：拉取企业微信群发结果",
        "营销活动：每晚补算转化归因",
    } <= names
    assert not [name for name in names if _latin_words(name) - {"RFM"}]


def test_a_planned_time_names_its_zone(chinese: Client) -> None:
    CampaignFactory(
        schedule_kind=ScheduleKind.AT, scheduled_at=datetime(2026, 1, 1, 17, 30, tzinfo=UTC)
    )
    page = chinese.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "2026年1月2日 01:30（北京时间）" in page
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(User.objects.get(is_superuser=True))
    page = english.get(reverse("admin:campaigns_campaign_changelist")).content.decode()
    assert "Jan. 2, 2026, 1:30 a.m. (Beijing time)" in page


def test_times_are_shown_in_business_time(chinese: Client) -> None:
    customer = CustomerFactory()
    customer.created_at = datetime(2026, 1, 1, 17, 30, tzinfo=UTC)  # 01:30 next day in Shanghai
    customer.save(update_fields=["created_at"])
    tag = CustomerTagFactory(customer=customer).tag
    Tag.objects.filter(pk=tag.pk).update(created_at=datetime(2026, 1, 1, 17, 30, tzinfo=UTC))
    page = chinese.get(reverse("admin:crm_tag_changelist")).content.decode()
    assert "2026年1月2日 01:30" in page
    assert "17:30" not in page
