"""The channel QR code report, end to end: a code is created, a customer scans it (first
touch recorded as the add callback would), orders arrive through the order service, and the
report ties the code to the first order, its revenue and the repeat purchase; customers
acquired elsewhere and relations ended early count where they should and nowhere else."""

from datetime import datetime, timedelta
from decimal import Decimal

import msgspec
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.inputs import OrderIn
from crm.models import ContactWay, Customer, FollowDeletedBy, StaffMember, WeComFollow
from crm.selectors.contact_ways import contact_way_reports, report_window
from crm.services.orders import orders_bulk_upsert
from crm.wecom.acquisition import acquisition_record
from crm.wecom.contact_ways import contact_way_create
from devstack.wecom_directory import ADD_WAY_CONTACT_WAY
from devstack.wecom_fake import FakeWeCom
from devstack.wecom_fake_contact_ways import contact_way_scan
from tests.factories import CustomerFactory, IdentityFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)


def _way(state: str, staff: StaffMember) -> ContactWay:
    return contact_way_create(
        name=f"视频 {state}", state=state, staff_member_ids=[staff.pk], actor="张三"
    )


def _scan(
    way: ContactWay,
    staff: StaffMember,
    *,
    days_ago: int,
    phone: str,
    ended_after_days: int | None = None,
) -> Customer:
    """A customer adds the staff member through the code: the relation with the code's state
    and the first touch, as the add_external_contact callback records them."""
    customer = CustomerFactory()
    IdentityFactory(customer=customer, provider="phone", raw_value=phone)
    added_at = NOW - timedelta(days=days_ago)
    ended_at = added_at + timedelta(days=ended_after_days) if ended_after_days else None
    WeComFollow.objects.create(
        customer=customer,
        staff_member=staff,
        added_at=added_at,
        add_way=ADD_WAY_CONTACT_WAY,
        state=way.state,
        deleted_at=ended_at,
        deleted_by=FollowDeletedBy.CUSTOMER if ended_at else "",
        observed_at=ended_at or added_at,
    )
    acquisition_record(
        customer_id=customer.pk,
        state=way.state,
        staff_member_id=staff.pk,
        acquired_at=added_at,
        actor="企业微信",
    )
    return customer


def _order(phone: str, number: str, amount: str, paid_at: datetime, **extra: str) -> None:
    row = {
        "source": "youzan",
        "external_id": number,
        "customer": {"identities": [{"provider": "phone", "value": phone}]},
        "status": "paid",
        "total_amount": amount,
        "paid_at": paid_at.isoformat(),
    } | extra
    orders_bulk_upsert(
        orders=[msgspec.json.decode(msgspec.json.encode(row), type=OrderIn)], actor="test"
    )


def test_a_scan_and_a_first_order_show_in_the_codes_report(fake: FakeWeCom) -> None:
    staff = StaffMemberFactory(wecom_userid="zhangsan")
    video = _way("dy0312", staff)
    live = _way("ks_live_01", staff)
    buyer = _scan(video, staff, days_ago=40, phone="13800000001")
    acquired_at = buyer.acquisition.acquired_at

    report = contact_way_reports(now=NOW)[video.pk]
    assert (report.added, report.acquired, report.first_orders_30) == (1, 1, 0)

    _order("13800000001", "A1", "199.00", acquired_at + timedelta(days=10))
    report = contact_way_reports(now=NOW)[video.pk]
    assert (report.first_orders_30, report.first_order_revenue_30) == (1, Decimal("199.00"))
    assert (report.first_orders_90, report.first_order_revenue_90) == (1, Decimal("199.00"))
    assert report.repeat_rate == 0.0

    _order("13800000001", "A2", "89.00", acquired_at + timedelta(days=35))
    report = contact_way_reports(now=NOW)[video.pk]
    assert report.first_order_revenue_30 == Decimal("199.00")  # the first order's alone
    assert report.repeat_rate == 1.0

    # Acquired through the live room: counts there, not for the video.
    _scan(live, staff, days_ago=20, phone="13800000002")
    _order("13800000002", "B1", "500.00", NOW - timedelta(days=15))
    reports = contact_way_reports(now=NOW)
    assert (reports[video.pk].acquired, reports[video.pk].first_orders_90) == (1, 1)
    assert reports[live.pk].first_order_revenue_30 == Decimal("500.00")


def test_a_customer_acquired_elsewhere_adds_to_the_count_but_not_to_the_orders(
    fake: FakeWeCom,
) -> None:
    staff, other = StaffMemberFactory(), StaffMemberFactory()
    video = _way("dy0312", staff)
    live = _way("ks_live_01", other)
    customer = _scan(live, other, days_ago=30, phone="13800000003")
    # Later, the same customer also scans the video's code: a relation, not a first touch.
    WeComFollow.objects.create(
        customer=customer,
        staff_member=staff,
        added_at=NOW - timedelta(days=20),
        add_way=ADD_WAY_CONTACT_WAY,
        state=video.state,
        observed_at=NOW - timedelta(days=20),
    )
    acquisition_record(
        customer_id=customer.pk,
        state=video.state,
        staff_member_id=staff.pk,
        acquired_at=NOW - timedelta(days=20),
        actor="企业微信",
    )
    _order("13800000003", "C1", "59.00", NOW - timedelta(days=18))

    reports = contact_way_reports(now=NOW)
    assert (reports[video.pk].added, reports[video.pk].acquired) == (1, 0)
    assert reports[video.pk].first_orders_90 == 0
    assert (reports[live.pk].acquired, reports[live.pk].first_orders_30) == (1, 1)


def test_a_first_order_before_the_scan_or_after_the_window_is_not_the_codes(
    fake: FakeWeCom,
) -> None:
    staff = StaffMemberFactory()
    video = _way("dy0312", staff)
    earlier = _scan(video, staff, days_ago=50, phone="13800000004")
    _order("13800000004", "D0", "10.00", earlier.acquisition.acquired_at - timedelta(days=100))
    _order("13800000004", "D1", "20.00", earlier.acquisition.acquired_at + timedelta(days=5))
    late = _scan(video, staff, days_ago=200, phone="13800000005")
    _order("13800000005", "E1", "30.00", late.acquisition.acquired_at + timedelta(days=60))
    refunded = _scan(video, staff, days_ago=10, phone="13800000006")
    _order(
        "13800000006",
        "F1",
        "40.00",
        refunded.acquisition.acquired_at + timedelta(days=1),
        status="refunded",
        refunded_amount="40.00",
    )

    report = contact_way_reports(now=NOW)[video.pk]
    assert report.acquired == 3
    assert (report.first_orders_30, report.first_order_revenue_30) == (0, Decimal("0.00"))
    assert (report.first_orders_90, report.first_order_revenue_90) == (1, Decimal("30.00"))


def test_a_relation_ended_after_three_days_is_not_kept_at_seven(fake: FakeWeCom) -> None:
    staff = StaffMemberFactory()
    video = _way("dy0312", staff)
    _scan(video, staff, days_ago=40, phone="13800000007")
    _scan(video, staff, days_ago=10, phone="13800000008", ended_after_days=3)
    _scan(video, staff, days_ago=35, phone="13800000009", ended_after_days=20)
    _scan(video, staff, days_ago=2, phone="13800000010")  # too recent to count at 7 days

    report = contact_way_reports(now=NOW)[video.pk]
    assert report.added == 4
    assert (report.kept_7, report.kept_7_due) == (2, 3)
    assert (report.kept_30, report.kept_30_due) == (1, 2)
    assert report.kept_30_rate == 0.5


def test_a_window_counts_the_scans_and_first_touches_in_it(fake: FakeWeCom) -> None:
    staff = StaffMemberFactory()
    video = _way("dy0312", staff)
    _scan(video, staff, days_ago=1, phone="13800000011")
    _scan(video, staff, days_ago=30, phone="13800000012")
    since, before = report_window(7, now=NOW + timedelta(days=1))
    report = contact_way_reports(added_since=since, added_before=before, now=NOW)[video.pk]
    assert (report.added, report.acquired) == (1, 1)


def test_a_code_nobody_scanned_reports_zeros(fake: FakeWeCom) -> None:
    video = _way("dy0312", StaffMemberFactory())
    report = contact_way_reports(contact_way_ids=[video.pk])[video.pk]
    assert (report.added, report.acquired, report.first_orders_90) == (0, 0, 0)
    assert report.kept_7_rate is None and report.repeat_rate is None


def test_the_report_of_every_code_is_one_query(fake: FakeWeCom) -> None:
    staff = StaffMemberFactory()
    ways = [_way(f"v{i}", staff) for i in range(5)]
    for i, way in enumerate(ways):
        _scan(way, staff, days_ago=10 + i, phone=f"1390000000{i}")
    with CaptureQueriesContext(connection) as queries:
        reports = contact_way_reports(contact_way_ids=[w.pk for w in ways])
    assert len(queries) == 1
    assert sorted(r.added for r in reports.values()) == [1, 1, 1, 1, 1]


def test_a_scan_in_the_fake_adds_the_contact_and_a_relation_with_the_state(
    fake: FakeWeCom,
) -> None:
    video = _way("dy0312", StaffMemberFactory(wecom_userid="zhangsan"))
    follow = contact_way_scan(
        fake.directory,
        config_id=video.config_id or "",
        external_userid="wmScanner",
        name="扫码客户",
        createtime=1_700_000_000,
    )
    assert (follow.userid, follow.state, follow.add_way) == ("zhangsan", "dy0312", 1)
    assert fake.directory.follows[("zhangsan", "wmScanner")] is follow
    assert fake.directory.contacts["wmScanner"].name == "扫码客户"
