"""Customer group chats (客户群) from WeCom: a chat's details as `externalcontact/groupchat/get`
gives them become a `wecom_group` Group (chat_id as its external id, its owner a staff member)
and its members' stays; the change_external_chat callbacks and the "groups" scope of the full
sync both write through `group_chat_apply` and `group_chat_dismiss`.

Rules:
- External members (type 2) are customers, found or created by their `wecom` identity and
  joined to their `unionid` one when WeCom gives it; staff members (type 1) are not customers.
- A stay opens at the member's join_time; a member gone closes at the observation's time (the
  event's time for a callback, the time of the read for the sync).
- Observations are versioned (Group.members_observed_at): an older one changes nothing, and a
  dismissed chat changes only by a newer observation of it alive in WeCom.
- Set-based: a chat costs the same number of queries whatever its number of members."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from wechatpy.exceptions import WeChatClientException

from crm.models import Group, GroupKind, StaffMember, WeComSyncSeenChat
from crm.personal_data import IdentityError, IdentityKey, identity_key
from crm.services.customers import staff_members_ensure
from crm.services.groups import group_members_sync
from crm.services.identities import customers_resolve
from crm.wecom.client import ERRCODE_NO_PRIVILEGE, wecom_call, wecom_client
from crm.wecom.registry import CallbackEvent, SyncContext, handles, sync_step

logger = logging.getLogger(__name__)

ACTOR = "wecom"
EVENT_CHANGE_EXTERNAL_CHAT = "change_external_chat"
# groupchat/get of a chat that does not exist (any more): 全局错误码 40050, chatid 不存在. A
# dismissed chat answers it, so does one dismissed before its create event was processed.
ERRCODE_CHAT_NOT_FOUND = 40050
MEMBER_TYPE_EXTERNAL = 2
# Chats per groupchat/list page (the API allows 1-1000): the cursor moves a page at a time, so
# a page is what a crash repeats (its chats applied already change nothing the second time).
GROUPCHAT_PAGE_SIZE = 100
# groupchat/list without owner_filter when the app sees more than 1000 staff members: the list
# is then walked by owner, 100 at a time (the filter's maximum).
ERRCODE_OWNER_FILTER_REQUIRED = 81017
OWNER_FILTER_MAX = 100
# Join times outside these bounds are not WeCom's: the stay opens at the observation instead.
_EARLIEST_JOIN = datetime(2015, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GroupChatOutcome:
    """What applying one observation of a chat changed."""

    group_id: int | None
    is_stale: bool = False  # older than what was applied: nothing changed
    is_created: bool = False
    is_renamed: bool = False
    is_owner_changed: bool = False
    is_dismissed: bool = False
    is_restored: bool = False  # seen alive after a dismissal assumed here
    stays_opened: int = 0
    stays_closed: int = 0
    customers_created: int = 0

    @property
    def changes(self) -> dict[str, int]:
        """The change counts a sync run records (kinds with 0 included; the run drops them)."""
        return {
            "group_chats_created": int(self.is_created),
            "group_chats_renamed": int(self.is_renamed),
            "group_chat_owners_changed": int(self.is_owner_changed),
            "group_chats_dismissed": int(self.is_dismissed),
            "group_chats_restored": int(self.is_restored),
            "stays_opened": self.stays_opened,
            "stays_closed": self.stays_closed,
            "customers_created": self.customers_created,
        }

    @property
    def is_changed(self) -> bool:
        return any(self.changes.values())


def _join_time(raw: object) -> datetime | None:
    if not isinstance(raw, int) or isinstance(raw, bool):
        return None
    try:
        joined = datetime.fromtimestamp(raw, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    # A join after the observation is a member who joined between the event and the read (or
    # WeCom's clock ahead of ours): kept. A join time in the future is not one.
    if not _EARLIEST_JOIN <= joined <= timezone.now() + timedelta(days=1):
        return None
    return joined


def _external_members(
    member_list: object,
) -> tuple[list[list[IdentityKey]], list[datetime | None]]:
    """The identities (wecom, and unionid when given) and join times of the chat's external
    members; members whose ids are malformed are left out (counted in the log)."""
    rows: list[list[IdentityKey]] = []
    joined: list[datetime | None] = []
    malformed = 0
    for member in member_list if isinstance(member_list, list) else []:
        if not isinstance(member, Mapping) or member.get("type") != MEMBER_TYPE_EXTERNAL:
            continue
        try:
            row = [
                identity_key(
                    provider="wecom",
                    value=str(member.get("userid") or ""),
                    namespace=settings.WECOM_CORP_ID,
                )
            ]
            if member.get("unionid"):
                row.append(identity_key(provider="unionid", value=str(member["unionid"])))
        except IdentityError:
            malformed += 1
            continue
        rows.append(row)
        joined.append(_join_time(member.get("join_time")))
    if malformed:
        logger.warning("wecom.group_chat_members_malformed", extra={"member_count": malformed})
    return rows, joined


def _is_stale(group: Group, observed_at: datetime) -> bool:
    if group.members_observed_at is not None and observed_at < group.members_observed_at:
        return True
    return group.dismissed_at is not None and observed_at <= group.dismissed_at


def _group_locked(
    chat_id: str, name: str, owner_id: int | None, created_at: datetime
) -> tuple[Group, bool]:
    """The chat's group, locked, created first if it is new (then True)."""
    with connection.cursor() as cursor:
        # Served by the unique index group_unique_external (kind, external_id).
        cursor.execute(
            """
            INSERT INTO crm_group (kind, external_id, name, owner_id, created_at,
                                   is_wecom_synced)
            VALUES (%s, %s, %s, %s, %s, true)
            ON CONFLICT (kind, external_id) DO UPDATE SET is_wecom_synced = true
            WHERE NOT crm_group.is_wecom_synced  -- a chat an integration sent, now read
            RETURNING xmax = 0
            """,
            [GroupKind.WECOM_GROUP.value, chat_id, name, owner_id, created_at],
        )
        row = cursor.fetchone()
        is_created = row is not None and bool(row[0])
    group = Group.objects.select_for_update().get(kind=GroupKind.WECOM_GROUP, external_id=chat_id)
    return group, is_created


@transaction.atomic
def group_chat_apply(
    *, group_chat: Mapping[str, Any], observed_at: datetime, actor: str
) -> GroupChatOutcome:
    """Make the chat's group and its members' stays what `group_chat` (groupchat/get's
    `group_chat`) says as of `observed_at`, unless a newer observation was applied (stale).
    A newcomer's stay opens at their join_time; a member gone is closed at `observed_at`."""
    chat_id = str(group_chat["chat_id"])
    name = str(group_chat.get("name") or "")[: Group._meta.get_field("name").max_length]
    owner = str(group_chat.get("owner") or "")
    owner_id = staff_members_ensure([owner]).get(owner) if owner else None
    created_at = _join_time(group_chat.get("create_time")) or observed_at
    group, is_created = _group_locked(chat_id, name, owner_id, created_at)
    if _is_stale(group, observed_at):
        logger.info("wecom.group_chat_stale", extra={"group_id": group.pk})
        return GroupChatOutcome(group_id=group.pk, is_stale=True)

    rows, joined = _external_members(group_chat.get("member_list"))
    resolution = customers_resolve(identity_rows=rows, actor=actor, seen_at=joined)
    synced = group_members_sync(
        group_id=group.pk,
        customer_ids=resolution.customer_ids,
        observed_at=observed_at,
        actor=actor,
        joined_at=joined,
        is_fresh_read=True,  # read from WeCom just now (see group_members_sync)
    )
    is_renamed = not is_created and group.name != name
    is_owner_changed = not is_created and group.owner_id != owner_id
    if is_renamed or is_owner_changed or group.dismissed_at is not None:
        # Seen alive after a dismissal the nightly run assumed (the chat was out of the app's
        # sight for a while): it is not dismissed.
        Group.objects.filter(pk=group.pk).update(name=name, owner_id=owner_id, dismissed_at=None)
    return GroupChatOutcome(
        group_id=group.pk,
        is_created=is_created,
        is_renamed=is_renamed,
        is_owner_changed=is_owner_changed,
        is_restored=group.dismissed_at is not None,
        stays_opened=synced.joined,
        stays_closed=synced.left,
        customers_created=len(resolution.created),
    )


_DISMISS = """
    WITH dismissed AS (
        UPDATE crm_group
        SET dismissed_at = least(coalesce(dismissed_at, %(at)s), %(at)s),
            members_observed_at = greatest(coalesce(members_observed_at, %(at)s), %(at)s)
        WHERE {where}
        RETURNING id
    ),
    closed AS (
        UPDATE crm_groupmembership m SET left_at = greatest(%(at)s, m.joined_at)
        FROM dismissed
        WHERE m.group_id = dismissed.id AND m.left_at IS NULL
        RETURNING m.id
    )
    SELECT (SELECT coalesce(array_agg(id ORDER BY id), ARRAY[]::bigint[]) FROM dismissed),
           (SELECT count(*) FROM closed)
"""


def _dismiss(where: str, params: dict[str, Any]) -> tuple[list[int], int]:
    """Dismiss the WeCom groups `where` says, at %(at)s, closing their open stays then; the
    ids of the groups dismissed and the number of stays closed."""
    with connection.cursor() as cursor:
        cursor.execute(_DISMISS.format(where=where), params)
        group_ids, closed = cursor.fetchone()
    return group_ids, closed


@transaction.atomic
def group_chat_dismiss(*, chat_id: str, dismissed_at: datetime, actor: str) -> GroupChatOutcome:
    """Record that the chat was dismissed (解散) at `dismissed_at` and close every open stay
    then. WeCom never brings a dismissed chat back, so a dismissal applies whatever was
    observed before it; a chat unknown here, or dismissed here already at that time or
    earlier, changes nothing."""
    group_ids, closed = _dismiss(
        # Served by the unique index group_unique_external (kind, external_id).
        "kind = %(kind)s AND external_id = %(chat_id)s"
        " AND (dismissed_at IS NULL OR dismissed_at > %(at)s)",
        {"kind": GroupKind.WECOM_GROUP.value, "chat_id": chat_id, "at": dismissed_at},
    )
    if not group_ids:
        return GroupChatOutcome(group_id=None, is_stale=True)
    (group_id,) = group_ids
    logger.info(
        "wecom.group_chat_dismissed",
        extra={"actor": actor, "group_id": group_id, "closed_count": closed},
    )
    return GroupChatOutcome(group_id=group_id, is_dismissed=True, stays_closed=closed)


@transaction.atomic
def group_chats_missing_dismiss(
    *,
    run_id: int,
    skipped_chat_ids: Sequence[str],
    dismissed_at: datetime,
    actor: str,
    is_by_owner: bool = False,
) -> dict[str, int]:
    """The nightly reconciliation: chats read from WeCom before (`is_wecom_synced`: a chat an
    integration sent over the API is not WeCom's to dismiss), not dismissed, that run `run_id`
    did not see (WeComSyncSeenChat; a full walk of WeCom's list reads every chat it lists),
    other than the chats the app may not read, are dismissed at `dismissed_at`: their dismiss
    event never came. A walk by owner (`is_by_owner`, over the staff members known
    here) vouches only for chats with an owner here. Returns {"group_chats_dismissed": n,
    "stays_closed": n}."""
    group_ids, closed = _dismiss(  # constant fragments only, values as parameters
        "kind = %(kind)s AND is_wecom_synced AND dismissed_at IS NULL"  # noqa: S608
        " AND id NOT IN (SELECT group_id FROM crm_wecomsyncseenchat WHERE run_id = %(run_id)s)"
        " AND NOT (external_id = ANY(%(skipped)s::text[]))"
        + (" AND owner_id IS NOT NULL" if is_by_owner else ""),
        {
            "kind": GroupKind.WECOM_GROUP.value,
            "run_id": run_id,
            "skipped": list(skipped_chat_ids),
            "at": dismissed_at,
        },
    )
    if group_ids:
        logger.info(
            "wecom.group_chats_missing_dismissed",
            extra={"actor": actor, "dismissed_count": len(group_ids), "closed_count": closed},
        )
    return {"group_chats_dismissed": len(group_ids), "stays_closed": closed}


# --- callbacks ---


def _chat_read(chat_id: str) -> Mapping[str, Any] | None:
    """groupchat/get's `group_chat`, or None when WeCom says the chat is gone or out of the
    app's sight (logged)."""
    try:
        answer = wecom_call(wecom_client().external_contact_group_chat.get, chat_id)
    except WeChatClientException as error:
        if error.errcode not in (ERRCODE_CHAT_NOT_FOUND, ERRCODE_NO_PRIVILEGE):
            raise
        logger.info("wecom.group_chat_unreadable", extra={"errcode": error.errcode})
        return None
    group_chat = answer.get("group_chat")
    return group_chat if isinstance(group_chat, Mapping) and group_chat.get("chat_id") else None


@handles(EVENT_CHANGE_EXTERNAL_CHAT, "create", "update")
def group_chat_changed(event: CallbackEvent) -> str:
    """A chat was created or changed (members, owner, name, notice): its details are read from
    WeCom (the event's UpdateDetail and MemChangeList say what changed, the details say what
    is) and applied as observed at the event's time, so members gone leave then."""
    chat_id = str(event.fields.get("ChatId") or "")
    if not chat_id:
        return "ignored"
    known = Group.objects.filter(kind=GroupKind.WECOM_GROUP, external_id=chat_id).first()
    if known is not None and _is_stale(known, event.event_at):
        # Saves the call: the same check runs again under the group's lock.
        return "ignored"
    group_chat = _chat_read(chat_id)
    if group_chat is None:
        # Dismissed meanwhile (its dismiss event applies, or the nightly run finds it gone),
        # or not the app's to see.
        return "ignored"
    outcome = group_chat_apply(group_chat=group_chat, observed_at=event.event_at, actor=ACTOR)
    logger.info(
        "wecom.group_chat_changed",
        extra={
            "event_id": event.event_id,
            "group_id": outcome.group_id,
            "update_detail": str(event.fields.get("UpdateDetail") or ""),
            "stays_opened": outcome.stays_opened,
            "stays_closed": outcome.stays_closed,
        },
    )
    return "applied" if outcome.is_changed else "ignored"


@handles(EVENT_CHANGE_EXTERNAL_CHAT, "dismiss")
def group_chat_dismissed(event: CallbackEvent) -> str:
    chat_id = str(event.fields.get("ChatId") or "")
    if not chat_id:
        return "ignored"
    outcome = group_chat_dismiss(chat_id=chat_id, dismissed_at=event.event_at, actor=ACTOR)
    return "applied" if outcome.is_changed else "ignored"


# --- full sync ---


def _chat_sync(context: SyncContext, chat_id: str) -> bool:
    """Read one listed chat and apply it, its changes counted with its writes; False when the
    app may not read it (60011)."""
    try:
        answer = wecom_call(context.client.external_contact_group_chat.get, chat_id)
    except WeChatClientException as error:
        if error.errcode == ERRCODE_NO_PRIVILEGE:
            return False
        if error.errcode != ERRCODE_CHAT_NOT_FOUND:
            raise
        answer = {}  # dismissed since it was listed
    observed_at = timezone.now()
    group_chat = answer.get("group_chat")
    with transaction.atomic():
        if group_chat:
            outcome = group_chat_apply(group_chat=group_chat, observed_at=observed_at, actor=ACTOR)
        else:
            outcome = group_chat_dismiss(chat_id=chat_id, dismissed_at=observed_at, actor=ACTOR)
        if outcome.is_changed:
            context.count(outcome.changes)
        if outcome.group_id is not None:
            WeComSyncSeenChat.objects.bulk_create(
                [WeComSyncSeenChat(run_id=context.run.pk, group_id=outcome.group_id)],
                ignore_conflicts=True,
            )
    return True


def _owner_batches() -> list[list[str]]:
    """The staff members known here (the contacts scope, walked first, brings every staff
    member with customer contact), in batches of the owner filter's size."""
    userids = sorted(StaffMember.objects.values_list("wecom_userid", flat=True))
    return [userids[i : i + OWNER_FILTER_MAX] for i in range(0, len(userids), OWNER_FILTER_MAX)]


@sync_step("groups")
def groups_sync(context: SyncContext) -> None:
    """Every chat WeCom lists, page by page (groupchat/list), each read with groupchat/get and
    applied as observed when read; then the chats here that the walk did not see are
    dismissed (their dismiss event never came). Chats the app may not read (60011) are
    skipped and counted, and not taken for dismissed. When WeCom wants an owner filter
    (81017: the app sees more than 1000 staff members), the list is walked owner batch by
    owner batch.

    Each chat is applied in its own transaction (a page of new customers in one would hold an
    advisory lock per new identity, past PostgreSQL's lock table); the cursor moves past a page
    once all its chats are applied, so a crash repeats at most a page, whose chats applied
    already then change nothing."""
    place = context.cursor("groups")
    batches = _owner_batches() if "owner_batch" in place else []
    while not place.get("listed_all"):
        batch = place.get("owner_batch")
        if batch is not None and batch >= len(batches):
            place = {**place, "listed_all": True}
            break
        try:
            page = wecom_call(
                context.client.external_contact_group_chat.list,
                status_filter=0,
                owner_userid_list=None if batch is None else batches[batch],
                cursor=place.get("next") or None,
                limit=GROUPCHAT_PAGE_SIZE,
            )
        except WeChatClientException as error:
            if error.errcode != ERRCODE_OWNER_FILTER_REQUIRED or batch is not None:
                raise
            batches = _owner_batches()
            place = {**place, "owner_batch": 0, "next": ""}
            continue
        chat_ids = [
            str(e["chat_id"]) for e in page.get("group_chat_list") or [] if e.get("chat_id")
        ]
        context.expect(len(chat_ids))
        unreadable = [chat_id for chat_id in chat_ids if not _chat_sync(context, chat_id)]
        next_cursor = str(page.get("next_cursor") or "")
        place = {
            **place,
            "next": next_cursor,
            "skipped": sorted({*place.get("skipped", []), *unreadable}),
        }
        if not next_cursor and batch is not None:
            place["owner_batch"] = batch + 1
        place["listed_all"] = not next_cursor and (batch is None or batch + 1 >= len(batches))
        with transaction.atomic():
            context.cursor_save("groups", place)
            context.count({"group_chats_skipped": len(unreadable)}, items_read=len(chat_ids))
    with transaction.atomic():
        # A chat not seen in this run (a resumed run too) is taken for dismissed at its start.
        context.count(
            group_chats_missing_dismiss(
                run_id=context.run.pk,
                skipped_chat_ids=place.get("skipped", []),
                dismissed_at=context.run.started_at,
                actor=ACTOR,
                is_by_owner="owner_batch" in place,
            )
        )
        WeComSyncSeenChat.objects.filter(run_id=context.run.pk).delete()
