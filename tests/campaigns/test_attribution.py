"""Attribution on constructed cases: the goal window (sent, and would-have-been-sent for the
holdout), each model's credit, refunds, goal filters, and that computing again changes
nothing."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import Campaign, Conversion, Delivery, DeliveryStatus
from campaigns.services.attribution import conversions_attribute, conversions_catch_up
from crm.models import Customer, OrderStatus
from tests.factories import (
    CampaignFactory,
    CustomerFactory,
    DeliveryFactory,
    OrderFactory,
    OrderItemFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def touch(
    campaign: Campaign, customer: Customer, at: datetime, *, holdout: bool = False
) -> Delivery:
    """A delivery sent at `at` (a holdout member: would have been)."""
    return DeliveryFactory(
        campaign=campaign,
        customer=customer,
        variant=None if holdout else campaign.variants.get(),
        is_holdout=holdout,
        status=DeliveryStatus.HELD_OUT if holdout else DeliveryStatus.SENT,
        at=at,
    )


def credits(customer: Customer) -> dict[tuple[int, int], tuple[Decimal, Decimal]]:
    return {
        (c.delivery_id, c.order_id): (c.credit, c.revenue)
        for c in Conversion.objects.filter(customer=customer)
    }


@pytest.fixture
def customer() -> Customer:
    return CustomerFactory()


def test_window_counts_orders_after_the_send_and_before_its_end(customer: Customer) -> None:
    campaign = CampaignFactory(name="w", conversion_window_days=7)
    delivery = touch(campaign, customer, T0)
    before = OrderFactory(customer=customer, paid_at=T0 - timedelta(seconds=1))
    at_send = OrderFactory(customer=customer, paid_at=T0)
    last_moment = OrderFactory(customer=customer, paid_at=T0 + timedelta(days=7, seconds=-1))
    after = OrderFactory(customer=customer, paid_at=T0 + timedelta(days=7))
    cancelled = OrderFactory(customer=customer, paid_at=T0, status=OrderStatus.CANCELLED)
    conversions_attribute(customer_ids=[customer.pk])
    assert set(credits(customer)) == {(delivery.pk, at_send.pk), (delivery.pk, last_moment.pk)}
    assert {before.pk, after.pk, cancelled.pk}.isdisjoint(o for _d, o in credits(customer))


def test_last_touch_credits_the_latest_delivery_only(customer: Customer) -> None:
    first = touch(CampaignFactory(name="a"), customer, T0)
    second = touch(CampaignFactory(name="b"), customer, T0 + timedelta(days=1))
    order = OrderFactory(customer=customer, paid_at=T0 + timedelta(days=2), total_amount=100)
    conversions_attribute(customer_ids=[customer.pk])
    assert credits(customer) == {
        (first.pk, order.pk): (Decimal("0"), Decimal("100.00")),
        (second.pk, order.pk): (Decimal("1"), Decimal("100.00")),
    }


def test_first_touch_and_linear(customer: Customer) -> None:
    a = touch(CampaignFactory(name="a", attribution_model="first_touch"), customer, T0)
    b = touch(
        CampaignFactory(name="b", attribution_model="first_touch"),
        customer,
        T0 + timedelta(hours=1),
    )
    c = touch(
        CampaignFactory(name="c", attribution_model="first_touch"),
        customer,
        T0 + timedelta(hours=2),
    )
    order = OrderFactory(customer=customer, paid_at=T0 + timedelta(hours=3), total_amount=90)
    conversions_attribute(customer_ids=[customer.pk])
    assert {key: credit for key, (credit, _r) in credits(customer).items()} == {
        (a.pk, order.pk): Decimal("1"),
        (b.pk, order.pk): Decimal("0"),
        (c.pk, order.pk): Decimal("0"),
    }
    Campaign.objects.update(attribution_model="linear")
    conversions_attribute(customer_ids=[customer.pk])
    third = Decimal("0.333333")
    assert {key: credit for key, (credit, _r) in credits(customer).items()} == {
        (a.pk, order.pk): third,
        (b.pk, order.pk): third,
        (c.pk, order.pk): third,
    }


def test_refunds_net_out_and_a_full_refund_removes_the_conversion(customer: Customer) -> None:
    delivery = touch(CampaignFactory(name="r", conversion_min_amount=Decimal("50")), customer, T0)
    order = OrderFactory(
        customer=customer,
        paid_at=T0 + timedelta(hours=1),
        total_amount=Decimal("120.00"),
        refunded_amount=Decimal("20.00"),
        status=OrderStatus.PARTIALLY_REFUNDED,
    )
    conversions_attribute(customer_ids=[customer.pk])
    assert credits(customer) == {(delivery.pk, order.pk): (Decimal("1"), Decimal("100.00"))}
    # Refunded down to 40: below the goal's minimum.
    order.refunded_amount = Decimal("80.00")
    order.save()
    conversions_attribute(customer_ids=[customer.pk])
    assert credits(customer) == {}
    order.refunded_amount = Decimal("0")
    order.status = OrderStatus.PAID
    order.save()
    conversions_attribute(customer_ids=[customer.pk])
    order.status = OrderStatus.REFUNDED
    order.save()
    assert conversions_attribute(customer_ids=[customer.pk]) == (1, 0)
    assert credits(customer) == {}


def test_holdout_window_starts_when_it_would_have_been_sent(customer: Customer) -> None:
    campaign = CampaignFactory(name="h")
    held = touch(campaign, customer, T0, holdout=True)
    OrderFactory(customer=customer, paid_at=T0 - timedelta(minutes=1))
    inside = OrderFactory(customer=customer, paid_at=T0 + timedelta(days=1), total_amount=50)
    conversions_attribute(customer_ids=[customer.pk])
    assert credits(customer) == {(held.pk, inside.pk): (Decimal("0"), Decimal("50.00"))}
    assert Conversion.objects.get().is_holdout


def test_goal_sku_and_category(customer: Customer) -> None:
    by_sku = touch(CampaignFactory(name="s", conversion_sku="SKU-1"), customer, T0)
    by_cat = touch(CampaignFactory(name="c", conversion_category="茶"), customer, T0)
    other = OrderFactory(customer=customer, paid_at=T0 + timedelta(hours=1))
    OrderItemFactory(order=other, sku="SKU-2", category="茶")
    conversions_attribute(customer_ids=[customer.pk])
    assert set(credits(customer)) == {(by_cat.pk, other.pk)}
    OrderItemFactory(order=other, line_no=2, sku="SKU-1")
    conversions_attribute(customer_ids=[customer.pk])
    assert set(credits(customer)) == {(by_cat.pk, other.pk), (by_sku.pk, other.pk)}


def test_attributing_again_changes_nothing_and_catch_up_covers_the_touched() -> None:
    customers = CustomerFactory.create_batch(3)
    campaign = CampaignFactory(name="again")
    for index, customer in enumerate(customers):
        touch(campaign, customer, T0 + timedelta(hours=index))
        OrderFactory(customer=customer, paid_at=T0 + timedelta(days=1))
    assert conversions_attribute(customer_ids=[c.pk for c in customers]) == (0, 3)
    assert conversions_attribute(customer_ids=[c.pk for c in customers]) == (0, 0)
    Conversion.objects.all().delete()
    assert conversions_catch_up(now=T0 + timedelta(days=2)) == 3
    assert Conversion.objects.count() == 3
    assert conversions_catch_up(now=T0 + timedelta(days=200)) == 0


def test_a_merge_moves_deliveries_and_conversions_to_the_survivor() -> None:
    survivor, merged = CustomerFactory(), CustomerFactory()
    both = CampaignFactory(name="both")
    only_merged = CampaignFactory(name="only merged")
    kept = touch(both, survivor, T0)
    dropped = touch(both, merged, T0 + timedelta(hours=1))
    moved = touch(only_merged, merged, T0 + timedelta(hours=2))
    order = OrderFactory(customer=merged, paid_at=T0 + timedelta(hours=3))
    conversions_attribute(customer_ids=[survivor.pk, merged.pk])
    from crm.services.merges import customers_merge

    customers_merge(customer_ids=[survivor.pk, merged.pk], actor="t", reason="same person")
    assert set(Delivery.objects.values_list("pk", "customer_id")) == {
        (kept.pk, survivor.pk),
        (moved.pk, survivor.pk),
    }
    assert not Delivery.objects.filter(pk=dropped.pk).exists()
    # The order moved too: attributing again credits the latest of the survivor's sends.
    conversions_attribute(customer_ids=[survivor.pk])
    assert credits(survivor) == {
        (kept.pk, order.pk): (Decimal("0"), Decimal("199.00")),
        (moved.pk, order.pk): (Decimal("1"), Decimal("199.00")),
    }
    from crm.models import CustomerMerge

    assert CustomerMerge.objects.get().moved["deliveries"] == 1
