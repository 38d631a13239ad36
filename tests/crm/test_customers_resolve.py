import pytest
from django.db import transaction

from crm.models import Customer, CustomerMerge, Identity
from crm.personal_data import identity_key
from crm.services.identities import customers_resolve
from tests.factories import IdentityFactory, OrderFactory

pytestmark = pytest.mark.django_db


def _key(provider: str, value: str, namespace: str = ""):
    return identity_key(provider=provider, value=value, namespace=namespace)


def test_unknown_identities_create_one_customer_per_person() -> None:
    with transaction.atomic():
        resolution = customers_resolve(
            identity_rows=[
                [_key("unionid", "u1"), _key("phone", "13800001111")],
                [_key("phone", "138 0000 1111")],  # the same phone, another spelling
                [_key("unionid", "u2")],
            ],
            actor="test",
        )
    first, second, third = resolution.customer_ids
    assert first == second != third
    assert resolution.created == {first, third}
    assert Customer.objects.count() == 2
    assert Identity.objects.filter(customer_id=first).count() == 2


def test_known_identity_returns_its_customer_and_attaches_new_ones() -> None:
    identity = IdentityFactory(provider="unionid", raw_value="u1")
    with transaction.atomic():
        resolution = customers_resolve(
            identity_rows=[[_key("unionid", "u1"), _key("openid", "o1", "wxapp")]], actor="test"
        )
    assert resolution.customer_ids == [identity.customer_id]
    assert resolution.created == set()
    assert set(Identity.objects.values_list("provider", flat=True)) == {"unionid", "openid"}


def test_identities_of_two_customers_merge_into_the_older() -> None:
    older = IdentityFactory(provider="unionid", raw_value="u1").customer
    newer = IdentityFactory(provider="phone", raw_value="13800001111").customer
    order = OrderFactory(customer=newer)
    with transaction.atomic():
        resolution = customers_resolve(
            identity_rows=[[_key("phone", "13800001111"), _key("unionid", "u1")]], actor="test"
        )
    assert resolution.customer_ids == [older.pk]
    assert not Customer.objects.filter(pk=newer.pk).exists()
    order.refresh_from_db()
    assert order.customer_id == older.pk
    merge = CustomerMerge.objects.get()
    assert (merge.survivor_id, merge.merged_customer_id) == (older.pk, newer.pk)
    assert merge.moved["orders"] == 1
    assert merge.moved["identities"] == 1
