"""Tags both ways between WeCom's corp tags and ours: from WeCom. The corp tag groups and tags
(企业客户标签) are mirrored as our tag groups and tags by their WeCom ids (`corp_tags_apply`,
read in full by the sync step `tags` and per id by the `change_external_tag` callbacks), and
the tags a customer holds there (the union over their open relations of each staff member's
tags) are held here with source `wecom`, in mirrored groups (`customer_wecom_tags_apply`).
The other way, tags given or taken here, is crm.wecom.tag_push.

The mirror's rules:
- A WeCom group or tag is found here by its WeCom id. One not found adopts a group (a tag of
  the group) of the same name that has no WeCom id yet, keeping its holdings and its mirroring
  switch; else it is created, a group mirrored (`is_wecom_mirrored`). A name taken by another
  group (tag) linked to a different WeCom id gets the WeCom id's tail in brackets, until the
  other one is renamed or deleted.
- A tag deleted in WeCom is deleted here with its holdings; a group deleted there loses its
  WeCom tags and is deleted too, or, when it keeps tags of its own, is unlinked and no longer
  mirrored. Order (WeCom's `order`, shuffle events) is not kept.

The holdings' rules (customer_wecom_tags_apply), in a mirrored group, for a tag with a WeCom id:
- A tag some open relation has in WeCom is held here (source `wecom`), unless the latest change
  made here for that customer and tag has not reached WeCom (its push is waiting or failed):
  an operator's removal waiting to be pushed is not undone by WeCom's older state.
- A tag no open relation has any more in WeCom is taken away here: always when it came from
  WeCom; when it was given here (any other source), only once that gift has been pushed to
  WeCom (its latest push done) and while the customer has an open relation, i.e. when a staff
  member removed it in WeCom afterwards. A tag given here before its group was mirrored, or to
  a customer without a relation, is left alone.
Holdings of tags in groups that are not mirrored never come from WeCom."""

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from django.db import connection, transaction
from wechatpy.exceptions import WeChatClientException

from core.locks import Lock, xact_lock
from crm.models import Tag, TagGroup
from crm.wecom.client import WeComClient, errcode_of, wecom_call, wecom_client
from crm.wecom.registry import CallbackEvent, SyncContext, handles, sync_step

logger = logging.getLogger(__name__)

ACTOR = "wecom"
# get_corp_tag_list's answer for an id that is no tag (any more): 40068 invalid tag id.
ERRCODE_INVALID_TAG_ID = 40068

# Kinds of change the mirror counts (WeComSyncRun.changes, the callbacks' outcome).
CHANGE_KINDS = (
    "tag_groups_created",
    "tag_groups_adopted",
    "tag_groups_renamed",
    "tag_groups_deleted",
    "tag_groups_unlinked",
    "tags_created",
    "tags_adopted",
    "tags_renamed",
    "tags_deleted",
    "tag_holdings_deleted",
    "tags_given",
    "tags_taken",
)

# The latest push of each (customer, tag) of the customers %(customers)s (index
# wecom_tag_push_by_customer): a pair whose latest push is not done is left as it is here.
_LATEST_PUSHES = """
    SELECT DISTINCT ON (p.customer_id, p.tag_id) p.customer_id, p.tag_id, p.action, p.status
    FROM crm_wecomtagpush p
    WHERE p.customer_id = ANY(%(customers)s::bigint[])
    ORDER BY p.customer_id, p.tag_id, p.id DESC
"""
# The tags the customers' open relations have in WeCom, in mirrored groups.
_WANTED = """
    SELECT DISTINCT f.customer_id, t.id AS tag_id,
           CASE WHEN g.is_exclusive THEN g.id END AS exclusive_group_id
    FROM crm_wecomfollow f
    CROSS JOIN LATERAL unnest(f.wecom_tag_ids) AS w(wecom_tag_id)
    JOIN crm_tag t ON t.wecom_tag_id = w.wecom_tag_id
    JOIN crm_taggroup g ON g.id = t.group_id AND g.is_wecom_mirrored
    WHERE f.customer_id = ANY(%(customers)s::bigint[]) AND f.deleted_at IS NULL
"""


@transaction.atomic
def customer_wecom_tags_apply(*, customer_ids: Sequence[int], actor: str) -> dict[str, int]:
    """Make the customers' tag holdings match their open WeCom relations' tags, in mirrored
    groups, by the rules of this module's docstring; a tag of an exclusive group already held
    another way is not doubled. Returns {"tags_given": n, "tags_taken": n}; a second call
    changes nothing."""
    customers = sorted(set(customer_ids))
    if not customers:
        return {"tags_given": 0, "tags_taken": 0}
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH wanted AS ({_WANTED}), latest AS ({_LATEST_PUSHES})
            DELETE FROM crm_customertag ct
            WHERE ct.customer_id = ANY(%(customers)s::bigint[])
              AND NOT EXISTS (
                SELECT 1 FROM wanted w
                WHERE w.customer_id = ct.customer_id AND w.tag_id = ct.tag_id
              )
              AND NOT EXISTS (
                SELECT 1 FROM latest l
                WHERE l.customer_id = ct.customer_id AND l.tag_id = ct.tag_id
                  AND l.status <> 'done'
              )
              AND (
                ct.source = 'wecom'
                OR (
                  EXISTS (
                    SELECT 1 FROM latest l
                    WHERE l.customer_id = ct.customer_id AND l.tag_id = ct.tag_id
                      AND l.action = 'add'
                  )
                  AND EXISTS (
                    SELECT 1 FROM crm_tag t
                    JOIN crm_taggroup g ON g.id = t.group_id AND g.is_wecom_mirrored
                    WHERE t.id = ct.tag_id AND t.wecom_tag_id IS NOT NULL
                  )
                  AND EXISTS (
                    SELECT 1 FROM crm_wecomfollow f
                    WHERE f.customer_id = ct.customer_id AND f.deleted_at IS NULL
                  )
                )
              )
            """,  # noqa: S608 (constants of this module)
            {"customers": customers},
        )
        taken = cursor.rowcount
        cursor.execute(
            f"""
            WITH wanted AS ({_WANTED}), latest AS ({_LATEST_PUSHES})
            INSERT INTO crm_customertag (customer_id, tag_id, exclusive_group_id, source,
                                         tagged_at)
            SELECT w.customer_id, w.tag_id, w.exclusive_group_id, 'wecom', now()
            FROM wanted w
            WHERE NOT EXISTS (
                SELECT 1 FROM latest l
                WHERE l.customer_id = w.customer_id AND l.tag_id = w.tag_id
                  AND l.status <> 'done'
            )
            ORDER BY w.customer_id, w.tag_id
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            {"customers": customers},
        )
        given = cursor.rowcount
    if given or taken:
        logger.info(
            "wecom.tags_applied",
            extra={"actor": actor, "given_count": given, "taken_count": taken},
        )
    return {"tags_given": given, "tags_taken": taken}


# --- the corp tag mirror ---


def _live(entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [e for e in entries if not e.get("deleted")]


def _free_name(name: str, wecom_id: str, taken: set[str]) -> str:
    """`name`, or with the WeCom id's tail when another one holds it (see the docstring)."""
    if name not in taken:
        return name
    return f"{name}（{wecom_id[-6:]}）"[:64]


@transaction.atomic
def corp_tags_apply(
    *,
    tag_groups: Sequence[Mapping[str, Any]],
    is_complete: bool,
    group_ids: Sequence[str] = (),
    tag_ids: Sequence[str] = (),
) -> dict[str, int]:
    """Make our groups and tags match WeCom's `tag_groups` (get_corp_tag_list's answer).
    `is_complete`: the answer lists every group (a full read): any group or tag linked here
    and missing there is deleted. Otherwise the answer is for `group_ids` (each listed with all
    its tags) or `tag_ids`, and only those that are missing or marked deleted are deleted.
    Returns the changes by kind (CHANGE_KINDS); a second call with the same answer changes
    nothing."""
    # One mirror at a time (the nightly sync and a callback), each reading what the previous
    # one wrote; operators' writes to tags only wait for the rows the mirror changes.
    xact_lock(Lock.WECOM_CORP_TAGS)
    changes = dict.fromkeys(CHANGE_KINDS, 0)
    groups = {g.pk: g for g in TagGroup.objects.all()}
    tags = {t.pk: t for t in Tag.objects.all()}
    group_by_wecom = {g.wecom_group_id: g for g in groups.values() if g.wecom_group_id}
    tag_by_wecom = {t.wecom_tag_id: t for t in tags.values() if t.wecom_tag_id}
    group_names = {g.name for g in groups.values()}
    tag_names: dict[int, set[str]] = {}
    for t in tags.values():
        tag_names.setdefault(t.group_id, set()).add(t.name)
    # Groups and tags of our own that a WeCom one of the same name may adopt.
    unlinked_groups = {g.name: g for g in groups.values() if not g.wecom_group_id}
    unlinked_tags = {(t.group_id, t.name): t for t in tags.values() if not t.wecom_tag_id}

    live_groups = _live(tag_groups)
    seen_groups: set[str] = set()
    seen_tags: set[str] = set()
    new_tags: list[Tag] = []
    fresh_wecom_tag_ids: list[str] = []
    for entry in live_groups:
        wecom_group_id = str(entry["group_id"])
        seen_groups.add(wecom_group_id)
        name = str(entry.get("group_name", ""))[:64]
        group = group_by_wecom.get(wecom_group_id)
        if group is None:
            adoptable = unlinked_groups.pop(name, None)
            if adoptable is not None:
                group = adoptable
                group.wecom_group_id = wecom_group_id
                group.save(update_fields=["wecom_group_id"])
                changes["tag_groups_adopted"] += 1
            else:
                group = TagGroup.objects.create(
                    name=_free_name(name, wecom_group_id, group_names),
                    wecom_group_id=wecom_group_id,
                    is_wecom_mirrored=True,
                )
                groups[group.pk] = group
                group_names.add(group.name)
                changes["tag_groups_created"] += 1
            group_by_wecom[wecom_group_id] = group
        elif group.name != name and _free_name(name, wecom_group_id, group_names) != group.name:
            group_names.discard(group.name)
            group.name = _free_name(name, wecom_group_id, group_names)
            group_names.add(group.name)
            group.save(update_fields=["name"])
            changes["tag_groups_renamed"] += 1
        for tag_entry in _live(entry.get("tag", [])):
            wecom_tag_id = str(tag_entry["id"])
            seen_tags.add(wecom_tag_id)
            tag_name = str(tag_entry.get("name", ""))[:64]
            taken_here = tag_names.setdefault(group.pk, set())
            tag = tag_by_wecom.get(wecom_tag_id)
            if tag is None:
                adoptable_tag = unlinked_tags.pop((group.pk, tag_name), None)
                if adoptable_tag is not None:
                    adoptable_tag.wecom_tag_id = wecom_tag_id
                    adoptable_tag.save(update_fields=["wecom_tag_id"])
                    tag_by_wecom[wecom_tag_id] = adoptable_tag
                    changes["tags_adopted"] += 1
                else:
                    tag = Tag(
                        group=group,
                        name=_free_name(tag_name, wecom_tag_id, taken_here),
                        wecom_tag_id=wecom_tag_id,
                    )
                    new_tags.append(tag)
                    taken_here.add(tag.name)
                    tag_by_wecom[wecom_tag_id] = tag
                    changes["tags_created"] += 1
                fresh_wecom_tag_ids.append(wecom_tag_id)
                continue
            if tag.name != tag_name and _free_name(tag_name, wecom_tag_id, taken_here) != tag.name:
                taken_here.discard(tag.name)
                tag.name = _free_name(tag_name, wecom_tag_id, taken_here)
                taken_here.add(tag.name)
                tag.save(update_fields=["name"])
                changes["tags_renamed"] += 1
    Tag.objects.bulk_create(new_tags)

    # Deletions: what WeCom no longer has, among what this answer speaks for.
    if is_complete:
        gone_groups = set(group_by_wecom) - seen_groups
        gone_tags = set(tag_by_wecom) - seen_tags
    else:
        gone_groups = set(group_ids) - seen_groups
        gone_tags = set(tag_ids) - seen_tags
        for wecom_group_id in set(group_ids) & seen_groups:
            listed_group = group_by_wecom[wecom_group_id]
            gone_tags |= {
                w
                for w, t in tag_by_wecom.items()
                if t.group_id == listed_group.pk and w not in seen_tags
            }
    gone_group_pks = {group_by_wecom[w].pk for w in gone_groups if w in group_by_wecom}
    gone_tags |= {
        w for w, t in tag_by_wecom.items() if t.group_id in gone_group_pks and w not in seen_tags
    }
    doomed = [tag_by_wecom[w].pk for w in gone_tags if w in tag_by_wecom]
    if doomed:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM crm_customertag WHERE tag_id = ANY(%s::bigint[])", [sorted(doomed)]
            )
            changes["tag_holdings_deleted"] = cursor.rowcount
        changes["tags_deleted"] = Tag.objects.filter(pk__in=doomed).delete()[1].get("crm.Tag", 0)
    for pk in sorted(gone_group_pks):
        if Tag.objects.filter(group_id=pk).exists():
            TagGroup.objects.filter(pk=pk).update(wecom_group_id=None, is_wecom_mirrored=False)
            changes["tag_groups_unlinked"] += 1
        else:
            TagGroup.objects.filter(pk=pk).delete()
            changes["tag_groups_deleted"] += 1

    if fresh_wecom_tag_ids:
        # Relations may name tags that were not here yet (a tag created in WeCom after the
        # relation was read): their holdings now.
        changes.update(_holdings_of_tags(fresh_wecom_tag_ids))
    changes = {kind: n for kind, n in changes.items() if n}
    if changes:
        logger.info("wecom.corp_tags_applied", extra={"changes": changes})
    return changes


def _holdings_of_tags(wecom_tag_ids: Sequence[str]) -> dict[str, int]:
    with connection.cursor() as cursor:
        # A scan of the open relations: tags are created rarely (no index on the tag array).
        cursor.execute(
            """
            SELECT DISTINCT customer_id FROM crm_wecomfollow
            WHERE deleted_at IS NULL AND wecom_tag_ids && %s::varchar[]
            """,
            [list(wecom_tag_ids)],
        )
        customers = [row[0] for row in cursor.fetchall()]
    return customer_wecom_tags_apply(customer_ids=customers, actor=ACTOR) if customers else {}


def corp_tag_list(
    client: WeComClient, *, group_ids: Sequence[str] = (), tag_ids: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """WeCom's corp tag groups (get_corp_tag_list): all, or those of `group_ids` with all their
    tags, or those holding `tag_ids` with these tags only. An id that is no tag (40068) reads
    as an empty answer."""
    try:
        if group_ids:
            # wechatpy's get_corp_tag_list takes tag ids only.
            answer = wecom_call(
                client.post,
                "externalcontact/get_corp_tag_list",
                data={"group_id": list(group_ids)},
            )
        elif tag_ids:
            answer = wecom_call(client.external_contact.get_corp_tag_list, list(tag_ids))
        else:
            answer = wecom_call(client.external_contact.get_corp_tag_list)
    except WeChatClientException as error:
        if errcode_of(error) == ERRCODE_INVALID_TAG_ID:
            return []
        raise
    return list(answer.get("tag_group", []))


@sync_step("tags")
def corp_tags_sync(context: SyncContext) -> None:
    """The full sync's tag step: every corp tag group and tag, read in one call (WeCom answers
    them all at once, up to its 10,000 tags), applied in one transaction."""
    tag_groups = corp_tag_list(context.client)
    items = sum(1 + len(entry.get("tag", [])) for entry in tag_groups)
    context.expect(items)
    with transaction.atomic():
        changes = corp_tags_apply(tag_groups=tag_groups, is_complete=True)
        context.count(changes, items_read=items)


@handles("change_external_tag", "create", "update", "delete", "shuffle")
def corp_tag_changed(event: CallbackEvent) -> str:
    """A corp tag or group created, renamed, deleted or reordered in WeCom. The event names the
    id only: WeCom's current state of it is read and applied, so the same event twice, or
    events out of order (a delete before its create), end in WeCom's state. Tags of a rule
    group (规则组, StrategyId) are not mirrored."""
    if event.fields.get("StrategyId"):
        return "ignored"
    wecom_id = str(event.fields.get("Id") or "")
    is_group = event.fields.get("TagType") == "tag_group"
    client = wecom_client()
    if not wecom_id:  # shuffle of every group: read them all
        changes = corp_tags_apply(tag_groups=corp_tag_list(client), is_complete=True)
    elif is_group or event.change_type == "shuffle":
        changes = corp_tags_apply(
            tag_groups=corp_tag_list(client, group_ids=[wecom_id]),
            is_complete=False,
            group_ids=[wecom_id],
        )
    else:
        changes = corp_tags_apply(
            tag_groups=corp_tag_list(client, tag_ids=[wecom_id]),
            is_complete=False,
            tag_ids=[wecom_id],
        )
    logger.info(
        "wecom.corp_tag_event",
        extra={"event_id": event.event_id, "change_type": event.change_type, "changes": changes},
    )
    return "applied" if changes else "ignored"
