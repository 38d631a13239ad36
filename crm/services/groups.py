"""Group (社群) services: groups and the membership sync.

A sync sends the full member list of a group as observed at one time; the service opens a stay
for each newcomer, closes the stay of each member missing from the list, and leaves the rest
alone. Leaving closes a row and re-joining opens a new one, so the history is kept.

Lists arrive out of order: a list observed before the last one applied to the group is stale
and changes nothing (not even the customers its identities would create); one observed at the
same time is applied again, which changes nothing when it is the same list.

A stay opens when the member joined: at the time given for them (`joined_at`, as WeCom tells
each member's join_time), else at the observation's time."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import Conflict, NotFound
from crm.models import Group
from crm.personal_data import IdentityKey
from crm.services.customers import staff_members_ensure
from crm.services.identities import customers_named

logger = logging.getLogger(__name__)

ERROR_GROUP_NOT_FOUND = "group_not_found"
ERROR_GROUP_EXTERNAL_ID_TAKEN = "group_external_id_taken"


@dataclass(frozen=True)
class SyncOutcome:
    joined: int
    left: int
    unchanged: int
    is_stale: bool = False  # observed before the list applied last: nothing changed


def _group_for_update(group_id: int) -> Group:
    group = Group.objects.select_for_update().filter(pk=group_id).first()
    if group is None:
        raise NotFound(ERROR_GROUP_NOT_FOUND, _("No such group."))
    return group


def _owner_id(owner: str | None) -> int | None:
    return staff_members_ensure([owner])[owner] if owner else None


def _check_external_key(kind: str, external_id: str, *, group_id: int | None = None) -> None:
    others = Group.objects.filter(kind=kind, external_id=external_id)
    if group_id is not None:
        others = others.exclude(pk=group_id)
    if others.exists():
        message = _("A group of this kind with this external id exists.")
        raise Conflict(ERROR_GROUP_EXTERNAL_ID_TAKEN, message, detail={"external_id": [message]})


@transaction.atomic
def group_create(*, kind: str, external_id: str, name: str, owner: str | None = None) -> Group:
    _check_external_key(kind, external_id)
    return Group.objects.create(
        kind=kind, external_id=external_id, name=name, owner_id=_owner_id(owner)
    )


@transaction.atomic
def group_update(
    *,
    group_id: int,
    kind: str | None = None,
    external_id: str | None = None,
    name: str | None = None,
    owner: str | None = None,
) -> Group:
    """Change the fields given; the others keep their values. `owner` is a WeCom userid, or
    "" for no owner."""
    group = _group_for_update(group_id)
    new_key = (kind or group.kind, group.external_id if external_id is None else external_id)
    if new_key != (group.kind, group.external_id):
        _check_external_key(*new_key, group_id=group_id)
        group.kind, group.external_id = new_key
    if name is not None:
        group.name = name
    if owner is not None:
        group.owner_id = _owner_id(owner)
    group.save()
    return group


@transaction.atomic
def group_delete(*, group_id: int) -> None:
    """Delete a group with its membership history."""
    _group_for_update(group_id).delete()


@transaction.atomic
def group_members_sync(
    *,
    group_id: int,
    customer_ids: Sequence[int],
    observed_at: datetime,
    actor: str,
    identities: Sequence[IdentityKey] = (),
    joined_at: Sequence[datetime | None] = (),
    is_fresh_read: bool = False,
) -> SyncOutcome:
    """Make the customers named by `customer_ids` and `identities` (unknown identities create
    customers) the group's current members as of `observed_at`, unless a list observed later
    was applied already (stale). The group row is locked, so two syncs of one group run one
    after the other and the later observation stands whatever the order of their commits.

    `joined_at` gives, in the order of `customer_ids` followed by `identities`, when each member
    joined (None or missing: at `observed_at`); a newcomer's stay opens then. A customer named
    twice joined at the earlier of their times.

    `is_fresh_read`: the list is the source's state read just now (WeCom's sync and callbacks
    read the chat before applying it), so an unchanged list need not move `members_observed_at`
    forward, since an older observation applied later reads the source again too; a second
    full sync then writes nothing. A list sent by an integration is no such read: applying it
    always records its time, so that an older list arriving later is refused."""
    assert len(joined_at) <= len(customer_ids) + len(identities), "more join times than members"
    group = _group_for_update(group_id)
    if group.members_observed_at is not None and observed_at < group.members_observed_at:
        logger.info("group.members_sync_stale", extra={"actor": actor, "group_id": group_id})
        return SyncOutcome(joined=0, left=0, unchanged=0, is_stale=True)
    named, _unknown = customers_named(
        customer_ids=customer_ids, identities=identities, create_missing=True, actor=actor
    )
    joined_of: dict[int, datetime] = {}
    for position, customer_id in enumerate(named):
        joined = (joined_at[position] if position < len(joined_at) else None) or observed_at
        joined_of[customer_id] = min(joined, joined_of.get(customer_id, joined))
    members = sorted(joined_of)
    with connection.cursor() as cursor:
        # Served by the partial unique index group_membership_one_open (group, customer).
        cursor.execute(
            """
            UPDATE crm_groupmembership SET left_at = greatest(%s, joined_at)
            WHERE group_id = %s AND left_at IS NULL AND NOT (customer_id = ANY(%s::bigint[]))
            """,
            [observed_at, group_id, members],
        )
        left = cursor.rowcount
        cursor.execute(
            """
            INSERT INTO crm_groupmembership (group_id, customer_id, joined_at)
            SELECT %s, m.c, m.t FROM unnest(%s::bigint[], %s::timestamptz[]) AS m(c, t)
            ORDER BY m.c
            ON CONFLICT (group_id, customer_id) WHERE left_at IS NULL DO NOTHING
            """,
            [group_id, members, [joined_of[c] for c in members]],
        )
        joined = cursor.rowcount
    if not (is_fresh_read and joined == left == 0 and group.members_observed_at is not None):
        Group.objects.filter(pk=group_id).update(members_observed_at=observed_at)
    logger.info(
        "group.members_synced",
        extra={"actor": actor, "group_id": group_id, "joined_count": joined, "left_count": left},
    )
    return SyncOutcome(joined=joined, left=left, unchanged=len(members) - joined)
