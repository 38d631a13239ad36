"""Tag reads: groups with their tag counts, tags with their customer counts (one query each)."""

from typing import Any

from django.db import connection
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

from crm.models import CustomerTag, Tag, TagGroup
from crm.selectors.scoping import ALL_CUSTOMERS, CustomerScope, owned_condition


def tag_group_list(*, search: str | None = None) -> QuerySet[TagGroup]:
    groups = TagGroup.objects.annotate(tag_count=Count("tags"))
    if search:
        groups = groups.filter(name__icontains=search)
    return groups


def tag_list(
    *,
    group_id: int | None = None,
    search: str | None = None,
    count_limit: int | None = None,
    holders_in: CustomerScope = ALL_CUSTOMERS,
) -> QuerySet[Tag]:
    """Tags with `customer_count`, their holders counted per listed tag (a subquery, not a
    join over every tagging grouped afterwards) from the index customer_tag_by_tag (tag,
    customer) alone. With `count_limit`, counted up to that many only: a count above it reads
    `count_limit + 1` (see tag_holder_estimates for how many about). `holders_in`: only the
    holders that scope may see are counted (a key bound to a staff member); not with
    `count_limit`."""
    if count_limit is None:
        holders: Any = Subquery(
            CustomerTag.objects.filter(tag_id=OuterRef("pk"))
            .filter(owned_condition(holders_in, customer_path="customer"))
            .order_by()
            .values("tag_id")
            .annotate(n=Count("*"))
            .values("n")
        )
    else:
        holders = RawSQL(
            "SELECT count(*) FROM (SELECT 1 FROM crm_customertag h"
            " WHERE h.tag_id = crm_tag.id LIMIT %s) AS held",
            [count_limit + 1],
            output_field=IntegerField(),
        )
    tags = Tag.objects.select_related("group").annotate(customer_count=Coalesce(holders, 0))
    if group_id is not None:
        tags = tags.filter(group_id=group_id)
    if search:
        tags = tags.filter(name__icontains=search)
    return tags


def tag_holder_estimates() -> dict[int, int]:
    """About how many customers hold each common tag, from the planner's statistics of
    crm_customertag (its most common tag ids and their shares, as of the last ANALYZE):
    read in a millisecond where counting a tag held by a million customers takes a second.
    A tag not among the most common is missing."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT m.tag_id, round(m.share * greatest(c.reltuples, 0))::bigint
            FROM pg_stats s
            CROSS JOIN LATERAL unnest(s.most_common_vals::text::bigint[], s.most_common_freqs)
                AS m(tag_id, share)
            JOIN pg_class c ON c.oid = 'crm_customertag'::regclass
            WHERE s.schemaname = current_schema() AND s.tablename = 'crm_customertag'
              AND s.attname = 'tag_id'
            """
        )
        return dict(cursor.fetchall())


def tag_group_customers_with_several_tags(*, group_id: int) -> int:
    """How many customers hold more than one tag of the group (which may then not be made
    exclusive)."""
    return (
        CustomerTag.objects.filter(tag__group_id=group_id)
        .values("customer_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count()
    )


def tag_holders_with_tags_of_group(*, tag_id: int, group_id: int) -> int:
    """How many customers holding the tag hold a tag of the group too (the tag may then not
    move into the group if it is exclusive)."""
    holders = CustomerTag.objects.filter(tag_id=tag_id).values("customer_id")
    return (
        CustomerTag.objects.filter(tag__group_id=group_id, customer_id__in=holders)
        .exclude(tag_id=tag_id)
        .values("customer_id")
        .distinct()
        .count()
    )
