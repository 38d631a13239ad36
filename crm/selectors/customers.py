"""Customer reads: the filtered list, one customer, lookup by identity, and the one-call view
a WeCom sidebar needs."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, DecimalField, F, Max, Min, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from crm.models import (
    Consent,
    Customer,
    CustomerTag,
    GroupMembership,
    Identity,
    IdentityProvider,
    Order,
    OrderStatus,
)
from crm.personal_data import (
    IdentityError,
    IdentityKey,
    hash_identity,
    identity_key,
    phone_search_value,
)

COUNTED_ORDER_STATUSES = (OrderStatus.PAID, OrderStatus.PARTIALLY_REFUNDED)


def customer_list(
    *,
    tag_ids: list[int] | None = None,
    group_id: int | None = None,
    source_channel: str | None = None,
    owner: str | None = None,
    member_level: int | None = None,
    updated_since: datetime | None = None,
    search: str | None = None,
) -> QuerySet[Customer]:
    """Customers matching every given filter, identities prefetched (two queries a page)."""
    customers = Customer.objects.select_related("owner").prefetch_related(
        Prefetch("identities", queryset=Identity.objects.order_by("id"))
    )
    for tag_id in tag_ids or []:
        # Each tag narrows: customers holding all given tags (index customer_tag_by_tag).
        customers = customers.filter(
            pk__in=CustomerTag.objects.filter(tag_id=tag_id).values("customer_id")
        )
    if group_id is not None:
        customers = customers.filter(
            pk__in=GroupMembership.objects.filter(group_id=group_id, left_at__isnull=True).values(
                "customer_id"
            )
        )
    if source_channel:
        customers = customers.filter(source_channel=source_channel)
    if owner:
        customers = customers.filter(owner__wecom_userid=owner)
    if member_level is not None:
        customers = customers.filter(member_level=member_level)
    if updated_since is not None:
        customers = customers.filter(updated_at__gte=updated_since)
    if search:
        customers = customers.filter(customer_search_condition(search))
    return customers


# Trigrams (index customer_name_trigram) serve a name search for a term of at least this
# many characters anywhere in the name, and a shorter one at either end of it.
TRIGRAM_LENGTH = 3


def customer_search_condition(term: str) -> Q:
    """Name contains the term, or an identity equals it (matched by keyed hash, never by
    decrypting): phone numbers in any usual form, unionids and ids of any namespace already
    stored. A term shorter than three characters (a surname, a two-character given name)
    matches names beginning or ending with it: of a name of up to three characters, as most
    Chinese names are, that is every place it can be, and the index serves it, where a
    two-character substring anywhere would read every name."""
    if len(term) < TRIGRAM_LENGTH:
        condition = Q(display_name__istartswith=term) | Q(display_name__iendswith=term)
    else:
        condition = Q(display_name__icontains=term)
    hashes: list[str] = []
    if (phone := phone_search_value(term)) is not None:
        hashes.append(hash_identity("phone", "", phone))
    for provider in IdentityProvider.values:
        if provider in (
            IdentityProvider.WECOM,
            IdentityProvider.OPENID,
            IdentityProvider.EXTERNAL,
            IdentityProvider.PHONE,
        ):
            continue
        try:
            hashes.append(identity_key(provider=provider, value=term).value_hash)
        except IdentityError:
            continue
    namespaced = _namespaced_hashes(term)
    hashes.extend(namespaced)
    if hashes:
        condition |= Q(pk__in=Identity.objects.filter(value_hash__in=hashes).values("customer_id"))
    return condition


def _namespaced_hashes(term: str) -> list[str]:
    """Hashes of `term` under every namespace in use (a handful of corp ids and appids)."""
    namespaces = (
        Identity.objects.filter(
            provider__in=[
                IdentityProvider.WECOM,
                IdentityProvider.OPENID,
                IdentityProvider.EXTERNAL,
            ]
        )
        .values_list("provider", "namespace")
        .distinct()
    )
    hashes = []
    for provider, namespace in namespaces:
        try:
            hashes.append(
                identity_key(provider=provider, namespace=namespace, value=term).value_hash
            )
        except IdentityError:
            continue
    return hashes


def customer_find_by_identity(key: IdentityKey) -> Customer | None:
    return (
        Customer.objects.select_related("owner")
        .filter(
            identities__provider=key.provider,
            identities__namespace=key.namespace,
            identities__value_hash=key.value_hash,
        )
        .first()
    )


def customer_order_summary(customer_id: int) -> dict[str, Any]:
    """Paid order count, net spend (refunds subtracted), first and last paid order."""
    summary = Order.objects.filter(
        customer_id=customer_id, status__in=COUNTED_ORDER_STATUSES
    ).aggregate(
        paid_order_count=Count("id"),
        net_spend=Coalesce(
            Sum(F("total_amount") - F("refunded_amount")),
            Decimal("0.00"),
            output_field=DecimalField(max_digits=14, decimal_places=2),
        ),
        first_paid_at=Min("paid_at"),
        last_paid_at=Max("paid_at"),
    )
    summary["refunded_order_count"] = Order.objects.filter(
        customer_id=customer_id, status=OrderStatus.REFUNDED
    ).count()
    return summary


def customer_profile_for_sidebar(customer: Customer) -> dict[str, Any]:
    """Everything a WeCom sidebar shows about a customer, in a fixed number of queries."""
    tags = (
        CustomerTag.objects.filter(customer_id=customer.pk)
        .select_related("tag__group")
        .order_by("tag__group__name", "tag__name")
    )
    groups = (
        GroupMembership.objects.filter(customer_id=customer.pk, left_at__isnull=True)
        .select_related("group")
        .order_by("joined_at")
    )
    recent_orders = Order.objects.filter(customer_id=customer.pk).order_by("-paid_at", "-id")[:5]
    return {
        "tags": list(tags),
        "groups": list(groups),
        "order_summary": customer_order_summary(customer.pk),
        "recent_orders": list(recent_orders),
        "consents": list(Consent.objects.filter(customer_id=customer.pk).order_by("channel")),
    }


def dirty_customer_ids() -> set[int]:
    """Ids of the customers marked for recomputation and not yet swept."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT unnest(customer_ids) FROM crm_dirtymark")
        return {row[0] for row in cursor.fetchall()}


def customer_ids_by_identities(keys: list[IdentityKey]) -> dict[tuple[str, str, str], int]:
    """Customer ids of the known identities among `keys` (one query; unknown ones absent)."""
    if not keys:
        return {}
    query = Q()
    for key in keys:
        query |= Q(provider=key.provider, namespace=key.namespace, value_hash=key.value_hash)
    return {
        (provider, namespace, value_hash): customer_id
        for provider, namespace, value_hash, customer_id in Identity.objects.filter(
            query
        ).values_list("provider", "namespace", "value_hash", "customer_id")
    }


def customer_ids_missing(customer_ids: list[int]) -> list[int]:
    """The ids among `customer_ids` that name no customer."""
    found = set(Customer.objects.filter(pk__in=customer_ids).values_list("pk", flat=True))
    return sorted(set(customer_ids) - found)
