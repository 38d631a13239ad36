"""The overview's lifecycle flow, RFM tiers and retention panels: their figures on hand-built
data, the customers list each count links to, who may see them, and their queries."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from console.selectors import (
    ChannelRetention,
    Cohort,
    LifecycleFlow,
    TierFigures,
    overview_lifecycle_flow,
    overview_period,
    overview_retention,
    overview_rfm_tiers,
)
from crm.models import OrderStatus
from segments.models import LifecycleState, RetentionCohort, RfmTier
from segments.services import retention as retention_service
from segments.services.retention import retention_recompute
from tests.factories import (
    CustomerFactory,
    CustomerMetricsFactory,
    LifecycleTransitionFactory,
    OrderFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=SHANGHAI)
ACTIVE, SLEEPING = LifecycleState.ACTIVE, LifecycleState.SLEEPING
NEW, REACTIVATED = LifecycleState.NEW, LifecycleState.REACTIVATED


def at(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """An instant in business time."""
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def empty_cache(db: None) -> None:
    cache.clear()


def _moves() -> dict[str, object]:
    """Moves around the 7-day period up to NOW (9 March 00:00 to 15 March 10:00)."""
    first, second, twice, before, after = (CustomerFactory() for _ in range(5))
    LifecycleTransitionFactory(customer=first, at=at(2026, 3, 10))
    LifecycleTransitionFactory(
        customer=first, from_state=SLEEPING, to_state=REACTIVATED, at=at(2026, 3, 12)
    )
    LifecycleTransitionFactory(customer=second, at=at(2026, 3, 11))
    LifecycleTransitionFactory(customer=twice, at=at(2026, 3, 9, 0))  # at the period's start
    LifecycleTransitionFactory(customer=twice, at=at(2026, 3, 13))  # the same move again
    LifecycleTransitionFactory(customer=before, at=at(2026, 3, 8, 23, 59))
    LifecycleTransitionFactory(
        customer=after, from_state=NEW, to_state=ACTIVE, at=at(2026, 3, 15, 10)
    )
    return {"first": first, "second": second, "twice": twice, "before": before}


@pytest.mark.django_db
def test_the_flow_counts_the_customers_of_each_move_in_the_period_once() -> None:
    _moves()
    flows = overview_lifecycle_flow(period=overview_period(days=7, now=NOW))
    assert flows == [
        LifecycleFlow(from_state="active", to_state="sleeping", customers=3),
        LifecycleFlow(from_state="sleeping", to_state="reactivated", customers=1),
    ]


@pytest.mark.django_db
def test_a_move_s_customers_list_shows_exactly_those_who_made_it_since_the_day() -> None:
    customers = _moves()
    client = client_of(UserFactory(is_superuser=True))
    page = client.get("/admin/crm/customer/", {"lifecycle_move": "active:sleeping:2026-03-09"})
    assert page.status_code == 200
    shown = {customer.pk for customer in page.context["cl"].result_list}
    assert shown == {customers[name].pk for name in ("first", "second", "twice")}  # type: ignore[attr-defined]
    assert "Active → Sleeping since 2026-03-09" in page.content.decode()

    back_to = client.get("/admin/crm/customer/", {"lifecycle_move": "active:sleeping:2026-03-08"})
    assert len(back_to.context["cl"].result_list) == 4


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    [
        "active:active:2026-03-09",
        "active:asleep:2026-03-09",
        "active:sleeping:2026-02-30",
        "active:sleeping",
        "active:sleeping:tomorrow",
        "x" * 300,
    ],
)
def test_a_move_that_names_none_is_refused_not_ignored(value: str) -> None:
    _moves()
    client = client_of(UserFactory(is_superuser=True))
    page = client.get("/admin/crm/customer/", {"lifecycle_move": value})
    assert page.status_code == 302
    assert page["Location"] == "/admin/crm/customer/?e=1"


def _tiers() -> None:
    for tier, spend in [
        (RfmTier.IMPORTANT_VALUE, "600.00"),
        (RfmTier.IMPORTANT_VALUE, "400.00"),
        (RfmTier.GENERAL_DEVELOP, "200.00"),
        (RfmTier.GENERAL_WINBACK, "0.00"),
        (None, "0.00"),
    ]:
        CustomerMetricsFactory(rfm_tier=tier, net_spend_in_window=Decimal(spend))


@pytest.mark.django_db
def test_tiers_count_their_customers_and_net_spend_in_the_window() -> None:
    _tiers()
    tiers = {figures.tier: figures for figures in overview_rfm_tiers()}
    assert list(tiers) == [*RfmTier.values, None]
    assert tiers["important_value"] == TierFigures(
        tier="important_value", customers=2, revenue=Decimal("1000.00")
    )
    assert tiers["general_develop"] == TierFigures(
        tier="general_develop", customers=1, revenue=Decimal("200.00")
    )
    assert tiers["important_develop"] == TierFigures(
        tier="important_develop", customers=0, revenue=Decimal(0)
    )
    assert tiers[None].customers == 1


def _cohorts() -> dict[str, object]:
    """First-time buyers of the twelve months up to March 2026, and one of the month before."""

    def buyer(channel: str, *paid: datetime, refunded: datetime | None = None) -> object:
        customer = CustomerFactory(source_channel=channel)
        CustomerMetricsFactory(customer=customer, first_paid_at=paid[0], last_paid_at=paid[-1])
        for moment in paid:
            OrderFactory(customer=customer, paid_at=moment)
        if refunded is not None:
            OrderFactory(customer=customer, paid_at=refunded, status=OrderStatus.REFUNDED)
        return customer

    return {
        # 1 February 00:30 in Shanghai is still 31 January in UTC: a February cohort.
        "february": buyer("douyin", at(2026, 2, 1, 0, 30), at(2026, 3, 2)),
        "january_twice": buyer("xiaohongshu", at(2026, 1, 10), at(2026, 1, 20), at(2026, 3, 5)),
        "january_once": buyer("xiaohongshu", at(2026, 1, 15)),
        "too_old": buyer("douyin", at(2025, 3, 20), at(2026, 1, 5)),
        "april": buyer("", at(2025, 4, 1, 0, 0), at(2025, 5, 10, 0, 0), refunded=at(2025, 6, 10)),
        "march": buyer("douyin", at(2026, 3, 10)),
        "after_now": buyer("douyin", at(2026, 3, 15, 11)),
    }


@pytest.mark.django_db
def test_retention_follows_the_last_twelve_first_order_months_in_business_time() -> None:
    _cohorts()
    retention_recompute(now=NOW)
    retention = overview_retention()
    assert retention is not None
    assert retention.computed_at == NOW
    by_month = {cohort.month: cohort for cohort in retention.cohorts}
    assert list(by_month) == [
        date(2025 + (3 + offset) // 12, (3 + offset) % 12 + 1, 1) for offset in range(12)
    ]
    assert by_month[date(2025, 4, 1)] == Cohort(
        month=date(2025, 4, 1), customers=1, repeat_buyers=[1] + [0] * 10
    )
    assert by_month[date(2025, 5, 1)] == Cohort(
        month=date(2025, 5, 1), customers=0, repeat_buyers=[0] * 10
    )
    # Bought again in January itself (month 0, not shown) and in March (month 2).
    assert by_month[date(2026, 1, 1)] == Cohort(
        month=date(2026, 1, 1), customers=2, repeat_buyers=[0, 1]
    )
    assert by_month[date(2026, 2, 1)] == Cohort(
        month=date(2026, 2, 1), customers=1, repeat_buyers=[1]
    )
    assert by_month[date(2026, 3, 1)] == Cohort(
        month=date(2026, 3, 1), customers=1, repeat_buyers=[]
    )


@pytest.mark.django_db
def test_retention_per_channel_counts_those_old_enough_and_who_came_back_in_time() -> None:
    _cohorts()
    retention_recompute(now=NOW)
    retention = overview_retention()
    assert retention is not None
    channels = retention.channels
    assert channels == [
        # February's buyer came back 29 days 23.5 hours later; March's is too recent.
        ChannelRetention(
            channel="douyin",
            customers=2,
            eligible={30: 1, 60: 0, 90: 0},
            repeat_buyers={30: 1, 60: 0, 90: 0},
        ),
        # The first came back after 10 days; only it is 60 days old (10 January).
        ChannelRetention(
            channel="xiaohongshu",
            customers=2,
            eligible={30: 2, 60: 1, 90: 0},
            repeat_buyers={30: 1, 60: 1, 90: 0},
        ),
        # Back after 39 days (the refunded order does not count).
        ChannelRetention(
            channel="",
            customers=1,
            eligible={30: 1, 60: 1, 90: 1},
            repeat_buyers={30: 0, 60: 1, 90: 1},
        ),
    ]


@pytest.mark.django_db
def test_nothing_to_follow_gives_empty_cohorts() -> None:
    assert overview_retention() is None  # never computed
    retention_recompute(now=NOW)
    retention = overview_retention()
    assert retention is not None
    assert [cohort.customers for cohort in retention.cohorts] == [0] * 12
    assert retention.cohorts[0].repeat_buyers == [0] * 11
    assert retention.channels == []


@pytest.mark.django_db
def test_the_panel_shows_when_its_figures_were_computed_not_when_it_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _cohorts()
    retention_recompute(now=NOW)
    _cohorts()  # bought after the computation: not counted until the next
    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(hours=5))
    client = client_of(_operator(*ALL_PERMISSIONS))
    retention = client.get("/admin/").context["overview"]["retention"]
    assert retention["computed_at"] == "Computed at 2026-03-15 10:00 (Beijing time)"
    assert retention["cohorts"][9]["customers"] == "2"


@pytest.mark.django_db
def test_before_any_computation_the_page_computes_the_figures_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    _cohorts()
    client = client_of(_operator(*ALL_PERMISSIONS))
    retention = client.get("/admin/").context["overview"]["retention"]
    assert retention["cohorts"][9]["customers"] == "2"
    monkeypatch.setattr(timezone, "now", lambda: NOW + timedelta(hours=1))
    retention = client.get("/admin/").context["overview"]["retention"]
    assert retention["computed_at"] == "Computed at 2026-03-15 10:00 (Beijing time)"


@pytest.mark.django_db
def test_before_any_computation_a_large_brand_s_page_queues_it_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
    enqueued: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    monkeypatch.setattr(retention_service, "ON_DEMAND_CUSTOMERS", 1)
    _cohorts()
    client = client_of(_operator(*ALL_PERMISSIONS))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    with django_capture_on_commit_callbacks(execute=True):
        page = client.get("/admin/")
    assert page.context["overview"]["retention"] == {"is_pending": True}
    assert "留存数据正在首次计算" in page.content.decode()
    assert not RetentionCohort.objects.exists()
    assert [task.name for task in enqueued] == ["segments.retention_recompute"]


def _operator(*codenames: str) -> object:
    return UserFactory(
        permissions=seeing_every_customer(Permission.objects.filter(codename__in=codenames))
    )


ALL_PERMISSIONS = (
    "view_customer",
    "view_order",
    "view_customermetrics",
    "view_lifecycletransition",
)


@pytest.mark.django_db
def test_the_panels_show_their_figures_with_links_to_the_customers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    _moves()
    _tiers()
    _cohorts()
    overview = client_of(_operator(*ALL_PERMISSIONS)).get("/admin/?period=7").context["overview"]

    flow = overview["lifecycle_flow"]
    assert flow["states"] == ["Prospect", "New", "Active", "Sleeping", "Churned", "Reactivated"]
    active = flow["rows"][2]
    assert active["label"] == "Active"
    assert active["cells"][2] is None  # no move to the same state
    assert active["cells"][3] == {
        "count": "3",
        "exact": "3",
        "url": "/admin/crm/customer/?lifecycle_move=active%3Asleeping%3A2026-03-09",
    }
    assert active["cells"][4] == {"count": "0", "exact": "0", "url": None}
    assert [node["name"] for node in flow["chart"]["nodes"]] == [
        "from:active",
        "from:sleeping",
        "to:sleeping",
        "to:reactivated",
    ]
    assert [(link["source"], link["target"], link["value"]) for link in flow["chart"]["links"]] == [
        ("from:active", "to:sleeping", 3),
        ("from:sleeping", "to:reactivated", 1),
    ]
    assert flow["chart"]["links"][0]["tooltip"] == "Active → Sleeping: 3 customers"

    rfm = overview["rfm"]
    important_value = rfm["tiers"][0]
    assert important_value == {
        "label": "Important value",
        "count": "2",
        "exact": "2",
        "share": "50%",
        "revenue_share": "83.3%",
        "average": "¥500.00",
        "url": "/admin/crm/customer/?metrics__rfm_tier__exact=important_value",
    }
    assert rfm["tiers"][1]["average"] == "–"  # no customer in the tier
    assert rfm["tiers"][7]["revenue_share"] == "0%"
    assert rfm["total"] == "4"
    assert rfm["total_average"] == "¥300.00"
    # The buyers of the retention cohorts have metrics and no tier.
    assert rfm["untiered"] == "8 more customers bought nothing in the RFM window and have no tier."
    assert rfm["chart"]["customer_shares"] == [50.0, 0, 0, 0, 0, 25.0, 0, 25.0]
    assert rfm["chart"]["revenue_shares"] == [83.3, 0, 0, 0, 0, 16.7, 0, 0.0]

    retention = overview["retention"]
    assert retention["months"][0] == "Month 1"
    assert len(retention["months"]) == 11
    january = retention["cohorts"][9]
    assert january["label"] == "2026-01"
    assert january["customers"] == "2"
    assert [cell and cell["rate"] for cell in january["cells"]] == ["0%", "50%"] + [None] * 9
    assert january["cells"][1]["exact"] == "1 of 2"
    assert retention["cohorts"][1]["cells"] == [None] * 11  # May 2025: no first order
    # Heat against the highest rate of the table (100%: April's and February's month 1).
    assert january["cells"][1]["heat"] == 0.5
    douyin = retention["channels"][0]
    assert douyin["label"] == "Douyin"
    assert [cell["rate"] for cell in douyin["cells"]] == ["100%", "–", "–"]
    assert retention["channels"][2]["label"] == "Unknown channel"
    assert [series["name"] for series in retention["chart"]["series"]] == [
        "2025-04",
        "2026-01",
        "2026-02",
    ]
    assert retention["chart"]["series"][1]["rates"] == [0.0, 50.0]


@pytest.mark.django_db
def test_the_list_a_flow_links_to_shows_its_customers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    customers = _moves()
    client = client_of(_operator(*ALL_PERMISSIONS))
    flow = client.get("/admin/?period=7").context["overview"]["lifecycle_flow"]
    page = client.get(flow["chart"]["links"][1]["url"])
    assert page.status_code == 200
    assert [customer.pk for customer in page.context["cl"].result_list] == [
        customers["first"].pk  # type: ignore[attr-defined]
    ]


@pytest.mark.django_db
def test_each_panel_needs_the_view_permissions_of_what_it_counts_and_links_to() -> None:
    def panels(*codenames: str) -> set[str]:
        overview = client_of(_operator(*codenames)).get("/admin/").context["overview"]
        return {"lifecycle_flow", "rfm", "retention"} & set(overview)

    assert panels(*ALL_PERMISSIONS) == {"lifecycle_flow", "rfm", "retention"}
    assert panels("view_lifecycletransition") == set()  # its links open the customers list
    assert panels("view_lifecycletransition", "view_customer") == {"lifecycle_flow"}
    assert panels("view_customermetrics") == set()  # its links open the customers list
    assert panels("view_customermetrics", "view_customer") == {"rfm"}
    assert panels("view_customermetrics", "view_customer", "view_order") == {"rfm", "retention"}
    assert panels() == set()


@pytest.mark.django_db
def test_the_panels_read_chinese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    _moves()
    _tiers()
    _cohorts()
    client = client_of(_operator(*ALL_PERMISSIONS))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    content = client.get("/admin/?period=90").content.decode()
    for words in (
        "生命周期流转",
        "变化前 → 变化后",
        "RFM 分层",
        "重要价值客户",
        "收入占比",
        "人均消费",
        "留存",
        "首购月份",
        "第1个月",
        "30天内",
        "小红书",
        "未知渠道",
    ):
        assert words in content, words
    assert 'id="overview-lifecycle-flow-data"' in content
    assert 'id="overview-retention-data"' in content


@pytest.mark.django_db
def test_each_panel_is_one_query_whatever_the_data_and_is_cached() -> None:
    client = client_of(_operator(*ALL_PERMISSIONS))
    tables = ("segments_lifecycletransition", "segments_customermetrics", "crm_order")
    retention_tables = ("segments_retentioncohort", "segments_retentionchannel")

    def queries_of(queries: CaptureQueriesContext, names: tuple[str, ...]) -> list[str]:
        return [
            query["sql"]
            for query in queries.captured_queries
            if any(table in query["sql"] for table in names)
        ]

    def first_visit() -> CaptureQueriesContext:
        cache.clear()
        retention_recompute()  # the nightly run's
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/").status_code == 200
        return queries

    _moves()
    few = first_visit()
    _moves()
    _tiers()
    _cohorts()
    many = first_visit()
    assert len(few) == len(many)
    # Key figures, lifecycle, and one each for the flow, the tiers and acquisition; retention
    # reads its pre-aggregate (two tables) and never the orders.
    assert len(queries_of(many, tables)) == 5
    assert len(queries_of(many, retention_tables)) == 2

    with CaptureQueriesContext(connection) as cached:
        client.get("/admin/")
    assert queries_of(cached, tables) == []
    assert len(queries_of(cached, retention_tables)) == 2


@pytest.mark.django_db
def test_the_panels_are_cached_but_retention_which_is_read_as_last_computed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept: dict[str, int] = {}
    store = cache.set

    def remember(key: str, value: object, timeout: int) -> None:
        kept[key.split(":")[2]] = timeout
        store(key, value, timeout)

    monkeypatch.setattr(cache, "set", remember)
    client_of(_operator(*ALL_PERMISSIONS)).get("/admin/")
    # Three refresh intervals: the figures outlive a missed refresh (console.overview_refresh).
    assert kept == {
        "kpis": 900,
        "lifecycle": 900,
        "lifecycle_flow": 900,
        "rfm": 900,
        "acquisition": 900,
    }
