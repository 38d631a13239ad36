from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import (
    Consent,
    ConsentEvent,
    Customer,
    CustomerAcquisition,
    CustomerMerge,
    CustomerTag,
    GroupMembership,
    Identity,
    Interaction,
)
from crm.selectors.customers import dirty_customer_ids
from crm.services.merges import customers_merge
from tests.factories import (
    ConsentEventFactory,
    ConsentFactory,
    CustomerFactory,
    CustomerTagFactory,
    GroupFactory,
    GroupMembershipFactory,
    IdentityFactory,
    InteractionFactory,
    OrderFactory,
    OrderItemFactory,
    StaffMemberFactory,
    TagFactory,
    TagGroupFactory,
)

pytestmark = pytest.mark.django_db


def test_merge_moves_everything_to_the_lowest_id_and_records_it() -> None:
    now = timezone.now()
    survivor = CustomerFactory(display_name="", city="上海", member_points=10)
    loser = CustomerFactory(
        display_name="林小姐", city="杭州", member_points=50, owner=StaffMemberFactory()
    )
    IdentityFactory(customer=loser, provider="phone")
    order = OrderFactory(customer=loser)
    item = OrderItemFactory(order=order, sku="S1", unit_price=Decimal("9.90"))
    InteractionFactory(customer=loser, occurred_at=now)
    skin = TagGroupFactory(name="肤质", is_exclusive=True)
    dry, oily = TagFactory(group=skin, name="干性"), TagFactory(group=skin, name="油性")
    shared = TagFactory()
    CustomerTagFactory(customer=survivor, tag=dry, tagged_at=now - timedelta(days=2))
    CustomerTagFactory(customer=loser, tag=oily, tagged_at=now - timedelta(days=1))
    CustomerTagFactory(customer=survivor, tag=shared)
    CustomerTagFactory(customer=loser, tag=shared)
    group = GroupFactory()
    GroupMembershipFactory(group=group, customer=survivor, joined_at=now)
    GroupMembershipFactory(group=group, customer=loser, joined_at=now - timedelta(days=9))
    ConsentFactory(customer=survivor, status="opted_in", changed_at=now - timedelta(days=5))
    ConsentFactory(customer=loser, status="opted_out", changed_at=now)
    ConsentEventFactory(customer=loser, status="opted_out", occurred_at=now)

    assert (
        customers_merge(customer_ids=[loser.pk, survivor.pk], actor="test", reason="dup")
        == survivor.pk
    )

    assert list(Customer.objects.values_list("pk", flat=True)) == [survivor.pk]
    survivor.refresh_from_db()
    assert survivor.display_name == "林小姐"  # blank filled from the merged customer
    assert survivor.city == "上海"  # the survivor's value stays
    assert survivor.member_points == 50
    assert survivor.owner_id == loser.owner_id
    order.refresh_from_db()
    assert order.customer_id == survivor.pk
    item.refresh_from_db()
    assert item.customer_id == survivor.pk
    assert Identity.objects.get().customer_id == survivor.pk
    assert Interaction.objects.get().customer_id == survivor.pk
    tags = set(CustomerTag.objects.filter(customer=survivor).values_list("tag__name", flat=True))
    assert tags == {"油性", shared.name}  # the newer exclusive value wins
    stays = list(
        GroupMembership.objects.filter(customer=survivor).values_list("joined_at", flat=True)
    )
    assert stays == [now - timedelta(days=9)]  # the earlier open stay remains
    consent = Consent.objects.get()
    assert (consent.customer_id, consent.status) == (survivor.pk, "opted_out")
    assert ConsentEvent.objects.get().customer_id == survivor.pk
    merge = CustomerMerge.objects.get()
    assert merge.merged_customer_id == loser.pk
    assert merge.moved == {
        "identities": 1,
        "orders": 1,
        "order_items": 1,
        "interactions": 1,
        "tags": 1,
        "group_memberships": 1,
        "consents": 1,
        "consent_events": 1,
        "wecom_follows": 0,
        "acquisitions": 0,
        "wecom_tag_pushes": 0,
        "earlier_merges": 0,
        # Moved by the campaigns app's merge step (none here).
        "deliveries": 0,
        "conversions": 0,
    }
    assert merge.merged_profile["display_name"] == "林小姐"
    assert survivor.pk in dirty_customer_ids()


def test_merging_into_a_customer_that_absorbed_another_keeps_the_chain() -> None:
    a, b, c = CustomerFactory(), CustomerFactory(), CustomerFactory()
    customers_merge(customer_ids=[b.pk, c.pk], actor="t", reason="r")
    customers_merge(customer_ids=[a.pk, b.pk], actor="t", reason="r")
    assert set(CustomerMerge.objects.values_list("survivor_id", flat=True)) == {a.pk}
    # Naming a merged id again follows its record to the survivor and merges nothing.
    assert customers_merge(customer_ids=[c.pk, a.pk], actor="t", reason="r") == a.pk
    assert CustomerMerge.objects.count() == 2


def test_the_earlier_first_touch_through_wecom_stays() -> None:
    earlier, later = CustomerFactory(), CustomerFactory()
    now = timezone.now()
    CustomerAcquisition.objects.create(customer=later, state="video-2", acquired_at=now)
    CustomerAcquisition.objects.create(
        customer=earlier, state="video-1", acquired_at=now - timedelta(days=3)
    )
    survivor_id = customers_merge(customer_ids=[earlier.pk, later.pk], actor="test", reason="t")
    assert list(CustomerAcquisition.objects.values_list("customer_id", "state")) == [
        (survivor_id, "video-1")
    ]
