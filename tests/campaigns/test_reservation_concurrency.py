"""Real concurrency on PostgreSQL: campaigns launched together over the same customers, planned
and reserved on their own threads and connections, never push a customer over a cap."""

from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import Campaign, Delivery, DeliveryReason, DeliveryStatus, FrequencyRule
from campaigns.services import reservation
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.frequency_rules import frequency_rule_create
from crm.models import Customer
from tests.campaigns.support import audience, make_campaign, wecom_customers
from tests.support import run_together

# Nothing is published to the broker: these tests call the steps themselves.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
CUSTOMERS = 300
CAMPAIGNS = 4


def for_each_at_once(work: Callable[[int], None], campaign_ids: list[int]) -> None:
    """`work(campaign_id)` for each campaign, all at once, each on its own connection."""
    assert run_together(*(partial(work, pk) for pk in campaign_ids)) == []


def campaigns_over(customers: list[Customer], **overrides: object) -> list[int]:
    segment = audience(customers)
    ids = [make_campaign(segment, name=f"c{n}", **overrides).pk for n in range(CAMPAIGNS)]
    for campaign_id in ids:
        campaign_launch(campaign_id=campaign_id, actor="test", at=NOON)
    return ids


def counted_per_customer() -> Counter[int]:
    return Counter(
        Delivery.objects.filter(status=DeliveryStatus.RESERVED).values_list(
            "customer_id", flat=True
        )
    )


def test_campaigns_planned_together_reserve_each_customer_once() -> None:
    """The platform preset allows one WeCom message a day: launched at once, the campaigns
    share the customers, and each customer is reserved by exactly one of them."""
    customers = wecom_customers(CUSTOMERS)
    ids = campaigns_over(customers)
    for_each_at_once(lambda campaign_id: campaign_plan(campaign_id=campaign_id, at=NOON), ids)

    assert counted_per_customer() == Counter({c.pk: 1 for c in customers})
    preset = FrequencyRule.objects.get(is_platform_preset=True)
    others = Delivery.objects.exclude(status=DeliveryStatus.RESERVED)
    assert set(others.values_list("status", "reason", "rule_id")) == {
        (DeliveryStatus.SUPPRESSED, DeliveryReason.CAPPED, preset.pk)
    }
    assert others.count() == CUSTOMERS * (CAMPAIGNS - 1)


def test_queued_deliveries_reserved_together_respect_a_cap_of_two() -> None:
    """Planned first (throttled, so nothing is reserved while planning), then reserved batch
    by batch by one thread per campaign: two a day, whatever the interleaving."""
    FrequencyRule.objects.filter(is_platform_preset=True).update(is_active=False)
    frequency_rule_create(
        actor="test",
        name="two a day",
        scope="all_channels",
        max_count=2,
        window_kind="calendar",
        calendar_unit="day",
    )
    customers = wecom_customers(CUSTOMERS)
    ids = campaigns_over(customers, throttle_per_minute=100_000)
    for campaign_id in ids:
        campaign_plan(campaign_id=campaign_id, at=NOON)
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.PENDING}
    Campaign.objects.update(throttle_per_minute=None)
    monkeypatch_batch = 64  # small batches, so the threads interleave many times
    original = reservation.RESERVE_BATCH_SIZE
    reservation.RESERVE_BATCH_SIZE = monkeypatch_batch
    try:

        def reserve_all(campaign_id: int) -> None:
            while not reservation.deliveries_reserve_batch(
                campaign_id=campaign_id, at=NOON
            ).is_exhausted:
                pass

        for_each_at_once(reserve_all, ids)
    finally:
        reservation.RESERVE_BATCH_SIZE = original

    assert counted_per_customer() == Counter({c.pk: 2 for c in customers})
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING).count() == 0
    assert Delivery.objects.filter(
        status=DeliveryStatus.SUPPRESSED, reason="capped"
    ).count() == CUSTOMERS * (CAMPAIGNS - 2)


def test_two_workers_per_campaign_reserve_each_customer_once_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two reservation workers on each campaign (a task delivered twice, or handed over while
    the first still runs), all started together under a one-a-day rule on every channel: each
    delivery is judged once, and each customer is reserved by exactly one campaign."""
    FrequencyRule.objects.filter(is_platform_preset=True).update(is_active=False)
    one_a_day = frequency_rule_create(
        actor="test",
        name="one a day",
        scope="all_channels",
        max_count=1,
        window_kind="calendar",
        calendar_unit="day",
    )
    customers = wecom_customers(CUSTOMERS)
    ids = campaigns_over(customers, throttle_per_minute=100_000)
    for campaign_id in ids:
        campaign_plan(campaign_id=campaign_id, at=NOON)
    Campaign.objects.update(throttle_per_minute=None)
    monkeypatch.setattr(reservation, "RESERVE_BATCH_SIZE", 50)  # many interleaved batches

    def reserve_all(campaign_id: int) -> None:
        while not reservation.deliveries_reserve_batch(
            campaign_id=campaign_id, at=NOON
        ).is_exhausted:
            pass

    for_each_at_once(reserve_all, ids * 2)

    assert counted_per_customer() == Counter({c.pk: 1 for c in customers})
    assert Delivery.objects.filter(status=DeliveryStatus.RESERVED).count() == CUSTOMERS
    others = Delivery.objects.exclude(status=DeliveryStatus.RESERVED)
    assert set(others.values_list("status", "reason", "rule_id")) == {
        (DeliveryStatus.SUPPRESSED, DeliveryReason.CAPPED, one_a_day.pk)
    }
    assert others.count() == CUSTOMERS * (CAMPAIGNS - 1)
