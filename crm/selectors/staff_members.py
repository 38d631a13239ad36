"""Staff member selectors (reads only): names and choices for the API keys bound to a staff
member (registered with core.api_key_owners), and a staff member found by WeCom userid."""

from collections.abc import Collection

from crm.models import StaffMember


def staff_member_names(ids: Collection[int]) -> dict[int, str]:
    """Each existing staff member among `ids` with the name an operator knows them by."""
    return {
        staff_member.pk: str(staff_member)
        for staff_member in StaffMember.objects.filter(pk__in=list(ids)).only(
            "pk", "name", "wecom_userid"
        )
    }


def staff_member_choices() -> list[tuple[int, str]]:
    """Every active staff member as (id, name), by name."""
    return [
        (staff_member.pk, str(staff_member))
        for staff_member in StaffMember.objects.filter(is_active=True)
        .only("pk", "name", "wecom_userid")
        .order_by("name", "wecom_userid")
    ]


def staff_member_id_by_wecom_userid(wecom_userid: str) -> int | None:
    return (
        StaffMember.objects.filter(wecom_userid=wecom_userid).values_list("pk", flat=True).first()
    )
