"""The overview's (运营看板) acquisition, pinned segments, campaigns and contact pressure panels:
their figures on hand-built data, the campaign figures as the campaign report has them, the
pin on the segment list, each panel behind the permissions of what it counts, and the page's
queries, which do not grow with the data."""

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import (
    CalendarUnit,
    CampaignState,
    Conversion,
    DeliveryStatus,
    FrequencyRule,
    WindowKind,
)
from campaigns.services.report import campaign_report, campaign_summaries
from console.overview import weekly_limit
from console.selectors import (
    ChannelBucket,
    WeekPressure,
    overview_acquisition,
    overview_contact_pressure,
    overview_period,
)
from crm.models import OrderStatus
from segments.models import Segment, SegmentSizeSnapshot
from segments.services.retention import retention_recompute
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    FrequencyRuleFactory,
    OrderFactory,
    SegmentFactory,
    UserFactory,
)
from tests.factories.users import seeing_every_customer
from tests.support import client_of

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=SHANGHAI)  # a Sunday


def at(month: int, day: int, hour: int = 12) -> datetime:
    """An instant of 2026 in business time."""
    return datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def empty_cache(db: None) -> None:
    cache.clear()


def _user(*codenames: str) -> object:
    return UserFactory(
        permissions=seeing_every_customer(Permission.objects.filter(codename__in=codenames))
    )


def _overview(user: object, period: int = 30) -> dict:
    with time_machine.travel(NOW, tick=False):
        page = client_of(user).get(f"/admin/?period={period}")  # type: ignore[arg-type]
    assert page.status_code == 200
    return page.context["overview"]


def _acquisition_data() -> None:
    # The 30 days' period: 14 February 00:00 to 15 March 10:00.
    douyin = CustomerFactory(source_channel="douyin", first_seen_at=at(3, 10))
    OrderFactory(customer=douyin, paid_at=at(3, 12))
    OrderFactory(customer=douyin, paid_at=at(3, 13))  # a second order: converted once
    CustomerFactory(source_channel="douyin", first_seen_at=at(3, 2))
    cancelled = CustomerFactory(source_channel="douyin", first_seen_at=at(3, 3))
    OrderFactory(customer=cancelled, paid_at=at(3, 4), status=OrderStatus.CANCELLED)
    later = CustomerFactory(source_channel="douyin", first_seen_at=at(3, 14))
    OrderFactory(customer=later, paid_at=at(3, 15, 11))  # after now
    red = CustomerFactory(source_channel="xiaohongshu", first_seen_at=at(2, 20))
    OrderFactory(customer=red, paid_at=at(3, 1))
    CustomerFactory(source_channel="", first_seen_at=at(3, 14))
    old = CustomerFactory(source_channel="douyin", first_seen_at=at(2, 13, 23))  # before
    OrderFactory(customer=old, paid_at=at(3, 1))
    CustomerFactory(source_channel="wecom", first_seen_at=at(3, 15, 11))  # after now


@pytest.mark.django_db
def test_acquisition_counts_new_customers_and_first_orders_per_channel_and_week() -> None:
    _acquisition_data()

    rows = overview_acquisition(period=overview_period(days=30, now=NOW))

    monday = lambda month, day: datetime(2026, month, day).date()  # noqa: E731
    assert rows == [
        ChannelBucket("", monday(3, 9), 1, 0),
        ChannelBucket("douyin", monday(3, 2), 2, 0),
        ChannelBucket("douyin", monday(3, 9), 2, 1),
        ChannelBucket("xiaohongshu", monday(2, 16), 1, 1),
    ]


@pytest.mark.django_db
def test_the_acquisition_panel_stacks_channels_per_week_and_tables_their_conversion() -> None:
    _acquisition_data()

    panel = _overview(_user("view_customer", "view_order"))["acquisition"]

    assert panel["chart"]["buckets"] == [
        "Week of 2/9",
        "Week of 2/16",
        "Week of 2/23",
        "Week of 3/2",
        "Week of 3/9",
    ]
    assert panel["chart"]["series"] == [
        {"name": "Douyin", "channel": "douyin", "counts": [0, 0, 0, 2, 2]},
        {"name": "Channel not known", "channel": "", "counts": [0, 0, 0, 0, 1]},
        {"name": "Xiaohongshu", "channel": "xiaohongshu", "counts": [0, 1, 0, 0, 0]},
    ]
    assert [(r["label"], r["new_customers"], r["converted"], r["rate"]) for r in panel["rows"]] == [
        ("Douyin", "4", "1", "25%"),
        ("Channel not known", "1", "0", "0%"),
        ("Xiaohongshu", "1", "1", "100%"),
    ]
    assert panel["rows"][0]["url"] == "/admin/crm/customer/?source_channel__exact=douyin"
    assert panel["rows"][1]["url"] is None
    total = panel["total"]
    assert (total["new_customers"], total["converted"], total["rate"]) == ("6", "2", "33.3%")


@pytest.mark.django_db
def test_acquisition_buckets_are_days_for_a_week_and_months_for_a_quarter() -> None:
    CustomerFactory(source_channel="wecom", first_seen_at=at(3, 10))
    user = _user("view_customer", "view_order")

    week = _overview(user, 7)["acquisition"]["chart"]
    assert week["buckets"] == ["3/9", "3/10", "3/11", "3/12", "3/13", "3/14", "3/15"]
    assert week["series"][0]["counts"] == [0, 1, 0, 0, 0, 0, 0]
    cache.clear()
    quarter = _overview(user, 90)["acquisition"]["chart"]
    assert quarter["buckets"] == ["2025/12", "2026/1", "2026/2", "2026/3"]
    assert quarter["series"][0]["counts"] == [0, 0, 0, 1]


def _snapshot(segment: Segment, moment: datetime, size: int) -> None:
    SegmentSizeSnapshot.objects.create(segment=segment, at=moment, size=size, rule_version=1)


@pytest.mark.django_db
def test_pinned_segments_draw_their_size_at_the_end_of_each_day() -> None:
    # The 7 days' period: 9 to 15 March.
    followed = SegmentFactory(name="沉睡高价值", pinned=True, member_count=20)
    _snapshot(followed, at(3, 1), 8)
    _snapshot(followed, at(3, 7), 10)  # the size the period starts with
    _snapshot(followed, at(3, 10, 9), 12)
    _snapshot(followed, at(3, 10, 18), 15)  # that day's last
    _snapshot(followed, at(3, 13), 20)
    _snapshot(followed, at(3, 15, 11), 99)  # after now
    fresh = SegmentFactory(name="新客", pinned=True)
    _snapshot(fresh, at(3, 12), 3)
    unpinned = SegmentFactory(name="未钉选")
    _snapshot(unpinned, at(3, 12), 5)

    panel = _overview(_user("view_segment"), 7)["pinned"]

    assert panel["chart"]["days"] == ["3/9", "3/10", "3/11", "3/12", "3/13", "3/14", "3/15"]
    assert panel["chart"]["lines"] == [
        {
            "name": "新客",
            "url": f"/admin/segments/segment/{fresh.pk}/change/",
            "sizes": [None, None, None, 3, 3, 3, 3],
        },
        {
            "name": "沉睡高价值",
            "url": f"/admin/segments/segment/{followed.pk}/change/",
            "sizes": [10, 15, 15, 15, 20, 20, 20],
        },
    ]
    assert [segment["member_count"] for segment in panel["segments"]] == ["0", "20"]


@pytest.mark.django_db
def test_with_no_segment_pinned_the_panel_says_how_to_pin_one() -> None:
    SegmentFactory(name="未钉选")
    client = client_of(_user("view_segment"))
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "zh-hans"
    content = client.get("/admin/").content.decode()
    assert 'id="overview-pinned"' in content
    assert "还没有钉到看板的人群" in content
    assert "钉到看板" in content
    assert 'href="/admin/segments/segment/"' in content
    assert 'id="overview-pinned-chart"' not in content


@pytest.mark.django_db
def test_operators_pin_and_unpin_segments_from_the_segment_list() -> None:
    chosen, other = SegmentFactory(name="复购人群"), SegmentFactory(name="其他")
    editor = client_of(_user("view_segment", "change_segment"))
    url = "/admin/segments/segment/"

    page = editor.post(url, {"action": "pin", "_selected_action": [chosen.pk]}, follow=True)
    assert "1 segment pinned" in page.content.decode()
    assert list(Segment.objects.filter(pinned=True)) == [chosen]
    assert editor.get(url, {"pinned__exact": "1"}).context["cl"].result_count == 1

    editor.post(url, {"action": "unpin", "_selected_action": [chosen.pk, other.pk]})
    assert not Segment.objects.filter(pinned=True).exists()

    reader = client_of(_user("view_segment"))
    # Every action writes (pin, unpin, refresh): a reader is offered none.
    assert reader.get(url).context["action_form"] is None
    reader.post(url, {"action": "pin", "_selected_action": [chosen.pk]})
    assert not Segment.objects.filter(pinned=True).exists()


def _campaign_ledger() -> object:
    """A campaign with 4 sent (2 converted, revenue 300 and 100) and 4 held out (1 converted,
    revenue 50), and deliveries that count in neither arm."""
    campaign = CampaignFactory(
        name="春季召回", state=CampaignState.COMPLETED, finished_at=at(3, 12), launched_at=at(3, 10)
    )
    for index in range(8):
        is_holdout = index >= 4
        delivery = DeliveryFactory(
            campaign=campaign,
            status=DeliveryStatus.HELD_OUT if is_holdout else DeliveryStatus.SENT,
            is_holdout=is_holdout,
            at=at(3, 10),
        )
        revenue = {0: Decimal("300.00"), 1: Decimal("100.00"), 4: Decimal("50.00")}.get(index)
        if revenue is not None:
            order = OrderFactory(
                customer=delivery.customer, paid_at=at(3, 11), total_amount=revenue
            )
            Conversion.objects.create(
                delivery=delivery,
                order=order,
                campaign=campaign,
                customer=delivery.customer,
                is_holdout=is_holdout,
                credit=Decimal(1),
                revenue=revenue,
                converted_at=at(3, 11),
            )
    DeliveryFactory(campaign=campaign, status=DeliveryStatus.FAILED, at=at(3, 10))
    DeliveryFactory(campaign=campaign, status=DeliveryStatus.SUPPRESSED, at=at(3, 10))
    return campaign


@pytest.mark.django_db
def test_campaign_summaries_are_the_total_row_of_each_campaign_s_report() -> None:
    campaign = _campaign_ledger()
    silent = CampaignFactory()

    summaries = campaign_summaries(campaign_ids=[campaign.pk, silent.pk])  # type: ignore[attr-defined]

    report = campaign_report(campaign=campaign).total  # type: ignore[arg-type]
    summary = summaries[campaign.pk]  # type: ignore[attr-defined]
    assert (summary.sent, summary.converted) == (report.sent, report.converted) == (4, 2)
    assert summary.conversion_rate == report.conversion_rate == 0.5
    assert summary.lift == report.lift
    assert summary.lift.absolute == pytest.approx(0.25)
    assert summary.lift.incremental_revenue == Decimal("350.00")
    assert summaries[silent.pk].sent == 0
    assert summaries[silent.pk].conversion_rate is None
    assert summaries[silent.pk].lift.absolute is None


@pytest.mark.django_db
def test_the_campaigns_panel_lists_those_sending_or_finished_in_the_period() -> None:
    finished = _campaign_ledger()
    sending = CampaignFactory(name="新客欢迎", state=CampaignState.SENDING, launched_at=at(3, 14))
    DeliveryFactory(campaign=sending, at=at(3, 14))
    CampaignFactory(name="去年活动", state=CampaignState.COMPLETED, finished_at=at(1, 2))
    CampaignFactory(name="草稿", state=CampaignState.DRAFT)

    panel = _overview(_user("view_campaign"), 7)["campaigns"]

    rows = [
        (row["name"], row["state"], row["sent"], row["conversion_rate"], row["lift"])
        for row in panel["rows"]
    ]
    assert rows == [
        ("新客欢迎", "Sending", "1", "0.00%", "—"),
        ("春季召回", "Completed", "4", "50.00%", "+25.00 pp"),
    ]
    assert panel["rows"][1]["url"] == f"/admin/campaigns/campaign/{finished.pk}/change/"  # type: ignore[attr-defined]
    assert panel["rows"][1]["interval"].endswith("pp")
    assert panel["chart"]["names"] == ["春季召回"]  # the only one with a lift
    assert panel["chart"]["lift"] == [25.0]
    low, high = panel["chart"]["low"][0], panel["chart"]["high"][0]
    assert low < 25.0 < high


@pytest.mark.django_db
def test_a_campaign_where_nobody_converted_shows_its_interval_as_unknown() -> None:
    quiet = CampaignFactory(
        name="冷启动", state=CampaignState.COMPLETED, finished_at=at(3, 12), launched_at=at(3, 10)
    )
    for index in range(5):
        is_holdout = index >= 3
        DeliveryFactory(
            campaign=quiet,
            status=DeliveryStatus.HELD_OUT if is_holdout else DeliveryStatus.SENT,
            is_holdout=is_holdout,
            at=at(3, 10),
        )

    summary = campaign_summaries(campaign_ids=[quiet.pk])[quiet.pk]
    panel = _overview(_user("view_campaign"), 7)["campaigns"]

    assert (summary.lift.absolute, summary.lift.ci_low, summary.lift.ci_high) == (0.0, None, None)
    assert [(row["lift"], row["interval"]) for row in panel["rows"]] == [("0.00 pp", "—")]
    chart = panel["chart"]
    assert (chart["lift"], chart["low"], chart["high"]) == ([0.0], [None], [None])
    assert chart["tooltips"] == ["冷启动: lift 0.00 pp (95% interval —)"]


@pytest.mark.django_db
def test_contact_pressure_counts_messages_sent_per_week_and_per_customer() -> None:
    # The 30 days' period: 14 February to 15 March; the last 7 days: from 8 March 10:00.
    busy, calm = CustomerFactory(), CustomerFactory()
    for day in (9, 10, 11):
        DeliveryFactory(customer=busy, at=at(3, day))
    DeliveryFactory(customer=calm, at=at(3, 12))
    DeliveryFactory(customer=calm, at=at(3, 3))  # the week before, and before the last 7 days
    DeliveryFactory(customer=calm, at=at(3, 4), status=DeliveryStatus.FAILED)
    DeliveryFactory(customer=calm, at=at(3, 5), status=DeliveryStatus.SUPPRESSED)
    DeliveryFactory(customer=calm, at=at(2, 13))  # before the period

    pressure = overview_contact_pressure(period=overview_period(days=30, now=NOW))

    assert pressure.weeks == [
        WeekPressure(week=datetime(2026, 3, 2).date(), messages=1, customers=1),
        WeekPressure(week=datetime(2026, 3, 9).date(), messages=4, customers=2),
    ]
    assert pressure.weeks[1].per_customer == 2.0
    assert pressure.received == {1: 1, 3: 1}

    weeks = _overview(_user("view_delivery", "view_frequencyrule"))["pressure"]["weeks"]
    assert [(week["label"], week["messages"], week["per_customer"]) for week in weeks] == [
        ("Week of 2/9", "0", "–"),
        ("Week of 2/16", "0", "–"),
        ("Week of 2/23", "0", "–"),
        ("Week of 3/2", "1", "1.00"),
        ("Week of 3/9", "4", "2.00"),
    ]


@pytest.mark.django_db
def test_a_rule_s_weekly_limit_is_what_it_lets_a_customer_receive_in_a_week() -> None:
    def rule(**fields: object) -> FrequencyRule:
        return FrequencyRuleFactory.build(**fields)

    assert weekly_limit(rule(max_count=2, window_hours=24)) == 14
    assert weekly_limit(rule(max_count=1, window_hours=48)) == 4
    assert weekly_limit(rule(max_count=3, window_hours=24 * 30)) == 3
    calendar = {"window_kind": WindowKind.CALENDAR, "window_hours": None}
    assert weekly_limit(rule(max_count=1, calendar_unit=CalendarUnit.DAY, **calendar)) == 7
    assert weekly_limit(rule(max_count=2, calendar_unit=CalendarUnit.WEEK, **calendar)) == 2
    assert weekly_limit(rule(max_count=4, calendar_unit=CalendarUnit.MONTH, **calendar)) == 4


@pytest.mark.django_db
def test_the_pressure_panel_draws_the_active_caps_over_the_distribution() -> None:
    FrequencyRuleFactory(
        name="每周两条",
        max_count=2,
        window_kind=WindowKind.CALENDAR,
        window_hours=None,
        calendar_unit=CalendarUnit.WEEK,
    )
    FrequencyRuleFactory(name="停用的规则", is_active=False)
    customer = CustomerFactory()
    for day in (10, 11, 12):
        DeliveryFactory(customer=customer, at=at(3, day))

    panel = _overview(_user("view_delivery", "view_frequencyrule"), 7)["pressure"]

    assert [(cap["name"], cap["window"], cap["weekly"]) for cap in panel["caps"]] == [
        ("企业微信平台群发限制", "At most 1 per day", 7),  # the preset every database has
        ("每周两条", "At most 2 per week", 2),
    ]
    chart = panel["chart"]
    # Up to one past the highest cap: 8 bars, the customer in the third.
    assert chart["received_labels"] == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert chart["received"] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert chart["weeks"] == ["Week of 3/9"]
    assert chart["per_customer"] == [3.0]
    assert [cap["weekly"] for cap in chart["caps"]] == [7, 2]
    assert panel["reached"] == "1"


@pytest.mark.django_db
def test_each_panel_needs_the_view_permissions_of_what_it_counts() -> None:
    panels = {"acquisition", "pinned", "campaigns", "pressure"}
    cases = {
        ("view_customer",): set(),
        ("view_customer", "view_order"): {"acquisition"},
        ("view_segment",): {"pinned"},
        ("view_campaign",): {"campaigns"},
        ("view_delivery",): set(),
        ("view_delivery", "view_frequencyrule"): {"pressure"},
    }
    for codenames, expected in cases.items():
        overview = _overview(_user(*codenames))
        assert panels & set(overview) == expected, codenames


@pytest.mark.django_db
def test_the_page_s_queries_do_not_grow_with_the_data(admin_user: object) -> None:
    client = client_of(admin_user)  # type: ignore[arg-type]

    def first_visit() -> CaptureQueriesContext:
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/").status_code == 200
        return queries

    def data(count: int) -> None:
        for index in range(count):
            DeliveryFactory(campaign=CampaignFactory(state=CampaignState.SENDING))
            _snapshot(SegmentFactory(pinned=True), at(3, 1), index)
            CustomerFactory(source_channel="douyin")

    retention_recompute()  # the nightly run's: no visit computes it
    data(1)
    few = first_visit()
    data(5)
    many = first_visit()
    assert len(few) == len(many)


@pytest.mark.django_db
def test_a_segment_just_pinned_shows_on_the_overview_at_once() -> None:
    user = _user("view_segment")
    assert _overview(user)["pinned"]["segments"] == []
    SegmentFactory(name="复购人群", pinned=True)
    assert [segment["name"] for segment in _overview(user)["pinned"]["segments"]] == ["复购人群"]
