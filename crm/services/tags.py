"""Tag services: tag groups and tags, and assigning or removing tags for many customers at once.

An exclusive tag group (消费能力 高/中/低, say) lets a customer hold at most one of its tags:
CustomerTag.exclusive_group repeats the group of such tags, and a unique constraint on
(customer, exclusive_group) makes PostgreSQL itself refuse a second one. Assigning a tag of an
exclusive group replaces the customer's other tag of that group in the same transaction.

Tags of a group mirrored to WeCom (`TagGroup.is_wecom_mirrored`) that have a WeCom id, given
or taken away here (any source but `wecom`) from a customer with an open WeCom relation, are
recorded in the same statement as WeComTagPush rows, pushed to WeCom after commit
(crm.wecom.tag_push). Holdings written from WeCom itself (crm.wecom.tags) never come through
here, so what came from WeCom is never pushed back."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import Conflict, NotFound, ValidationFailed
from crm import enqueue
from crm.models import CustomerTag, Tag, TagGroup, TagSource
from crm.selectors.tags import (
    tag_group_customers_with_several_tags,
    tag_holders_with_tags_of_group,
)

logger = logging.getLogger(__name__)

ERROR_TAG_GROUP_NOT_FOUND = "tag_group_not_found"
ERROR_TAG_NOT_FOUND = "tag_not_found"
ERROR_TAG_GROUP_NAME_TAKEN = "tag_group_name_taken"
ERROR_TAG_NAME_TAKEN = "tag_name_taken"
ERROR_TAG_GROUP_HAS_TAGS = "tag_group_has_tags"
ERROR_SEVERAL_TAGS_OF_EXCLUSIVE_GROUP = "several_tags_of_exclusive_group"
ERROR_CUSTOMERS_HOLD_SEVERAL_TAGS = "customers_hold_several_tags_of_group"
ERROR_UNKNOWN_TAGS = "unknown_tags"


# The tag changes of the statement's CTE `changed` (customer_id, tag_id) to push to WeCom:
# tags with a WeCom id in mirrored groups, for customers with an open relation (index
# wecom_follow_unique). A change waiting already for the same customer and tag is replaced by
# this one (the latest intent wins, index wecom_tag_push_one_pending); the sender pushes only
# what differs from the relation's tags in WeCom, so an add then a remove before the push
# pushes nothing. %(is_pushed)s is false for holdings from WeCom itself.
_PUSHES_RECORD = """
    INSERT INTO crm_wecomtagpush (customer_id, tag_id, action, status, attempts, error_code,
                                  created_at)
    SELECT ch.customer_id, ch.tag_id, %(action)s, 'pending', 0, '', clock_timestamp()
    FROM changed ch
    JOIN crm_tag t ON t.id = ch.tag_id AND t.wecom_tag_id IS NOT NULL
    JOIN crm_taggroup g ON g.id = t.group_id AND g.is_wecom_mirrored
    WHERE %(is_pushed)s AND EXISTS (
        SELECT 1 FROM crm_wecomfollow f
        WHERE f.customer_id = ch.customer_id AND f.deleted_at IS NULL
    )
    ORDER BY ch.customer_id, ch.tag_id
    ON CONFLICT (customer_id, tag_id) WHERE status = 'pending'
    DO UPDATE SET action = EXCLUDED.action, created_at = EXCLUDED.created_at, attempts = 0,
                  error_code = ''
    RETURNING 1
"""


@dataclass(frozen=True)
class TagRef:
    """A tag named by id, or by group name and tag name."""

    tag_id: int | None = None
    group: str = ""
    name: str = ""


@dataclass(frozen=True)
class AssignOutcome:
    assigned: int  # new customer tags
    replaced: int  # of these, how many replaced another tag of an exclusive group
    unchanged: int  # already held


def _name_taken(code: str, message: str) -> Conflict:
    return Conflict(code, message, detail={"name": [message]})


def _customers_hold_several_tags(count: int, *, field: str) -> Conflict:
    """An exclusive group would have customers holding several of its tags."""
    message = _(
        "%(count)d customers hold more than one tag of this group; remove the extra tags first."
    ) % {"count": count}
    return Conflict(ERROR_CUSTOMERS_HOLD_SEVERAL_TAGS, message, detail={field: [message]})


def _group_for_update(group_id: int) -> TagGroup:
    group = TagGroup.objects.select_for_update().filter(pk=group_id).first()
    if group is None:
        raise NotFound(ERROR_TAG_GROUP_NOT_FOUND, _("No such tag group."))
    return group


@transaction.atomic
def tag_group_create(
    *,
    name: str,
    is_exclusive: bool = False,
    description: str = "",
    is_wecom_mirrored: bool = False,
) -> TagGroup:
    if TagGroup.objects.filter(name=name).exists():
        raise _name_taken(ERROR_TAG_GROUP_NAME_TAKEN, _("A tag group with this name exists."))
    return TagGroup.objects.create(
        name=name,
        is_exclusive=is_exclusive,
        description=description,
        is_wecom_mirrored=is_wecom_mirrored,
    )


@transaction.atomic
def tag_group_update(
    *,
    group_id: int,
    name: str | None = None,
    description: str | None = None,
    is_exclusive: bool | None = None,
    is_wecom_mirrored: bool | None = None,
) -> TagGroup:
    """Rename or describe a group, or switch its exclusivity or its mirroring to WeCom. Making
    a group exclusive is refused while any customer holds more than one of its tags. Switching
    mirroring on pushes the changes made from then on (holdings given before are not pushed
    retroactively); switching it off stops pushing, and changes still waiting are dropped by
    the sender."""
    group = _group_for_update(group_id)
    if name is not None and name != group.name:
        if TagGroup.objects.filter(name=name).exclude(pk=group_id).exists():
            raise _name_taken(ERROR_TAG_GROUP_NAME_TAKEN, _("A tag group with this name exists."))
        group.name = name
    if description is not None:
        group.description = description
    if is_exclusive is not None and is_exclusive != group.is_exclusive:
        _exclusivity_switch(group, is_exclusive=is_exclusive)
        group.is_exclusive = is_exclusive
    if is_wecom_mirrored is not None:
        group.is_wecom_mirrored = is_wecom_mirrored
    group.save()
    return group


def _exclusivity_switch(group: TagGroup, *, is_exclusive: bool) -> None:
    if is_exclusive:
        count = tag_group_customers_with_several_tags(group_id=group.pk)
        if count:
            raise _customers_hold_several_tags(count, field="is_exclusive")
        CustomerTag.objects.filter(tag__group=group).update(exclusive_group=group)
    else:
        CustomerTag.objects.filter(exclusive_group=group).update(exclusive_group=None)


@transaction.atomic
def tag_group_delete(*, group_id: int) -> None:
    group = _group_for_update(group_id)
    if group.tags.exists():
        raise Conflict(ERROR_TAG_GROUP_HAS_TAGS, _("Delete or move the group's tags first."))
    group.delete()


@transaction.atomic
def tag_create(*, group_id: int, name: str, description: str = "") -> Tag:
    group = _group_for_update(group_id)
    if Tag.objects.filter(group=group, name=name).exists():
        raise _name_taken(ERROR_TAG_NAME_TAKEN, _("This group has a tag with this name."))
    return Tag.objects.create(group=group, name=name, description=description)


@transaction.atomic
def tag_update(
    *,
    tag_id: int,
    group_id: int | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Tag:
    """Rename or describe a tag, or move it to another group. Its holdings follow the new
    group's exclusivity; moving it into an exclusive group is refused while a customer holds
    it and another tag of that group."""
    tag = Tag.objects.select_for_update().select_related("group").filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(ERROR_TAG_NOT_FOUND, _("No such tag."))
    group = tag.group
    if group_id is not None and group_id != tag.group_id:
        group = _group_for_update(group_id)
    new_name = tag.name if name is None else name
    is_key_changed = (group.pk, new_name) != (tag.group_id, tag.name)
    if (
        is_key_changed
        and Tag.objects.filter(group=group, name=new_name).exclude(pk=tag_id).exists()
    ):
        raise _name_taken(ERROR_TAG_NAME_TAKEN, _("This group has a tag with this name."))
    if group.pk != tag.group_id:
        _holdings_move(tag, group)
        tag.group = group
    tag.name = new_name
    if description is not None:
        tag.description = description
    tag.save()
    return tag


def _holdings_move(tag: Tag, group: TagGroup) -> None:
    if group.is_exclusive:
        count = tag_holders_with_tags_of_group(tag_id=tag.pk, group_id=group.pk)
        if count:
            raise _customers_hold_several_tags(count, field="group")
    CustomerTag.objects.filter(tag=tag).update(
        exclusive_group=group if group.is_exclusive else None
    )


@transaction.atomic
def tag_delete(*, tag_id: int) -> int:
    """Delete a tag and every customer's holding of it; returns how many customers held it."""
    tag = Tag.objects.select_for_update().filter(pk=tag_id).first()
    if tag is None:
        raise NotFound(ERROR_TAG_NOT_FOUND, _("No such tag."))
    held, _detail = CustomerTag.objects.filter(tag=tag).delete()
    tag.delete()
    return held


def tags_resolve(*, refs: Sequence[TagRef], create_missing: bool) -> list[Tag]:
    """The tags named by `refs`, creating missing ones (and their non-exclusive groups) when
    asked. Unknown tags are a ValidationFailed naming them."""
    by_id = [r.tag_id for r in refs if r.tag_id is not None]
    by_name = {(r.group, r.name) for r in refs if r.tag_id is None}
    found = list(Tag.objects.filter(pk__in=by_id).select_related("group"))
    missing_ids = sorted(set(by_id) - {t.pk for t in found})
    named: dict[tuple[str, str], Tag] = {}
    if by_name:
        groups = {group_name for group_name, _tag_name in by_name}
        for tag in Tag.objects.filter(group__name__in=groups).select_related("group"):
            if (tag.group.name, tag.name) in by_name:
                named[(tag.group.name, tag.name)] = tag
    missing_names = sorted(by_name - named.keys())
    if missing_ids or (missing_names and not create_missing):
        unknown = [str(i) for i in missing_ids] + [f"{g}/{n}" for g, n in missing_names]
        message = _("Unknown tags: %(tags)s.") % {"tags": ", ".join(unknown)}
        raise ValidationFailed(ERROR_UNKNOWN_TAGS, message, detail={"tags": [message]})
    for group_name, tag_name in missing_names:
        TagGroup.objects.bulk_create([TagGroup(name=group_name)], ignore_conflicts=True)
        group = TagGroup.objects.get(name=group_name)
        Tag.objects.bulk_create([Tag(group=group, name=tag_name)], ignore_conflicts=True)
        named[(group_name, tag_name)] = Tag.objects.select_related("group").get(
            group=group, name=tag_name
        )
    return found + list(named.values())


@transaction.atomic
def tags_assign(
    *, customer_ids: Sequence[int], tags: Sequence[Tag], source: str, actor: str
) -> AssignOutcome:
    """Give every customer every tag. A tag of an exclusive group replaces the customer's other
    tag of that group; two tags of one exclusive group in one call are refused."""
    exclusive_groups = [t.group_id for t in tags if t.group.is_exclusive]
    if len(exclusive_groups) != len(set(exclusive_groups)):
        message = _("At most one tag of an exclusive group can be assigned at once.")
        raise ValidationFailed(
            ERROR_SEVERAL_TAGS_OF_EXCLUSIVE_GROUP, message, detail={"tags": [message]}
        )
    if source not in TagSource.values:
        raise ValidationFailed("invalid_source", _("Unknown tag source."))
    customers = sorted(set(customer_ids))
    tag_ids = [t.pk for t in tags]
    is_pushed = source != TagSource.WECOM
    with connection.cursor() as cursor:
        # Other tags of the same exclusive groups give way, in customer order (fixed lock order).
        cursor.execute(
            f"""
            WITH changed AS (
                DELETE FROM crm_customertag ct
                USING unnest(%(tag_ids)s::bigint[], %(group_ids)s::bigint[])
                    AS t(tag_id, group_id)
                WHERE ct.customer_id = ANY(%(customers)s::bigint[])
                  AND ct.exclusive_group_id = t.group_id AND ct.tag_id <> t.tag_id
                RETURNING ct.customer_id, ct.tag_id
            ), pushed AS ({_PUSHES_RECORD})
            SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM pushed)
            """,  # noqa: S608 (_PUSHES_RECORD is a constant)
            {
                "tag_ids": [t.pk for t in tags if t.group.is_exclusive],
                "group_ids": [t.group_id for t in tags if t.group.is_exclusive],
                "customers": customers,
                "action": "remove",
                "is_pushed": is_pushed,
            },
        )
        replaced, pushed_removals = cursor.fetchone()  # type: ignore[misc]
        cursor.execute(
            f"""
            WITH changed AS (
                INSERT INTO crm_customertag (customer_id, tag_id, exclusive_group_id, source,
                                             tagged_at)
                SELECT c, t.tag_id, t.group_id, %(source)s, now()
                FROM unnest(%(customers)s::bigint[]) AS c
                CROSS JOIN unnest(%(tag_ids)s::bigint[], %(group_ids)s::bigint[])
                    AS t(tag_id, group_id)
                ORDER BY c
                -- Any unique constraint: a concurrent assignment of another tag of the same
                -- exclusive group that committed first keeps its tag.
                ON CONFLICT DO NOTHING
                RETURNING customer_id, tag_id
            ), pushed AS ({_PUSHES_RECORD})
            SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM pushed)
            """,  # noqa: S608
            {
                "source": source,
                "customers": customers,
                "tag_ids": tag_ids,
                "group_ids": [t.group_id if t.group.is_exclusive else None for t in tags],
                "action": "add",
                "is_pushed": is_pushed,
            },
        )
        assigned, pushed_additions = cursor.fetchone()  # type: ignore[misc]
    if pushed_removals or pushed_additions:
        enqueue.wecom_tag_push()
    logger.info(
        "tags.assigned",
        extra={
            "actor": actor,
            "assigned_count": assigned,
            "replaced_count": replaced,
            "wecom_push_count": pushed_removals + pushed_additions,
        },
    )
    return AssignOutcome(
        assigned=assigned,
        replaced=replaced,
        unchanged=len(customers) * len(tag_ids) - assigned,
    )


@transaction.atomic
def tags_remove(*, customer_ids: Sequence[int], tags: Sequence[Tag], actor: str) -> int:
    """Take the tags away from the customers; returns how many holdings were removed."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH changed AS (
                DELETE FROM crm_customertag
                WHERE customer_id = ANY(%(customers)s::bigint[])
                  AND tag_id = ANY(%(tag_ids)s::bigint[])
                RETURNING customer_id, tag_id
            ), pushed AS ({_PUSHES_RECORD})
            SELECT (SELECT count(*) FROM changed), (SELECT count(*) FROM pushed)
            """,  # noqa: S608
            {
                "customers": sorted(set(customer_ids)),
                "tag_ids": sorted({t.pk for t in tags}),
                "action": "remove",
                "is_pushed": True,
            },
        )
        removed, pushed = cursor.fetchone()  # type: ignore[misc]
    if pushed:
        enqueue.wecom_tag_push()
    logger.info(
        "tags.removed",
        extra={"actor": actor, "removed_count": removed, "wecom_push_count": pushed},
    )
    return int(removed)
