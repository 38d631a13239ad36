"""Group reads: groups with their current member counts, and a group's members."""

from django.db.models import Count, Q, QuerySet

from crm.models import Group, GroupMembership
from crm.selectors.scoping import ALL_CUSTOMERS, CustomerScope, owned_condition


def group_list(
    *,
    kind: str | None = None,
    search: str | None = None,
    members_in: CustomerScope = ALL_CUSTOMERS,
) -> QuerySet[Group]:
    """Groups with `member_count`, their current members (of those `members_in` may see)."""
    counted = Q(memberships__left_at__isnull=True) & owned_condition(
        members_in, customer_path="memberships__customer"
    )
    groups = Group.objects.select_related("owner").annotate(
        member_count=Count("memberships", filter=counted)
    )
    if kind:
        groups = groups.filter(kind=kind)
    if search:
        groups = groups.filter(name__icontains=search)
    return groups


def group_memberships(*, group_id: int, include_left: bool) -> QuerySet[GroupMembership]:
    memberships = GroupMembership.objects.filter(group_id=group_id)
    if not include_left:
        memberships = memberships.filter(left_at__isnull=True)
    return memberships
