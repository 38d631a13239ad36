"""The overview's channel QR code panel (渠道活码带来的客户): yesterday's and the past 7 days'
contacts per code and the first orders of the customers each first brought; computed ahead by
the refresh like the other panels, and shown only to those who may see codes, customers and
orders."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.overview import _contact_ways_panel, overview_refresh
from crm.models import ContactWay, CustomerAcquisition, WeComFollow
from crm.selectors.contact_ways import report_window
from tests.factories import CustomerFactory, OrderFactory, StaffMemberFactory, UserFactory
from tests.factories.users import seeing_every_customer
from tests.support import client_of

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    cache.clear()


def _scan(way: ContactWay, *, at, paid: str | None = None) -> None:
    staff = StaffMemberFactory()
    customer = CustomerFactory()
    WeComFollow.objects.create(
        customer=customer, staff_member=staff, added_at=at, state=way.state, observed_at=at
    )
    CustomerAcquisition.objects.create(
        customer=customer, contact_way=way, state=way.state, acquired_at=at
    )
    if paid is not None:
        OrderFactory(
            customer=customer,
            status="paid",
            total_amount=Decimal(paid),
            refunded_amount=Decimal("0"),
            paid_at=at + timedelta(hours=2),
        )


def test_the_panel_counts_yesterday_and_the_week_per_code() -> None:
    video = ContactWay.objects.create(name="抖音 0312 视频", state="dy0312")
    live = ContactWay.objects.create(name="快手直播间", state="ks01")
    ContactWay.objects.create(name="没人扫的码", state="none")
    yesterday_start, today = report_window(1)
    _scan(video, at=yesterday_start + timedelta(hours=10), paid="199.00")
    _scan(video, at=today - timedelta(days=4), paid="100.00")
    _scan(video, at=today - timedelta(days=5))
    _scan(live, at=today - timedelta(days=3))
    _scan(live, at=today - timedelta(days=20), paid="50.00")  # before the week

    panel = _contact_ways_panel()
    rows = {row["label"]: row for row in panel["rows"]}
    assert list(rows) == ["抖音 0312 视频", "快手直播间"]  # most added first; none: absent
    assert (rows["抖音 0312 视频"]["added_yesterday"], rows["抖音 0312 视频"]["added_week"]) == (
        "1",
        "3",
    )
    assert rows["抖音 0312 视频"]["first_orders"] == "2"
    assert rows["抖音 0312 视频"]["revenue"] == "¥299.00"
    assert rows["快手直播间"]["added_yesterday"] == "0"
    assert rows["快手直播间"]["first_orders"] == "0"
    assert rows["抖音 0312 视频"]["url"] == reverse("admin:crm_contactway_change", args=[video.pk])


def test_the_panel_is_on_the_overview_and_computed_ahead(admin_client_en: Client) -> None:
    video = ContactWay.objects.create(name="抖音 0312 视频", state="dy0312")
    _scan(video, at=timezone.now() - timedelta(days=2))
    overview_refresh()
    with CaptureQueriesContext(connection) as queries:
        page = admin_client_en.get("/admin/")
    content = page.content.decode()
    assert 'id="overview-contact-ways"' in content
    assert "抖音 0312 视频" in content
    assert not [q for q in queries.captured_queries if "crm_wecomfollow" in q["sql"]]


def test_the_panel_needs_the_codes_customers_and_orders() -> None:
    without_codes = UserFactory(
        permissions=seeing_every_customer(
            Permission.objects.filter(codename__in=["view_customer", "view_order"])
        )
    )
    assert "contact_ways" not in client_of(without_codes).get("/admin/").context["overview"]
    with_codes = UserFactory(
        permissions=seeing_every_customer(
            Permission.objects.filter(
                codename__in=["view_customer", "view_order", "view_contactway"]
            )
        )
    )
    assert "contact_ways" in client_of(with_codes).get("/admin/").context["overview"]
