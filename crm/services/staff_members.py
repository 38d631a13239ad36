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


# Leave a field as it is (where None is a value).
KEEP: object = object()
ERROR_USER_TAKEN = "user_taken"


def _check_user_free(user_id: int | None, *, staff_member_id: int | None) -> None:
    """An admin login is bound to one staff member at most."""
    if user_id is None:
        return
    others = StaffMember.objects.filter(user_id=user_id)
    if staff_member_id is not None:
        others = others.exclude(pk=staff_member_id)
    if others.exists():
        message = _("This admin user is bound to another staff member.")
        raise Conflict(ERROR_USER_TAKEN, message, detail={"user": [message]})


@transaction.atomic
def staff_member_create(
    *,
    wecom_userid: str,
    name: str = "",
    is_active: bool = True,
    user_id: int | None = None,
    actor: str,
) -> StaffMember:
    """`user_id`: the admin login bound to the staff member (who then sees its customers)."""
    if StaffMember.objects.filter(wecom_userid=wecom_userid).exists():
        raise _userid_taken()
    _check_user_free(user_id, staff_member_id=None)
    staff_member = StaffMember.objects.create(
        wecom_userid=wecom_userid, name=name, is_active=is_active, user_id=user_id
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
    user_id: int | object | None = KEEP,
    actor: str,
) -> StaffMember:
    """Change the fields given; the others keep their values (`user_id`: None unbinds the
    admin login, KEEP leaves it)."""
    staff_member = _staff_member_for_update(staff_member_id)
    if wecom_userid is not None and wecom_userid != staff_member.wecom_userid:
        if StaffMember.objects.filter(wecom_userid=wecom_userid).exists():
            raise _userid_taken()
        staff_member.wecom_userid = wecom_userid
    if name is not None:
        staff_member.name = name
    if is_active is not None:
        staff_member.is_active = is_active
    if user_id is not KEEP:
        assert user_id is None or isinstance(user_id, int)
        _check_user_free(user_id, staff_member_id=staff_member_id)
        staff_member.user_id = user_id
    staff_member.save()
    logger.info("staff_member.updated", extra={"actor": actor, "staff_member_id": staff_member_id})
    return staff_member


@transaction.atomic
def staff_member_delete(*, staff_member_id: int, actor: str) -> None:
    """Delete a staff member; the customers and groups it owned keep no owner."""
    _staff_member_for_update(staff_member_id).delete()
    logger.info("staff_member.deleted", extra={"actor": actor, "staff_member_id": staff_member_id})
