"""The customer page's sections from the console: the latest interactions and the campaign
history (version, state, sent time, control group, conversion), each one bounded query."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from campaigns.models import Conversion, DeliveryStatus
from console.customer_sections import CAMPAIGN_HISTORY_ROWS, INTERACTION_ROWS
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    InteractionFactory,
    OrderFactory,
    UserFactory,
)

MOMENT = datetime(2026, 11, 3, 16, 20, tzinfo=UTC)  # 2026-11-04 00:20 in Beijing


@pytest.fixture
def chinese_admin() -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    client.force_login(UserFactory(is_superuser=True))
    return client


def _section(page: str, title: str) -> str:
    """The HTML of the section of the change form titled `title`, up to the next one."""
    start = page.index(f">{title}<")
    end = page.find("<fieldset", start)
    return page[start : end if end != -1 else None]


def _rows(section: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", section, flags=re.S)
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd]>(.*?)</t[hd]>", row)]
        for row in rows
    ]


@pytest.mark.django_db
def test_the_customer_page_lists_the_latest_interactions_in_chinese(chinese_admin) -> None:
    customer = CustomerFactory()
    InteractionFactory(customer=customer, kind="coupon_claim", occurred_at=MOMENT)
    InteractionFactory(
        customer=customer, kind="live_stream_view", occurred_at=MOMENT + timedelta(hours=1)
    )
    InteractionFactory(occurred_at=MOMENT)  # another customer's

    page = chinese_admin.get(reverse("admin:crm_customer_change", args=[customer.pk]))

    section = _section(page.content.decode(), f"互动记录：最近 {INTERACTION_ROWS} 条")
    assert _rows(section) == [
        ["发生时间（北京时间）", "类型"],
        ["2026-11-04 01:20", "直播观看"],
        ["2026-11-04 00:20", "领取优惠券"],
    ]
    every = f"{reverse('admin:crm_interaction_changelist')}?customer__id__exact={customer.pk}"
    assert every in section
    assert chinese_admin.get(every).context["cl"].result_count == 2


@pytest.mark.django_db
def test_the_customer_page_shows_its_campaign_history(chinese_admin) -> None:
    customer = CustomerFactory()
    converted = DeliveryFactory(customer=customer, campaign=CampaignFactory(name="双十一预热"))
    converted.variant = converted.campaign.variants.get()
    converted.sent_at = MOMENT
    converted.planned_at = MOMENT
    converted.save()
    order = OrderFactory(customer=customer, total_amount=Decimal("199.00"))
    Conversion.objects.create(
        delivery=converted,
        order=order,
        campaign=converted.campaign,
        customer=customer,
        credit=Decimal("1"),
        revenue=Decimal("199.00"),
        converted_at=MOMENT + timedelta(days=1),
    )
    held_out = DeliveryFactory(
        customer=customer,
        campaign=CampaignFactory(name="沉睡召回"),
        status=DeliveryStatus.HELD_OUT,
        is_holdout=True,
        planned_at=MOMENT + timedelta(days=2),
    )
    DeliveryFactory(campaign=converted.campaign)  # another customer's

    page = chinese_admin.get(reverse("admin:crm_customer_change", args=[customer.pk]))

    section = _section(page.content.decode(), f"营销活动记录：最近 {CAMPAIGN_HISTORY_ROWS} 条")
    assert _rows(section) == [
        ["营销活动", "版本", "状态", "发送时间（北京时间）", "对照组", "转化"],
        ["沉睡召回", "-", held_out.get_status_display(), "-", "是", "-"],
        ["双十一预热", "A", "已发送", "2026-11-04 00:20", "-", "已转化（¥199.00）"],
    ]
    campaign_url = reverse("admin:campaigns_campaign_change", args=[held_out.campaign_id])
    assert f'href="{campaign_url}"' in section


@pytest.mark.django_db
def test_the_sections_cost_the_same_queries_however_long_the_history(chinese_admin) -> None:
    customer = CustomerFactory()
    url = reverse("admin:crm_customer_change", args=[customer.pk])

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert chinese_admin.get(url).status_code == 200
        return len(queries)

    InteractionFactory(customer=customer)
    DeliveryFactory(customer=customer)
    few = page_queries()
    InteractionFactory.create_batch(INTERACTION_ROWS + 5, customer=customer)
    for campaign in CampaignFactory.create_batch(8):
        DeliveryFactory(customer=customer, campaign=campaign)

    assert page_queries() == few
    page = chinese_admin.get(url).content.decode()
    interactions = _section(page, f"互动记录：最近 {INTERACTION_ROWS} 条")
    assert len(_rows(interactions)) == INTERACTION_ROWS + 1  # bounded: the header and N rows
