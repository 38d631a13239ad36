"""The overview (运营看板) on the admin's first page: its period, the KPI and lifecycle panels'
figures on hand-built data, the numbers as Chinese readers write them, and the page as an
operator and a superuser see it, in a number of queries that does not grow with the data."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation

from console import formatting
from console.selectors import PeriodFigures, overview_kpis, overview_period
from crm.models import OrderStatus
from segments.models import LifecycleState
from segments.services.retention import retention_recompute
from tests.factories import CustomerFactory, CustomerMetricsFactory, OrderFactory, UserFactory
from tests.factories.users import seeing_every_customer
from tests.support import client_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=SHANGHAI)


def at(day: int, hour: int = 12, minute: int = 0) -> datetime:
    """An instant of March 2026 in business time."""
    return datetime(2026, 3, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def empty_cache(db: None) -> None:
    cache.clear()


def test_a_period_is_its_business_days_up_to_now_against_the_same_span_before() -> None:
    period = overview_period(days=7, now=NOW)
    assert period.start == datetime(2026, 3, 9, 0, 0, tzinfo=SHANGHAI)
    assert period.end == NOW
    assert period.previous_start == datetime(2026, 3, 2, 0, 0, tzinfo=SHANGHAI)
    assert period.previous_end == datetime(2026, 3, 8, 10, 0, tzinfo=SHANGHAI)
    assert period.business_day.isoformat() == "2026-03-15"


@pytest.mark.django_db
def test_kpis_count_customers_buyers_and_net_revenue_of_both_periods() -> None:
    # Period: 9 March 00:00 to 15 March 10:00; previous: 2 March 00:00 to 8 March 10:00.
    old = CustomerFactory(first_seen_at=at(1, 0) - timedelta(days=60))
    new = CustomerFactory(first_seen_at=at(10))
    previous_new = CustomerFactory(first_seen_at=at(3))
    in_the_gap = CustomerFactory(first_seen_at=at(8, 12))  # after the previous period's end
    CustomerFactory(first_seen_at=at(15, 11))  # after now: counted nowhere

    OrderFactory(customer=old, paid_at=at(9, 0), total_amount=Decimal("100.00"))  # at the start
    OrderFactory(
        customer=old,
        paid_at=at(12),
        status=OrderStatus.PARTIALLY_REFUNDED,
        total_amount=Decimal("200.00"),
        refunded_amount=Decimal("50.00"),
    )
    OrderFactory(customer=new, paid_at=at(14), total_amount=Decimal("300.00"))
    OrderFactory(customer=new, paid_at=at(14), status=OrderStatus.REFUNDED, total_amount=500)
    OrderFactory(customer=new, paid_at=at(13), status=OrderStatus.CANCELLED, total_amount=700)
    OrderFactory(customer=previous_new, paid_at=at(3), total_amount=Decimal("80.00"))
    OrderFactory(customer=previous_new, paid_at=at(5), total_amount=Decimal("120.00"))
    OrderFactory(customer=previous_new, paid_at=at(8, 11), total_amount=999)  # in the gap
    OrderFactory(customer=in_the_gap, paid_at=at(15, 10), total_amount=888)  # at now: after
    OrderFactory(customer=in_the_gap, paid_at=at(8, 9, 59), total_amount=Decimal("60.00"))

    kpis = overview_kpis(period=overview_period(days=7, now=NOW))

    assert kpis.current == PeriodFigures(
        customers=4,
        new_customers=1,
        buyers=2,
        repeat_buyers=1,
        orders=3,
        revenue=Decimal("550.00"),
    )
    assert kpis.previous == PeriodFigures(
        customers=2,
        new_customers=1,
        buyers=2,
        repeat_buyers=1,
        orders=3,
        revenue=Decimal("260.00"),
    )
    assert kpis.current.repeat_purchase_rate == 0.5
    assert kpis.current.average_order_value == Decimal("183.33")
    assert kpis.previous.average_order_value == Decimal("86.67")


@pytest.mark.django_db
def test_kpis_of_periods_without_orders_are_zero_and_their_rates_empty() -> None:
    kpis = overview_kpis(period=overview_period(days=30, now=NOW))
    empty = PeriodFigures(
        customers=0, new_customers=0, buyers=0, repeat_buyers=0, orders=0, revenue=Decimal(0)
    )
    assert kpis.current == empty
    assert kpis.previous == empty
    assert kpis.current.repeat_purchase_rate is None
    assert kpis.current.average_order_value is None


def test_counts_and_money_read_in_wan_and_yi_in_chinese_and_grouped_otherwise() -> None:
    with translation.override("zh-hans"):
        assert formatting.format_count(9_999) == "9,999"
        assert formatting.format_count(12_345) == "1.23万"
        assert formatting.format_count(20_000) == "2万"
        assert formatting.format_count(123_456_789) == "1.23亿"
        assert formatting.format_money(Decimal("216789.00")) == "¥21.68万"
        assert formatting.format_money(Decimal("281.175")) == "¥281.18"
        assert formatting.format_points_change(0.463, 0.333) == "+13 个百分点"
        assert formatting.zone_label() == "北京时间"
    with translation.override("en"):
        assert formatting.format_count(12_345) == "12,345"
        assert formatting.format_money(Decimal("216789")) == "¥216,789.00"
        assert formatting.format_points_change(0.25, 0.3) == "-5 pp"
    assert formatting.format_rate(0.46345) == "46.3%"
    assert formatting.format_relative_change(2000, 1851) == "+8%"
    assert formatting.format_relative_change(Decimal("281.18"), Decimal("312.70")) == "-10.1%"
    assert formatting.format_relative_change(5, 0) is None


def _brand(customers: int) -> None:
    """`customers` customers seen and paying an hour ago (two orders each), in two states."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for index in range(customers):
        customer = CustomerFactory(first_seen_at=an_hour_ago)
        OrderFactory(customer=customer, paid_at=an_hour_ago, total_amount=Decimal("150.00"))
        OrderFactory(customer=customer, paid_at=an_hour_ago, total_amount=Decimal("50.00"))
        state = LifecycleState.ACTIVE if index % 3 else LifecycleState.SLEEPING
        CustomerMetricsFactory(customer=customer, lifecycle_state=state)


def _operator() -> object:
    return UserFactory(
        permissions=seeing_every_customer(
            Permission.objects.filter(
                codename__in=["view_customer", "view_order", "view_customermetrics"]
            )
        )
    )


@pytest.mark.django_db
def test_an_operator_sees_the_overview_above_the_models_they_may_view() -> None:
    _brand(3)
    client = client_of(_operator())
    page = client.get("/admin/")
    assert page.status_code == 200
    overview = page.context["overview"]
    assert overview["days"] == 30
    figures = {card.label: (card.value, card.change) for card in overview["kpis"]["cards"]}
    assert figures == {
        "Customers": ("3", None),
        "New customers": ("3", None),
        "Buyers": ("3", None),
        "Repeat-purchase rate": ("100%", None),
        "Revenue": ("¥600.00", None),
        "Average order value": ("¥100.00", None),
    }
    states = {state["label"]: state["count"] for state in overview["lifecycle"]["states"]}
    assert states == {
        "Prospect": "0",
        "New": "0",
        "Active": "2",
        "Sleeping": "1",
        "Churned": "0",
        "Reactivated": "0",
    }
    assert overview["lifecycle"]["chart"]["counts"] == [0, 0, 2, 1, 0, 0]
    content = page.content.decode()
    assert content.index('id="overview-kpis"') < content.index('id="content-main"')
    assert 'href="/admin/crm/customer/?metrics__lifecycle_state__exact=sleeping"' in content
    assert 'id="overview-lifecycle-data"' in content
    assert "/static/core/vendor/echarts/echarts.min.js" in content
    assert 'href="/admin/crm/customer/"' in content  # the list of models stays

    sleeping = client.get(overview["lifecycle"]["states"][3]["url"])
    assert sleeping.status_code == 200
    assert [c.metrics.lifecycle_state for c in sleeping.context["cl"].result_list] == ["sleeping"]


@pytest.mark.django_db
def test_the_overview_reads_chinese_with_the_definition_of_each_figure() -> None:
    _brand(1)
    client = client_of(_operator())
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    content = client.get("/admin/?period=7").content.decode()
    for words in (
        "运营看板",
        "近7天",
        "客户总数",
        "复购率",
        "统计周期内的购买客户中，支付了两笔及以上订单的客户占比。",
        "客单价",
        "¥200.00",
        "北京时间",
    ):
        assert words in content


@pytest.mark.django_db
def test_the_period_is_chosen_among_7_30_and_90_days() -> None:
    client = client_of(_operator())
    assert client.get("/admin/?period=90").context["overview"]["days"] == 90
    assert client.get("/admin/?period=13").context["overview"]["days"] == 30


@pytest.mark.django_db
def test_a_panel_needs_the_view_permissions_of_what_it_counts() -> None:
    _brand(1)
    orders_only = UserFactory(
        permissions=seeing_every_customer(
            Permission.objects.filter(codename__in=["view_customer", "view_order"])
        )
    )
    overview = client_of(orders_only).get("/admin/").context["overview"]
    assert "kpis" in overview
    assert "lifecycle" not in overview

    nothing = client_of(UserFactory()).get("/admin/")
    assert nothing.status_code == 200
    assert "kpis" not in nothing.context["overview"]
    assert 'id="overview-kpis"' not in nothing.content.decode()
    assert "echarts" not in nothing.content.decode()


@pytest.mark.django_db
def test_a_superuser_sees_every_panel(admin_client_en: object) -> None:
    _brand(2)
    page = admin_client_en.get("/admin/")  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert {"kpis", "lifecycle"} <= set(page.context["overview"])


@pytest.mark.django_db
def test_the_page_s_queries_do_not_grow_with_the_data_and_its_figures_are_cached() -> None:
    client = client_of(_operator())

    def panel_queries(queries: CaptureQueriesContext) -> list[str]:
        return [
            query["sql"]
            for query in queries.captured_queries
            if "crm_order" in query["sql"] or "segments_customermetrics" in query["sql"]
        ]

    def first_visit() -> CaptureQueriesContext:
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/").status_code == 200
        return queries

    _brand(1)
    retention_recompute()  # the nightly run's
    few = first_visit()
    _brand(20)
    retention_recompute()
    many = first_visit()
    assert len(few) == len(many)
    # One per panel: key figures, lifecycle, RFM tiers, acquisition (retention reads its
    # pre-aggregate).
    assert len(panel_queries(many)) == 4

    with CaptureQueriesContext(connection) as cached:
        page = client.get("/admin/")
    assert panel_queries(cached) == []
    # Each panel's cache read remains, its computation and cache write do not; retention's
    # two reads of its pre-aggregate remain. (The acquisition panel's is four statements: its
    # query in a savepoint, JIT off.)
    assert len(cached) == len(many) - 2 * 4 - 3
    assert page.context["overview"]["kpis"]["cards"][0].value == "21"
