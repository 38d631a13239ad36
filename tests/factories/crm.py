"""factory_boy factories for the CRM models. Rows are written straight to their tables, as
the ingestion services would leave them (an order item copies its order's customer and
purchase time, a tag in an exclusive group names the group); a test that exercises a service
calls the service instead."""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from crm import models
from crm.personal_data import encrypt, identity_key, mask


class StaffMemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.StaffMember
        django_get_or_create = ("wecom_userid",)

    wecom_userid = factory.Sequence(lambda n: f"staff{n:03d}")
    name = factory.Sequence(lambda n: f"导购{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Customer

    display_name = factory.Sequence(lambda n: f"顾客{n}")
    source_channel = models.SourceChannel.DOUYIN


class IdentityFactory(factory.django.DjangoModelFactory):
    """`IdentityFactory(customer=c, provider="phone", raw_value="13800001234")`."""

    class Meta:
        model = models.Identity
        exclude = ("raw_value", "key")

    customer = factory.SubFactory(CustomerFactory)
    provider = models.IdentityProvider.UNIONID
    namespace = factory.LazyAttribute(
        lambda o: {"wecom": "corp1", "openid": "wxapp1", "external": "shop"}.get(o.provider, "")
    )
    raw_value = factory.LazyAttributeSequence(
        lambda o, n: f"139{n:08d}" if o.provider == "phone" else f"union{n:08d}"
    )
    key = factory.LazyAttribute(
        lambda o: identity_key(provider=o.provider, namespace=o.namespace, value=o.raw_value)
    )
    value_hash = factory.LazyAttribute(lambda o: o.key.value_hash)
    value_encrypted = factory.LazyAttribute(lambda o: encrypt(o.key.value))
    value_masked = factory.LazyAttribute(lambda o: mask(o.provider, o.key.value))
    is_sensitive = factory.LazyAttribute(lambda o: o.key.is_sensitive)


class TagGroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TagGroup

    name = factory.Sequence(lambda n: f"兴趣偏好{n}")


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Tag

    group = factory.SubFactory(TagGroupFactory)
    name = factory.Sequence(lambda n: f"标签{n}")


class CustomerTagFactory(factory.django.DjangoModelFactory):
    """A tag held by a customer; in an exclusive group it names the group, as tagging does."""

    class Meta:
        model = models.CustomerTag

    customer = factory.SubFactory(CustomerFactory)
    tag = factory.SubFactory(TagFactory)
    exclusive_group = factory.LazyAttribute(
        lambda o: o.tag.group if o.tag.group.is_exclusive else None
    )


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Group

    kind = models.GroupKind.WECOM_GROUP
    external_id = factory.Sequence(lambda n: f"wrOgQhDgAA{n:06d}")
    name = factory.Sequence(lambda n: f"会员福利群{n}")


class GroupMembershipFactory(factory.django.DjangoModelFactory):
    """A stay in a group, open since now unless `joined_at` and `left_at` say otherwise."""

    class Meta:
        model = models.GroupMembership

    group = factory.SubFactory(GroupFactory)
    customer = factory.SubFactory(CustomerFactory)
    joined_at = factory.LazyFunction(timezone.now)


class OrderFactory(factory.django.DjangoModelFactory):
    """A paid order; `items=[(sku, category), ...]` gives it one line per pair."""

    class Meta:
        model = models.Order
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    source = "shop"
    external_id = factory.Sequence(lambda n: f"SO{n:010d}")
    status = models.OrderStatus.PAID
    total_amount = Decimal("199.00")
    paid_at = factory.LazyFunction(timezone.now)
    content_hash = factory.Sequence(lambda n: f"{n:032x}")

    @factory.post_generation
    def items(self, create: bool, extracted: Iterable[tuple[str, str]] | None, **_: Any) -> None:
        if create and extracted:
            for line_no, (sku, category) in enumerate(extracted, start=1):
                OrderItemFactory(order=self, line_no=line_no, sku=sku, category=category)


class OrderItemFactory(factory.django.DjangoModelFactory):
    """An order's line (line 1 unless `line_no` says otherwise), with the order's customer and
    purchase time, as the order services write them."""

    class Meta:
        model = models.OrderItem

    order = factory.SubFactory(OrderFactory)
    customer = factory.SelfAttribute("order.customer")
    line_no = 1
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    quantity = 1
    unit_price = Decimal("10.00")
    purchased_at = factory.LazyAttribute(lambda o: o.order.purchased_at)


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Interaction

    customer = factory.SubFactory(CustomerFactory)
    kind = models.InteractionKind.LINK_CLICK
    occurred_at = factory.LazyFunction(timezone.now)
    source = "test"
    idempotency_key = factory.Sequence(lambda n: f"evt-{n}")


class ConsentFactory(factory.django.DjangoModelFactory):
    """A customer's current consent on a channel (no event behind it: `consent_record`
    writes both)."""

    class Meta:
        model = models.Consent

    customer = factory.SubFactory(CustomerFactory)
    channel = models.ConsentChannel.WECOM
    status = models.ConsentStatus.OPTED_IN
    source = "test"
    changed_at = factory.LazyFunction(timezone.now)


class ConsentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.ConsentEvent

    customer = factory.SubFactory(CustomerFactory)
    channel = models.ConsentChannel.WECOM
    status = models.ConsentStatus.OPTED_IN
    source = "test"
    occurred_at = factory.LazyFunction(timezone.now)


class CustomerMergeFactory(factory.django.DjangoModelFactory):
    """The record a merge leaves: `merged_customer_id` names a customer no longer there."""

    class Meta:
        model = models.CustomerMerge

    survivor = factory.SubFactory(CustomerFactory)
    merged_customer_id = factory.Sequence(lambda n: 900_000 + n)
    actor = "test"
    reason = "test"
