"""External contacts from WeCom as they change (change_external_contact callbacks) and as they
are (the full sync's `contacts` scope, with the nightly reconciliation of deletions WeCom never
told). Both apply through crm.wecom.contacts.

Handlers read the contact's current details (`externalcontact/get`) rather than trusting the
event alone, so an edit before its add, or the same event twice, applies the same state; a
contact that is nobody's any more (84061) has nothing to apply. Decisions:
- add_half_external_contact (the customer added a staff member who has not confirmed yet):
  applied as an add with what `get` returns; WeCom lists the relation only once it exists.
- The first touch (CustomerAcquisition) is recorded on add and half add, with the event's
  `State` (渠道参数), the staff member of `UserID` and the event time.
- transfer_fail (接替失败): the customer stays with the original staff member; their details are
  read again and applied, which changes nothing unless something else changed too.
- The sync walks staff members one at a time (`userid_list` of one): a staff member the app may
  not see (60011) is skipped and counted, and only the relations of staff members walked are
  reconciled; those of staff members no longer listed are left as they are.
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from wechatpy.exceptions import WeChatClientException

from crm.models import FollowDeletedBy, StaffMember, WeComSyncSeenFollow
from crm.services.customers import staff_members_ensure
from crm.wecom.acquisition import acquisition_record
from crm.wecom.client import (
    ERRCODE_NO_PRIVILEGE,
    ERRCODE_NOT_EXTERNAL_CONTACT,
    WeComClient,
    errcode_of,
    wecom_call,
    wecom_client,
)
from crm.wecom.contacts import (
    contact_details_parse,
    contacts_apply,
    follow_end,
    follows_end_unseen,
    follows_seen_record,
    staff_member_names_fill,
)
from crm.wecom.registry import CallbackEvent, SyncContext, handles, sync_step

logger = logging.getLogger(__name__)

EVENT = "change_external_contact"
ACTOR_CALLBACK = "wecom"
ACTOR_SYNC = "wecom_sync"
# batch/get_by_user answers at most 100 contacts a page.
PAGE_LIMIT = 100
ENDPOINT_BATCH_GET_BY_USER = "externalcontact/batch/get_by_user"

ADDS = ("add_external_contact", "add_half_external_contact")


def _field(event: CallbackEvent, name: str) -> str:
    value = event.fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _staff_names_learn(client: WeComClient, userids: Iterable[str]) -> None:
    """Name the staff members WeCom names and nobody named here yet (a call per staff member
    the first time only: later, they have a name)."""
    wanted = sorted(set(userids))
    staff_members_ensure(wanted)
    unnamed = StaffMember.objects.filter(wecom_userid__in=wanted, name="").values_list(
        "wecom_userid", flat=True
    )
    names: dict[str, str] = {}
    for userid in unnamed:
        try:
            names[userid] = str(wecom_call(client.user.get, userid).get("name") or "")
        except WeChatClientException:
            continue  # a name is a nicety: the staff member is known by userid
    staff_member_names_fill(names)


@handles(EVENT, "add_external_contact", "add_half_external_contact", "edit_external_contact")
def contact_changed(event: CallbackEvent) -> str:
    external_userid = _field(event, "ExternalUserID")
    if not external_userid:
        return "ignored"
    client = wecom_client()
    try:
        details = wecom_call(client.external_contact.get, external_userid)
    except WeChatClientException as error:
        if errcode_of(error) == ERRCODE_NOT_EXTERNAL_CONTACT:
            logger.info("wecom.contact_gone", extra={"event_id": event.event_id})
            return "ignored"
        raise
    contacts = contact_details_parse([details])
    if not contacts:
        return "ignored"
    _staff_names_learn(client, contacts[0].follows)
    with transaction.atomic():
        outcome = contacts_apply(
            contacts=contacts,
            observed_at=event.event_at,
            actor=ACTOR_CALLBACK,
            touch_observed_at=True,
        )
        customer_id = outcome.customer_ids.get(external_userid)
        userid = _field(event, "UserID")
        if event.change_type in ADDS and customer_id is not None and userid:
            follow = contacts[0].follows.get(userid)
            acquisition_record(
                customer_id=customer_id,
                state=_field(event, "State") or (follow.state if follow else ""),
                staff_member_id=staff_members_ensure([userid])[userid],
                acquired_at=event.event_at,
                actor=ACTOR_CALLBACK,
            )
    logger.info(
        "wecom.contact_applied",
        extra={"event_id": event.event_id, "customer_id": customer_id, **outcome.changes()},
    )
    return "applied"


@handles(EVENT, "del_external_contact", "del_follow_user")
def follow_deleted(event: CallbackEvent) -> str:
    external_userid, userid = _field(event, "ExternalUserID"), _field(event, "UserID")
    if not external_userid or not userid:
        return "ignored"
    deleted_by = (
        FollowDeletedBy.STAFF
        if event.change_type == "del_external_contact"
        else FollowDeletedBy.CUSTOMER
    )
    changed = follow_end(
        external_userid=external_userid,
        userid=userid,
        ended_at=event.event_at,
        deleted_by=deleted_by,
        actor=ACTOR_CALLBACK,
    )
    return "applied" if changed else "ignored"


@handles(EVENT, "transfer_fail")
def transfer_failed(event: CallbackEvent) -> str:
    logger.info("wecom.transfer_failed", extra={"event_id": event.event_id})
    return contact_changed(event)


# --- the full sync's contacts scope ---


def _staff_list(context: SyncContext) -> dict[str, Any]:
    """The walk's plan: the staff members with customer contact, those the app may not see,
    and how many relations to expect (for the progress)."""
    client = context.client
    answer = wecom_call(client.external_contact.get_follow_user_list)
    userids = sorted({u for u in answer.get("follow_user") or [] if isinstance(u, str) and u})
    skipped: list[str] = []
    expected = 0
    for userid in userids:
        try:
            listed = wecom_call(client.external_contact.list, userid)
        except WeChatClientException as error:
            if errcode_of(error) != ERRCODE_NO_PRIVILEGE:
                raise
            skipped.append(userid)
            continue
        expected += len(listed.get("external_userid") or [])
    _staff_names_learn(client, userids)
    with transaction.atomic():
        context.expect(expected)
        context.count({"staff_skipped_no_privilege": len(skipped)})
        place = {"userids": userids, "skipped": skipped, "index": 0, "cursor": ""}
        context.cursor_save("contacts", place)
    return place


@sync_step("contacts")
def contacts_sync(context: SyncContext) -> None:
    """Walk every staff member's customers by cursor, a page per transaction with the cursor
    saved in it; then end the relations not found."""
    place = context.cursor("contacts")
    if "userids" not in place:
        place = _staff_list(context)
    userids: list[str] = place["userids"]
    while place["index"] < len(userids):
        userid = userids[place["index"]]
        if userid in place["skipped"]:
            place = {**place, "index": place["index"] + 1, "cursor": ""}
            continue
        try:
            page = wecom_call(
                context.client.post,
                ENDPOINT_BATCH_GET_BY_USER,
                data={"userid_list": [userid], "cursor": place["cursor"], "limit": PAGE_LIMIT},
            )
        except WeChatClientException as error:
            if errcode_of(error) != ERRCODE_NO_PRIVILEGE:
                raise
            with transaction.atomic():
                place = {**place, "skipped": [*place["skipped"], userid]}
                context.count({"staff_skipped_no_privilege": 1})
                context.cursor_save("contacts", place)
            continue
        read_at = timezone.now()
        entries = page.get("external_contact_list") or []
        contacts = contact_details_parse(entries)
        next_cursor = page.get("next_cursor") or ""
        with transaction.atomic():
            outcome = contacts_apply(contacts=contacts, observed_at=read_at, actor=ACTOR_SYNC)
            follows_seen_record(run_id=context.run.pk, outcome=outcome, contacts=contacts)
            if next_cursor:
                place = {**place, "cursor": next_cursor}
            else:
                place = {**place, "index": place["index"] + 1, "cursor": ""}
            context.count(outcome.changes(), items_read=len(entries))
            context.cursor_save("contacts", place)
    if not place.get("reconciled"):
        walked = [u for u in userids if u not in place["skipped"]]
        with transaction.atomic():
            ended = follows_end_unseen(
                run_id=context.run.pk,
                staff_member_ids=list(
                    StaffMember.objects.filter(wecom_userid__in=walked).values_list("pk", flat=True)
                ),
                ended_at=context.run.started_at,
                actor=ACTOR_SYNC,
            )
            WeComSyncSeenFollow.objects.filter(run_id=context.run.pk).delete()
            context.count({"follows_ended": ended})
            context.cursor_save("contacts", {**place, "reconciled": True})
    logger.info("wecom.contacts_synced", extra={"sync_run_id": context.run.pk})
