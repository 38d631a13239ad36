"""The demo brand's campaigns: one in each state, the finished one with conversions and a
positive lift against its holdout, never a message to an opted-out customer, loaded once."""

from datetime import date, datetime
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns.models import Campaign, CampaignState, Conversion, Delivery, DeliveryStatus
from campaigns.services.report import campaign_report
from crm.models import Consent, ConsentStatus, Order
from devstack import demo
from devstack.demo_campaigns import campaigns_load

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 6, 30)
AT = datetime(2026, 6, 30, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def demo_brand() -> None:
    demo.generate(customers=1500, seed=3, orders_per_customer=4, as_of=AS_OF, progress=False)
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=StringIO())
    call_command("load_demo_segments", stdout=StringIO())


def _counts() -> tuple[int, ...]:
    return (
        Campaign.objects.count(),
        Delivery.objects.count(),
        Order.objects.count(),
        Conversion.objects.count(),
    )


def _statuses(name: str) -> dict[str, int]:
    deliveries = Delivery.objects.filter(campaign__name=name)
    return {
        status: deliveries.filter(status=status).count()
        for status in deliveries.values_list("status", flat=True).distinct()
    }


def test_demo_campaigns_tell_a_story_and_load_once(demo_brand: None) -> None:
    orders_before = Order.objects.count()
    with time_machine.travel(AT, tick=False), CaptureQueriesContext(connection) as queries:
        written = campaigns_load(at=AT)
    assert len(queries) < 150  # set-based: a few statements per campaign, whatever its size

    states = dict(Campaign.objects.values_list("name", "state"))
    assert sorted(states.values()) == sorted(
        [
            CampaignState.DRAFT,
            CampaignState.SCHEDULED,
            CampaignState.SENDING,
            CampaignState.PAUSED,
            CampaignState.COMPLETED,
        ]
    )
    assert written["618 大促预热"] == written["会员日预告"] == 0
    sending = _statuses("新客欢迎礼")
    assert sending[DeliveryStatus.SENT] > 0 and sending[DeliveryStatus.PENDING] > 0
    paused = _statuses("护肤复购提醒")
    assert paused[DeliveryStatus.PENDING] > paused[DeliveryStatus.SENT] > 0
    finished = _statuses("沉睡高消费客户唤醒")
    assert DeliveryStatus.PENDING not in finished
    # A tenth held out, drawn by hash: at this size the share varies with the ids (up to ~20 %).
    assert finished[DeliveryStatus.SENT] > 2 * finished[DeliveryStatus.HELD_OUT] > 0

    # Nobody who opted out is sent to or held out: each is suppressed.
    opted_out = Consent.objects.filter(status=ConsentStatus.OPTED_OUT).values("customer_id")
    touched = Delivery.objects.filter(customer_id__in=opted_out)
    assert touched.exists()
    assert set(touched.values_list("status", flat=True)) == {DeliveryStatus.SUPPRESSED}

    # The finished campaign converted its recipients more often than its holdout.
    campaign = Campaign.objects.get(name="沉睡高消费客户唤醒")
    report = campaign_report(campaign=campaign)
    lift = report.total.lift
    assert lift is not None and lift.absolute is not None
    assert report.total.converted > 0 and report.holdout_converted > 0
    # The holdout's buyers are its first 3 % by draw, rounded up: at this size (a holdout of a
    # few dozen at most, varying with the ids) that is one or two, so only the sign is sure.
    assert lift.absolute > 0
    assert Order.objects.count() > orders_before
    assert not Order.objects.filter(paid_at__gt=AT).exists()

    before = _counts()
    with time_machine.travel(AT, tick=False):
        campaigns_load(at=AT)
    assert _counts() == before
    out = StringIO()
    call_command("load_demo_campaigns", "--if-empty", stdout=out)
    assert "not loaded" in out.getvalue()
    assert _counts() == before


def test_the_demo_holdout_is_drawn_the_same_every_time(demo_brand: None) -> None:
    with time_machine.travel(AT, tick=False):
        campaigns_load(at=AT)
    holdout = set(Delivery.objects.filter(is_holdout=True).values_list("customer_id", flat=True))
    Conversion.objects.all().delete()
    Delivery.objects.all().delete()
    Order.objects.filter(external_id__startswith="DMC").delete()
    Campaign.objects.all().delete()
    with time_machine.travel(AT, tick=False):
        campaigns_load(at=AT)
    assert (
        set(Delivery.objects.filter(is_holdout=True).values_list("customer_id", flat=True))
        == holdout
    )
