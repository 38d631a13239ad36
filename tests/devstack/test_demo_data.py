"""The demo data generator: deterministic, skewed, and consistent with the model's rules."""

import re
from datetime import date, datetime, time
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, F, Min, Q, Sum

from crm.models import (
    Consent,
    Customer,
    CustomerTag,
    GroupMembership,
    Identity,
    Interaction,
    InteractionKind,
    Order,
    OrderItem,
    TagGroup,
)
from crm.personal_data import decrypt

pytestmark = pytest.mark.django_db

AS_OF = "2026-06-30"


def _load(*extra: str) -> str:
    out = StringIO()
    call_command(
        "load_demo_data",
        "--customers",
        "300",
        "--seed",
        "7",
        "--as-of",
        AS_OF,
        "--no-progress",
        *extra,
        stdout=out,
    )
    return out.getvalue()


def _truncate() -> None:
    with connection.cursor() as cursor:
        # Deferred foreign-key checks of the first load must fire before TRUNCATE may run.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            "TRUNCATE crm_customer, crm_order, crm_orderitem, crm_dirtymark, crm_group,"
            " crm_staffmember, crm_tag, crm_taggroup CASCADE"
        )


def _aggregates() -> dict[str, object]:
    return {
        "customers": Customer.objects.count(),
        "points": Customer.objects.aggregate(s=Sum("member_points"))["s"],
        "orders": Order.objects.aggregate(
            n=Count("id"), total=Sum("total_amount"), refunded=Sum("refunded_amount")
        ),
        "items": OrderItem.objects.aggregate(n=Count("id"), q=Sum("quantity")),
        "identities": Identity.objects.count(),
        "tags": sorted(CustomerTag.objects.values_list("tag__name").annotate(n=Count("id"))),
        "memberships": GroupMembership.objects.filter(left_at__isnull=False).count(),
        "consents": sorted(Consent.objects.values_list("status").annotate(n=Count("id"))),
        "names": sorted(Customer.objects.values_list("display_name", flat=True))[:20],
        "interactions": sorted(Interaction.objects.values_list("kind").annotate(n=Count("id"))),
    }


def test_two_runs_on_a_fresh_database_give_identical_data() -> None:
    _load()
    first = _aggregates()
    _truncate()
    _load()
    assert _aggregates() == first


def test_if_empty_loads_only_once() -> None:
    _load("--if-empty")
    assert "Customers exist already" in _load("--if-empty")
    assert Customer.objects.count() == 300


def test_demo_data_looks_like_a_real_brand() -> None:
    _load()
    per_customer = Customer.objects.annotate(n=Count("orders"))
    buyers = per_customer.filter(n__gt=0).count()
    assert per_customer.filter(n=1).count() / buyers > 0.4
    assert per_customer.filter(n__gte=8).exists()  # a loyal head
    assert Order.objects.filter(status__in=["refunded", "partially_refunded"]).count() > 0
    assert not Order.objects.filter(refunded_amount__gt=F("total_amount")).exists()
    assert not Order.objects.filter(content_hash="").exists()
    # first_seen_at never after the first order
    assert (
        not per_customer.annotate(first=Min("orders__paid_at"))
        .filter(first__lt=F("first_seen_at"))
        .exists()
    )
    # order totals are the sum of their items
    order = Order.objects.annotate(
        items_total=Sum(F("items__quantity") * F("items__unit_price"))
    ).first()
    assert order is not None and order.total_amount == order.items_total
    # items carry their order's purchase time exactly when the order counts as a purchase
    items = OrderItem.objects.select_related("order")
    assert items.filter(purchased_at__isnull=True).exists()
    assert all(item.purchased_at == item.order.purchased_at for item in items)


def test_exclusive_tag_groups_hold_one_tag_per_customer() -> None:
    _load()
    for group in TagGroup.objects.filter(name__in=["消费能力", "肤质"]):
        assert group.is_exclusive
        holders = CustomerTag.objects.filter(tag__group=group)
        assert holders.exists()
        assert not holders.filter(exclusive_group__isnull=True).exists()
        assert not holders.values("customer").annotate(n=Count("id")).filter(n__gt=1).exists()
    interests = CustomerTag.objects.filter(tag__group__name="兴趣偏好")
    assert interests.values("customer").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_groups_consent_and_identities() -> None:
    _load()
    assert GroupMembership.objects.filter(left_at__isnull=False).exists()
    assert Consent.objects.filter(channel="wecom", status="opted_out").exists()
    assert Consent.objects.filter(channel="wecom", status="opted_in").count() > 200
    assert Identity.objects.filter(provider="wecom", namespace="ww_demo_corp").exists()
    phones = Identity.objects.filter(provider="phone")
    assert phones.exists()
    for identity in phones[:20]:
        assert identity.is_sensitive
        assert re.fullmatch(r"\+861[3-9]\d{9}", decrypt(identity.value_encrypted))
        phone = decrypt(identity.value_encrypted)
        assert identity.value_masked == f"{phone[3:5]}****{phone[-2:]}"
    assert not Identity.objects.filter(~Q(provider="phone"), is_sensitive=True).exists()


def test_generate_returns_counts() -> None:
    from devstack import demo

    counts = demo.generate(
        customers=50, seed=1, orders_per_customer=10, as_of=date(2026, 1, 1), progress=False
    )
    assert counts["customers"] == 50 == Customer.objects.count()
    assert counts["orders"] == Order.objects.count()
    assert counts["orders"] / 50 > 4
    assert Decimal(Order.objects.aggregate(s=Sum("total_amount"))["s"]) > 0


def test_customers_interact_in_every_way_within_their_history() -> None:
    _load()
    interactions = Interaction.objects.all()
    assert set(interactions.values_list("kind", flat=True)) == set(InteractionKind.values)
    assert interactions.count() > 3 * Customer.objects.count()  # enough for the features
    assert not interactions.filter(occurred_at__lt=F("customer__first_seen_at")).exists()
    end = datetime.combine(date.fromisoformat(AS_OF), time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))
    assert not interactions.filter(occurred_at__gte=end).exists()
    # Frequent buyers engage more than prospects.
    per_customer = Customer.objects.annotate(
        orders_n=Count("orders", distinct=True), touches=Count("interactions", distinct=True)
    )
    buyers = per_customer.filter(orders_n__gte=3).aggregate(t=Sum("touches"), n=Count("id"))
    prospects = per_customer.filter(orders_n=0).aggregate(t=Sum("touches"), n=Count("id"))
    assert buyers["t"] / buyers["n"] > prospects["t"] / prospects["n"]
