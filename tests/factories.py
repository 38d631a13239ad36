"""factory_boy factories for the CRM models."""

from decimal import Decimal

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


class GroupFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Group

    kind = models.GroupKind.WECOM_GROUP
    external_id = factory.Sequence(lambda n: f"wrOgQhDgAA{n:06d}")
    name = factory.Sequence(lambda n: f"会员福利群{n}")


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Order

    customer = factory.SubFactory(CustomerFactory)
    source = "shop"
    external_id = factory.Sequence(lambda n: f"SO{n:010d}")
    status = models.OrderStatus.PAID
    total_amount = Decimal("199.00")
    paid_at = factory.LazyFunction(timezone.now)
    content_hash = factory.Sequence(lambda n: f"{n:032x}")
