"""Staff member services: the brand's WeCom accounts that own customers (跟进人), created,
changed and deleted by operators. Integrations name owners by WeCom userid, and unknown ones are
created on the way (customers.staff_members_ensure)."""

import logging

from django.db import transaction
from django.utils.translation import gettext as _

from core.errors import Conflict, NotFound
from crm.models import StaffMember

logger = logging.getLogger(__name__)

ERROR_STAFF_MEMBER_NOT_FOUND = "staff_member_not_found"
ERROR_WECOM_USERID_TAKEN = "wecom_userid_taken"


def _userid_taken() -> Conflict:
    message = _("A staff member with this WeCom userid exists.")
    return Conflict(ERROR_WECOM_USERID_TAKEN, message, detail={"wecom_userid": [message]})


def _staff_member_for_update(staff_member_id: int) -> StaffMember:
    staff_member = StaffMember.objects.select_for_update().filter(pk=staff_member_id).first()
    if staff_member is None:
        raise NotFound(ERROR_STAFF_MEMBER_NOT_FOUND, _("No such staff member."))
    return staff_member


@transaction.atomic
def staff_member_create(
    *, wecom_userid: str, name: str = "", is_active: bool = True, actor: str
) -> StaffMember:
    if StaffMember.objects.filter(wecom_userid=wecom_userid).exists():
        raise _userid_taken()
    staff_member = StaffMember.objects.create(
        wecom_userid=wecom_userid, name=name, is_active=is_active
    )
    logger.info("staff_member.created", extra={"actor": actor, "staff_member_id": staff_member.pk})
    return staff_member


@transaction.atomic
def staff_member_update(
    *,
    staff_member_id: int,
    wecom_userid: str | None = None,
    name: str | None = None,
    is_active: bool | None = None,
    actor: str,
) -> StaffMember:
    """Change the fields given; the others keep their values."""
    staff_member = _staff_member_for_update(staff_member_id)
    if wecom_userid is not None and wecom_userid != staff_member.wecom_userid:
        if StaffMember.objects.filter(wecom_userid=wecom_userid).exists():
            raise _userid_taken()
        staff_member.wecom_userid = wecom_userid
    if name is not None:
        staff_member.name = name
    if is_active is not None:
        staff_member.is_active = is_active
    staff_member.save()
    logger.info("staff_member.updated", extra={"actor": actor, "staff_member_id": staff_member_id})
    return staff_member


@transaction.atomic
def staff_member_delete(*, staff_member_id: int, actor: str) -> None:
    """Delete a staff member; the customers and groups it owned keep no owner."""
    _staff_member_for_update(staff_member_id).delete()
    logger.info("staff_member.deleted", extra={"actor": actor, "staff_member_id": staff_member_id})
