"""What a Chinese-speaking operator reads on the admin pages an operator's tryout found raw
codes on: the customer page's sections, the source and channel columns, the export records,
the staff list and the deliveries."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from campaigns.models import Delivery
from console.models import CustomerExport, ExportFormat
from segments.models import LifecycleState, RfmTier
from tests.factories.campaigns import DeliveryFactory
from tests.factories.crm import (
    ConsentFactory,
    CustomerFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    OrderFactory,
    StaffMemberFactory,
    TagFactory,
)
from tests.factories.segments import (
    CustomerMetricsFactory,
    SegmentFactory,
    SegmentMembershipFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def chinese(admin_user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(admin_user)
    return client


def _texts(page: str, pattern: str) -> list[str]:
    found = re.findall(pattern, page, flags=re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", text).split()) for text in found]


def _column(page: str, name: str) -> list[str]:
    return _texts(page, rf'<td class="field-{name}[^"]*">(.*?)</td>')


def test_the_customer_pages_sections_are_labelled_by_what_they_hold(chinese: Client) -> None:
    customer = CustomerFactory()
    CustomerTagFactory(customer=customer, tag=TagFactory(name="高净值"))
    GroupMembershipFactory(customer=customer, group=GroupFactory(name="上海老客群"))
    SegmentMembershipFactory(customer=customer, segment=SegmentFactory(name="双十一召回"))
    CustomerMetricsFactory(
        customer=customer, lifecycle_state=LifecycleState.ACTIVE, rfm_tier=RfmTier.IMPORTANT_VALUE
    )
    IdentityFactory(customer=customer, provider="wecom", namespace="ww_demo_corp")
    IdentityFactory(customer=customer, provider="unionid")

    page = chinese.get(reverse("admin:crm_customer_change", args=[customer.pk])).content
    text = page.decode()

    originals = _texts(text, r'<td class="original">\s*<p>(.*?)</p>')
    assert {"高净值", "上海老客群", "双十一召回"} <= set(originals)
    assert not [line for line in originals if line.startswith("#")]
    assert not [line for line in originals if re.fullmatch(r"\d+:\d+", line)]
    # Read-only sections hide that line altogether: their columns already say it.
    assert "core/readonly_inline.css" in text
    assert text.count('class="module readonly-inline"') >= 3
    providers = _column(text, "provider")
    assert sorted(providers) == ["企业微信客户", "微信用户（开放平台）"]
    assert "ww_demo_corp" not in text
    assert "external_userid" not in text and "unionid" not in text


def test_sources_and_channels_read_as_their_chinese_names(chinese: Client) -> None:
    customer = CustomerFactory()
    OrderFactory(customer=customer, source="miniprogram", channel="miniprogram")
    OrderFactory(customer=customer, source="xhs_shop", channel="xiaohongshu")
    OrderFactory(customer=customer, source="kuaishou_shop", channel="")
    OrderFactory(customer=customer, source="erp_custom", channel="")
    InteractionFactory(customer=customer, source="douyin")
    ConsentFactory(customer=customer, source="wecom")

    orders = chinese.get(reverse("admin:crm_order_changelist")).content.decode()
    assert sorted(_column(orders, "source_name")) == sorted(
        ["小程序", "小红书店铺", "快手小店", "erp_custom"]
    )
    assert sorted(_column(orders, "channel_name")) == ["-", "-", "小程序", "小红书"]
    filters = _texts(orders, r'<li[^>]*>\s*<a href="\?source=[^"]*"[^>]*>(.*?)</a>')
    assert {"小程序", "小红书店铺", "快手小店", "erp_custom"} <= set(filters)
    assert "xhs_shop" not in _texts(orders, r"<a[^>]*>(.*?)</a>")

    interactions = chinese.get(reverse("admin:crm_interaction_changelist")).content.decode()
    assert _column(interactions, "source_name") == ["抖音"]
    consents = chinese.get(reverse("admin:crm_consent_changelist")).content.decode()
    assert _column(consents, "source_name") == ["企业微信"]


def test_an_export_record_is_titled_by_who_exported_when(chinese: Client) -> None:
    operator = User.objects.create_user("zhangsan", first_name="张三")
    record = CustomerExport.objects.create(
        actor=f"user:{operator.pk}",
        exported_at=datetime(2026, 12, 5, 16, 13, tzinfo=UTC),
        row_count=3,
        file_format=ExportFormat.CSV,
        is_unmasked=False,
    )
    url = reverse("admin:console_customerexport_change", args=[record.pk])
    page = chinese.get(url).content.decode()
    title = _texts(page, r"<h2>(.*?)</h2>")
    assert "张三 于 2026年12月6日 00:13（北京时间） 导出" in title


def test_the_staff_list_says_wecom_account(chinese: Client) -> None:
    StaffMemberFactory()
    page = chinese.get(reverse("admin:crm_staffmember_changelist")).content.decode()
    assert "企业微信账号" in page
    assert "userid" not in page.lower().replace("wecom_userid", "")


def test_deliveries_name_their_customer_and_number_steps_from_one(
    chinese: Client, django_assert_max_num_queries
) -> None:
    named = CustomerFactory(display_name="李四")
    DeliveryFactory(customer=named)
    for _ in range(5):
        DeliveryFactory()
    url = reverse("admin:campaigns_delivery_changelist")
    chinese.get(url)  # warm the session and the content types
    with django_assert_max_num_queries(12):
        page = chinese.get(url).content.decode()
    customers = _column(page, "customer_link")
    assert "李四" in customers
    assert not [name for name in customers if name.isdigit()]
    assert set(_column(page, "step_number")) == {"第 1 步"}
    assert Delivery.objects.count() == 6
