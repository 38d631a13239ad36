"""Tag reads: groups with their tag counts, tags with their customer counts (one query each)."""

from django.db.models import Count, QuerySet

from crm.models import CustomerTag, Tag, TagGroup


def tag_group_list(*, search: str | None = None) -> QuerySet[TagGroup]:
    groups = TagGroup.objects.annotate(tag_count=Count("tags"))
    if search:
        groups = groups.filter(name__icontains=search)
    return groups


def tag_list(*, group_id: int | None = None, search: str | None = None) -> QuerySet[Tag]:
    # The count is served by the index customer_tag_by_tag (tag, customer).
    tags = Tag.objects.select_related("group").annotate(customer_count=Count("customer_tags"))
    if group_id is not None:
        tags = tags.filter(group_id=group_id)
    if search:
        tags = tags.filter(name__icontains=search)
    return tags


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
