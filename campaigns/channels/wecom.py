"""WeCom bulk messages (企业群发) through wechatpy: to customers (chat_type single) and to
customer group chats (chat_type group).

A ChannelSend is one `add_msg_template` call: one sender, one text, up to 10,000 customers,
or up to CHATS_PER_CALL group chats of one owner (all the deliveries of each chat's members).
Creating the task is not sending: the staff member confirms it in WeCom, and the results per
customer (sent, not a contact any more, refused by the platform's own limit) are polled later
(`wecom_results_poll`). The call's outcome is unknown when it timed out or the server failed;
before calling again, the platform's list of bulk messages is searched for it, so a customer is
never sent one message twice.
"""

import logging
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import connection
from django.utils import timezone
from wechatpy.exceptions import WeChatClientException

from campaigns.models import (
    Channel,
    ChannelSend,
    ChannelSendState,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.channel_calls import consent_hold, delivery_outcomes_record
from crm.personal_data import decrypt, hash_identity
from crm.wecom.client import WeComClient, wecom_client

logger = logging.getLogger(__name__)

MAX_RECEIVERS = 10_000  # external_userid per add_msg_template call (WeCom's limit)
# chat_id_list per call: WeCom takes 2,000; a call's deliveries are read at once, and a chat
# holds up to 500 members.
CHATS_PER_CALL = 200
# The platform's clock and ours may differ; a task created this long before the request was
# written is still taken for it when looking up an unknown outcome.
CLOCK_SKEW = timedelta(seconds=60)
# get_groupmsg_send_result status of one customer
RESULT_SENT = 1
RESULT_NOT_CONTACT = 2
RESULT_OVER_PLATFORM_CAP = 3


def _is_unknown_outcome(error: Exception) -> bool:
    """A timeout, a dropped connection or an HTTP error: the task may exist. An errcode is the
    server's refusal: it does not."""
    return isinstance(error, requests.RequestException) or (
        isinstance(error, WeChatClientException) and error.errcode is None
    )


class _WeComChannel(ABC):
    """A bulk message to targets, named in the request's `target_field`: customers'
    external_userids, or group chats' chat_ids."""

    one_text_per_call = True
    chat_type = ""
    target_field = ""
    size = 0

    @abstractmethod
    def targets(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> dict[int, str]:
        """Each delivery's target (by delivery id); a delivery without one is unreachable."""

    def body(self, send: ChannelSend, targets: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "chat_type": self.chat_type,
            self.target_field: targets,
            "text": {"content": send.content},
        }
        if send.sender is not None:
            body["sender"] = send.sender.wecom_userid
        return body

    def run(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> None:
        if not deliveries:
            _finish(send, ChannelSendState.FINISHED)
            return
        if not send.content:
            # A text of its own (one delivery): kept, so that a lookup can match it.
            send.content = deliveries[0]["text"]
            send.save(update_fields=["content"])
        client = wecom_client()
        targets = self.targets(send, deliveries)
        if send.attempts > 1:
            msgid = _find_created(client, send, set(targets.values()), self.chat_type)
            if msgid is not None:
                logger.info("wecom.send_found", extra={"channel_send_id": send.pk})
                _accepted(send, msgid, deliveries, fail_list=[], targets={})
                return
        # Consent read last, held across the call: see channel_calls.consent_hold.
        with consent_hold(send=send, deliveries=deliveries) as allowed:
            self._send(client, send, allowed, targets)

    def _send(
        self,
        client: WeComClient,
        send: ChannelSend,
        deliveries: list[dict[str, Any]],
        targets: dict[int, str],
    ) -> None:
        if not deliveries:
            _finish(send, ChannelSendState.FINISHED)
            return
        unreachable = [row["id"] for row in deliveries if row["id"] not in targets]
        delivery_outcomes_record(
            [(i, DeliveryStatus.FAILED, DeliveryReason.NO_IDENTITY, None, "") for i in unreachable]
        )
        if len(unreachable) == len(deliveries):
            _finish(send, ChannelSendState.FINISHED)
            return
        # dict.fromkeys: a chat is named once, however many of its members the call holds.
        named = dict.fromkeys(targets[row["id"]] for row in deliveries if row["id"] in targets)
        body = self.body(send, list(named))
        # The attempt was recorded before: from here on its outcome is unknown until answered.
        try:
            result = client.external_contact.add_msg_template(body)
        except (WeChatClientException, requests.RequestException) as error:
            if _is_unknown_outcome(error):
                logger.warning(
                    "wecom.send_unknown_outcome",
                    extra={"channel_send_id": send.pk, "error": type(error).__name__},
                )
                return  # stays requested: the next tick looks it up, then retries
            errcode = getattr(error, "errcode", None)
            logger.warning(
                "wecom.send_refused", extra={"channel_send_id": send.pk, "errcode": errcode}
            )
            delivery_outcomes_record(
                [
                    (
                        row["id"],
                        DeliveryStatus.FAILED,
                        DeliveryReason.CHANNEL_ERROR,
                        None,
                        f"errcode {errcode}",
                    )
                    for row in deliveries
                ]
            )
            _finish(send, ChannelSendState.FAILED, error=f"errcode {errcode}")
            return
        _accepted(
            send,
            result["msgid"],
            deliveries,
            fail_list=result.get("fail_list", []),
            targets=targets,
        )


class WeComCustomerChannel(_WeComChannel):
    chat_type = "single"
    target_field = "external_userid"
    size = MAX_RECEIVERS

    def targets(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> dict[int, str]:
        userids = _external_userids([row["customer_id"] for row in deliveries])
        return {
            row["id"]: userids[row["customer_id"]]
            for row in deliveries
            if row["customer_id"] in userids
        }


class WeComGroupChannel(_WeComChannel):
    """A message posted by a chat's owner (the call's sender) in the chats of the call's
    deliveries. A call without a sender (its owner's account was deleted since) reaches no
    chat: its deliveries fail as unreachable."""

    chat_type = "group"
    target_field = "chat_id_list"
    size = CHATS_PER_CALL

    def targets(self, send: ChannelSend, deliveries: list[dict[str, Any]]) -> dict[int, str]:
        if send.sender is None:
            return {}
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, external_id FROM crm_group WHERE id = ANY(%s) AND kind = 'wecom_group'",
                [sorted({row["group_id"] for row in deliveries if row["group_id"] is not None})],
            )
            chats = dict(cursor.fetchall())
        return {row["id"]: chats[row["group_id"]] for row in deliveries if row["group_id"] in chats}


def _external_userids(customer_ids: list[int]) -> dict[int, str]:
    """Each customer's WeCom external_userid in this corp (the oldest, if several), decrypted
    in memory only for the call."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT DISTINCT ON (customer_id) customer_id, value_encrypted FROM crm_identity
            WHERE customer_id = ANY(%s) AND provider = 'wecom' AND namespace = %s
            ORDER BY customer_id, id
            """,
            [customer_ids, settings.WECOM_CORP_ID],
        )
        return {customer_id: decrypt(token) for customer_id, token in cursor.fetchall()}


def _accepted(
    send: ChannelSend,
    msgid: str,
    deliveries: list[dict[str, Any]],
    *,
    fail_list: list[str],
    targets: dict[int, str],
) -> None:
    """The task exists: its deliveries wait for the staff member; those whose target WeCom
    refused at once (not the sender's contact) failed."""
    refused = set(fail_list)
    outcomes = [
        (
            row["id"],
            DeliveryStatus.FAILED
            if targets.get(row["id"]) in refused
            else DeliveryStatus.SUBMITTED,
            DeliveryReason.NOT_CONTACT if targets.get(row["id"]) in refused else "",
            None,
            "",
        )
        for row in deliveries
    ]
    delivery_outcomes_record(outcomes)
    now = timezone.now()
    send.state = ChannelSendState.ACCEPTED
    send.external_id = msgid
    send.answered_at = now
    send.next_poll_at = now + timedelta(seconds=settings.WECOM_POLL_SECONDS)
    send.save(update_fields=["state", "external_id", "answered_at", "next_poll_at"])
    logger.info(
        "wecom.send_accepted",
        extra={"channel_send_id": send.pk, "receivers": len(deliveries), "refused": len(refused)},
    )


def _finish(send: ChannelSend, state: str, *, error: str = "") -> None:
    send.state = state
    send.error = error
    send.answered_at = send.answered_at or timezone.now()
    send.next_poll_at = None
    send.save(update_fields=["state", "error", "answered_at", "next_poll_at"])


def _find_created(
    client: WeComClient, send: ChannelSend, targets: set[str], chat_type: str
) -> str | None:
    """The msgid of a task this send created in an attempt whose answer was lost: same text,
    created since the request was written, from the same sender, not taken by another send,
    and addressed to some of this send's targets only (a sender with many customers, or
    chats, has one text sent in several tasks, each to others)."""
    start = send.requested_at - CLOCK_SKEW
    entries = client.pages(
        "externalcontact/get_groupmsg_list_v2",
        {
            "chat_type": chat_type,
            "start_time": int(start.timestamp()),
            "end_time": int((timezone.now() + CLOCK_SKEW).timestamp()),
            "filter_type": 2,
        },
        "group_msg_list",
    )
    candidates = [
        entry["msgid"] for entry in entries if entry.get("text", {}).get("content") == send.content
    ]
    taken = set(
        ChannelSend.objects.filter(external_id__in=candidates).values_list("external_id", flat=True)
    )
    for msgid in candidates:
        if msgid in taken:
            continue
        senders = {
            task["userid"]
            for task in client.pages(
                "externalcontact/get_groupmsg_task", {"msgid": msgid}, "task_list"
            )
        }
        if send.sender is not None:
            if send.sender.wecom_userid not in senders:
                continue
            senders = {send.sender.wecom_userid}
        addressed = {
            entry[_TARGET_FIELD[chat_type]]
            for userid in senders
            for entry in client.pages(
                "externalcontact/get_groupmsg_send_result",
                {"msgid": msgid, "userid": userid},
                "send_list",
            )
        }
        if addressed and addressed <= targets:
            return str(msgid)
    return None


# The field naming a receiver in get_groupmsg_send_result, per chat_type.
_TARGET_FIELD = {"single": "external_userid", "group": "chat_id"}


def wecom_results_poll(*, send: ChannelSend, now: datetime | None = None) -> int:
    """Collect the per-customer (or per-chat) results of an accepted task; answers deliveries
    settled. A task its staff member has not confirmed in WECOM_CONFIRM_HOURS is given up (its
    deliveries fail as unconfirmed and stop counting toward caps)."""
    now = now or timezone.now()
    client = wecom_client()
    field = _TARGET_FIELD["group" if send.channel == Channel.WECOM_GROUP else "single"]
    results: list[tuple[str, int, int | None]] = []  # target, status, send_time
    for task in client.pages(
        "externalcontact/get_groupmsg_task", {"msgid": send.external_id}, "task_list"
    ):
        if task.get("status") != 2:  # the sender has not sent it yet
            continue
        for entry in client.pages(
            "externalcontact/get_groupmsg_send_result",
            {"msgid": send.external_id, "userid": task["userid"]},
            "send_list",
        ):
            results.append((entry[field], entry["status"], entry.get("send_time")))
    settled = _record_results(send, results)
    remaining = send.deliveries.filter(status=DeliveryStatus.SUBMITTED)
    if not remaining.exists():
        _finish(send, ChannelSendState.FINISHED)
    elif now - send.requested_at > timedelta(hours=settings.WECOM_CONFIRM_HOURS):
        settled += remaining.update(status=DeliveryStatus.FAILED, reason=DeliveryReason.UNCONFIRMED)
        _finish(send, ChannelSendState.FINISHED)
    else:
        send.next_poll_at = now + timedelta(seconds=settings.WECOM_POLL_SECONDS)
        send.save(update_fields=["next_poll_at"])
    return settled


def _record_results(send: ChannelSend, results: list[tuple[str, int, int | None]]) -> int:
    """Match results to deliveries: by the keyed hash of the external_userid, or a chat's
    result to all its members' deliveries."""
    outcome = {
        RESULT_SENT: (DeliveryStatus.SENT, ""),
        RESULT_NOT_CONTACT: (DeliveryStatus.FAILED, DeliveryReason.NOT_CONTACT),
        RESULT_OVER_PLATFORM_CAP: (DeliveryStatus.FAILED, DeliveryReason.PLATFORM_CAP),
    }
    final = [(eid, status, at) for eid, status, at in results if status in outcome]
    if not final:
        return 0
    if send.channel == Channel.WECOM_GROUP:  # a chat's result settles all its members'
        targets = [eid for eid, _s, _t in final]
        match = """JOIN crm_group g  -- index group_unique_external
                 ON g.kind = 'wecom_group' AND g.external_id = r.target
            WHERE d.group_id = g.id"""
        params: list[Any] = []
    else:
        targets = [hash_identity("wecom", settings.WECOM_CORP_ID, eid) for eid, _s, _t in final]
        match = """JOIN crm_identity i  -- index identity_unique
                 ON i.provider = 'wecom' AND i.namespace = %s AND i.value_hash = r.target
            WHERE d.customer_id = i.customer_id"""
        params = [settings.WECOM_CORP_ID]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE campaigns_delivery d SET status = r.status, reason = r.reason,
                   sent_at = r.sent_at
            FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[])
                 AS r(target, status, reason, sent_at)
            {match} AND d.channel_send_id = %s AND d.status = 'submitted'
            """,  # noqa: S608 - this module's SQL
            [
                targets,
                [outcome[status][0] for _e, status, _t in final],
                [outcome[status][1] for _e, status, _t in final],
                [datetime.fromtimestamp(at, tz=UTC) if at else None for _e, _s, at in final],
                *params,
                send.pk,
            ],
        )
        return cursor.rowcount
