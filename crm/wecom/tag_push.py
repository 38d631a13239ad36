"""Tags both ways between WeCom's corp tags and ours: to WeCom. The tag changes made here that
crm.services.tags recorded (WeComTagPush, pending) are pushed with `mark_tag` on each of the
customer's open relations, in batches of customers, by the task `crm.wecom_tag_push` (queued
after each change, and swept every five minutes by beat).

- Per relation only what differs from the tags WeCom has there (WeComFollow.wecom_tag_ids) is
  sent; on success the relation's tags are updated as WeCom now has them, so the callback or
  nightly sync that reports the change back finds nothing to change (no loop). A give then a
  take-away before the push is one waiting row, the latter (crm.services.tags), and sends
  nothing where WeCom never had the tag.
- 84061 (not this staff member's customer), 60011 (outside the app's visible range) and 40068
  (the tag is gone from WeCom) fail the change for good, with the code kept; any other refusal
  or a network error leaves it waiting, its attempts counted, for the next sweep, and fails it
  after MAX_ATTEMPTS.
- A row is finished only if it is still the intent that was pushed (same action and time):
  a newer intent recorded meanwhile stays waiting for the next pass. No lock is held while
  WeCom answers; two senders at once may send a change twice, which WeCom takes as one."""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import requests
from django.conf import settings
from django.db import connection, transaction
from django.utils.translation import gettext as _
from wechatpy.exceptions import WeChatClientException

from crm.models import TagPushAction, TagPushStatus, WeComTagPush
from crm.personal_data import decrypt
from crm.wecom.client import (
    ERRCODE_NO_PRIVILEGE,
    ERRCODE_NOT_EXTERNAL_CONTACT,
    WeComClient,
    errcode_of,
    wecom_call,
    wecom_client,
)
from crm.wecom.tags import ERRCODE_INVALID_TAG_ID

logger = logging.getLogger(__name__)

# Customers per batch: their waiting rows, relations and identities are read in one query each.
BATCH_CUSTOMERS = 200
# Passes over what is waiting per run: a change recorded while a pass runs is taken by the
# next one, up to this many (then by the next run).
MAX_PASSES = 5
# Sweeps (every five minutes) before a change WeCom keeps refusing for now is given up.
MAX_ATTEMPTS = 20
PERMANENT_ERRCODES = frozenset(
    {ERRCODE_NOT_EXTERNAL_CONTACT, ERRCODE_NO_PRIVILEGE, ERRCODE_INVALID_TAG_ID}
)

# error_code of a change that could not be pushed for a reason of ours.
ERROR_NO_RELATION = "no_relation"  # the customer has no open relation any more
ERROR_NO_IDENTITY = "no_wecom_identity"  # no external_userid known for the customer
ERROR_NOT_MIRRORED = "not_mirrored"  # the group's mirroring was switched off meanwhile
ERROR_NETWORK = "network"


def push_error_label(code: str) -> str:
    """Why a change was not (yet) pushed, in the operator's words ("" when it went through)."""
    labels = {
        str(ERRCODE_NOT_EXTERNAL_CONTACT): _("No longer this staff member's customer in WeCom"),
        str(ERRCODE_NO_PRIVILEGE): _("The staff member is outside the app's visible range"),
        str(ERRCODE_INVALID_TAG_ID): _("The tag no longer exists in WeCom"),
        ERROR_NO_RELATION: _("The customer has no WeCom relation any more"),
        ERROR_NO_IDENTITY: _("No WeCom identity is known for the customer"),
        ERROR_NOT_MIRRORED: _("The tag group is no longer mirrored to WeCom"),
        ERROR_NETWORK: _("WeCom could not be reached"),
    }
    if not code:
        return ""
    return labels.get(code) or _("WeCom refused (error %(code)s)") % {"code": code}


@dataclass
class _Row:
    id: int
    tag_id: int
    action: str
    created_at: datetime
    wecom_tag_id: str | None
    is_mirrored: bool


@dataclass
class _Relation:
    id: int
    userid: str
    wecom_tag_ids: list[str]


@dataclass
class _Outcome:
    status: str = TagPushStatus.DONE
    error_code: str = ""
    pushed_relations: list[int] = field(default_factory=list)
    calls: int = 0


def wecom_tag_pushes_send(*, client: WeComClient | None = None) -> dict[str, int]:
    """Push every waiting tag change; returns counts of changes by outcome ("done", "failed",
    "pending": to be retried) and of mark_tag "calls" (kinds with 0 left out). Safe to run
    twice, or two at once."""
    client = client or wecom_client()
    totals: Counter[str] = Counter()
    for _pass in range(MAX_PASSES):
        after = 0
        while customers := _customers_waiting(after=after):
            totals.update(_batch_push(client, customers))
            after = customers[-1]
        # Another pass only for changes recorded meanwhile (a retry waits for the next run).
        if not WeComTagPush.objects.filter(status=TagPushStatus.PENDING, attempts=0).exists():
            break
    if totals:
        logger.info("wecom.tag_pushes_sent", extra=dict(totals))
    return dict(totals)


def _customers_waiting(*, after: int) -> list[int]:
    with connection.cursor() as cursor:
        # Index wecom_tag_push_one_pending (customer, tag) WHERE pending, in its order.
        cursor.execute(
            """
            SELECT DISTINCT customer_id FROM crm_wecomtagpush
            WHERE status = 'pending' AND customer_id > %s
            ORDER BY customer_id LIMIT %s
            """,
            [after, BATCH_CUSTOMERS],
        )
        return [row[0] for row in cursor.fetchall()]


def _batch_push(client: WeComClient, customers: list[int]) -> Counter[str]:
    rows: dict[int, list[_Row]] = {}
    relations: dict[int, list[_Relation]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT p.customer_id, p.id, p.tag_id, p.action, p.created_at, t.wecom_tag_id,
                   g.is_wecom_mirrored
            FROM crm_wecomtagpush p
            JOIN crm_tag t ON t.id = p.tag_id
            JOIN crm_taggroup g ON g.id = t.group_id
            WHERE p.customer_id = ANY(%s::bigint[]) AND p.status = 'pending'
            ORDER BY p.customer_id, p.id
            """,
            [customers],
        )
        for customer_id, *values in cursor.fetchall():
            rows.setdefault(customer_id, []).append(_Row(*values))
        cursor.execute(
            """
            SELECT f.customer_id, f.id, s.wecom_userid, f.wecom_tag_ids
            FROM crm_wecomfollow f
            JOIN crm_staffmember s ON s.id = f.staff_member_id
            WHERE f.customer_id = ANY(%s::bigint[]) AND f.deleted_at IS NULL
            ORDER BY f.customer_id, s.wecom_userid
            """,
            [customers],
        )
        for customer_id, *values in cursor.fetchall():
            relations.setdefault(customer_id, []).append(_Relation(*values))
        cursor.execute(
            """
            SELECT DISTINCT ON (customer_id) customer_id, value_encrypted FROM crm_identity
            WHERE customer_id = ANY(%s::bigint[]) AND provider = 'wecom' AND namespace = %s
            ORDER BY customer_id, id
            """,
            [customers, settings.WECOM_CORP_ID],
        )
        identities = dict(cursor.fetchall())
    counts: Counter[str] = Counter()
    for customer_id in customers:
        if customer_id not in rows:
            continue
        token = identities.get(customer_id)
        outcome = _customer_push(
            client,
            customer_id=customer_id,
            rows=rows[customer_id],
            relations=relations.get(customer_id, []),
            external_userid=decrypt(token) if token else None,
        )
        _finish(rows[customer_id], relations.get(customer_id, []), outcome)
        if outcome.calls:
            counts["calls"] += outcome.calls
        counts[str(outcome.status)] += len(rows[customer_id])
    return counts


def _customer_push(
    client: WeComClient,
    *,
    customer_id: int,
    rows: Sequence[_Row],
    relations: Sequence[_Relation],
    external_userid: str | None,
) -> _Outcome:
    # A row whose group is no longer mirrored (or whose tag left WeCom) fails in _finish.
    pushable = [row for row in rows if row.is_mirrored and row.wecom_tag_id]
    if not pushable:
        return _Outcome(TagPushStatus.FAILED, ERROR_NOT_MIRRORED)
    if external_userid is None:
        return _Outcome(TagPushStatus.FAILED, ERROR_NO_IDENTITY)
    if not relations:
        return _Outcome(TagPushStatus.FAILED, ERROR_NO_RELATION)
    adds = {r.wecom_tag_id for r in pushable if r.action == TagPushAction.ADD}
    removals = {r.wecom_tag_id for r in pushable if r.action == TagPushAction.REMOVE}
    outcome = _Outcome()
    for relation in relations:
        held = set(relation.wecom_tag_ids)
        add_tag = sorted(w for w in adds if w and w not in held)
        remove_tag = sorted(w for w in removals if w and w in held)
        if not add_tag and not remove_tag:
            continue
        outcome.calls += 1
        try:
            wecom_call(
                client.external_contact.mark_tag,
                relation.userid,
                external_userid,
                add_tag=add_tag,
                remove_tag=remove_tag,
            )
        except WeChatClientException as error:
            errcode = errcode_of(error)
            if errcode in PERMANENT_ERRCODES:
                outcome.status = TagPushStatus.FAILED
                outcome.error_code = outcome.error_code or str(errcode)
                continue
            outcome.status = TagPushStatus.PENDING
            outcome.error_code = str(errcode)
            break
        except requests.RequestException:
            outcome.status = TagPushStatus.PENDING
            outcome.error_code = ERROR_NETWORK
            break
        outcome.pushed_relations.append(relation.id)
    logger.info(
        "wecom.tag_push",
        extra={
            "customer_id": customer_id,
            "push_ids": [row.id for row in rows],
            "status": str(outcome.status),
            "errcode": outcome.error_code,
            "calls": outcome.calls,
        },
    )
    return outcome


@transaction.atomic
def _finish(rows: Sequence[_Row], relations: Sequence[_Relation], outcome: _Outcome) -> None:
    """Record the relations' tags as WeCom now has them and the rows' outcome, unless a row
    was replaced by a newer intent meanwhile."""
    pushable = [row for row in rows if row.is_mirrored and row.wecom_tag_id]
    with connection.cursor() as cursor:
        if outcome.pushed_relations:
            adds = sorted({r.wecom_tag_id or "" for r in pushable if r.action == "add"})
            removals = sorted({r.wecom_tag_id or "" for r in pushable if r.action == "remove"})
            # The relation's tags in their order, less the removed, then the added.
            cursor.execute(
                """
                UPDATE crm_wecomfollow f SET updated_at = now(), wecom_tag_ids = ARRAY(
                    SELECT u.tag FROM (
                        SELECT tag, n FROM unnest(f.wecom_tag_ids) WITH ORDINALITY AS o(tag, n)
                        WHERE NOT tag = ANY(%(removals)s::varchar[])
                        UNION ALL
                        SELECT tag, 1000000 + n
                        FROM unnest(%(adds)s::varchar[]) WITH ORDINALITY AS a(tag, n)
                        WHERE NOT tag = ANY(f.wecom_tag_ids)
                    ) AS u ORDER BY u.n
                )
                WHERE f.id = ANY(%(relations)s::bigint[])
                """,
                {"adds": adds, "removals": removals, "relations": outcome.pushed_relations},
            )
        statuses: list[str] = []
        codes: list[str] = []
        for row in rows:
            if not (row.is_mirrored and row.wecom_tag_id):
                statuses.append(TagPushStatus.FAILED)
                codes.append(ERROR_NOT_MIRRORED)
            else:
                statuses.append(outcome.status)
                codes.append(outcome.error_code)
        cursor.execute(
            """
            UPDATE crm_wecomtagpush p
            SET attempts = p.attempts + 1,
                status = CASE WHEN v.status = 'pending' AND p.attempts + 1 >= %(max_attempts)s
                              THEN 'failed' ELSE v.status END,
                error_code = v.error_code,
                finished_at = CASE WHEN v.status = 'pending'
                                    AND p.attempts + 1 < %(max_attempts)s
                                   THEN NULL ELSE now() END
            FROM unnest(%(ids)s::bigint[], %(actions)s::varchar[],
                        %(created)s::timestamptz[], %(statuses)s::varchar[],
                        %(codes)s::varchar[]) AS v(id, action, created_at, status, error_code)
            WHERE p.id = v.id AND p.status = 'pending' AND p.action = v.action
              AND p.created_at = v.created_at
            """,
            {
                "max_attempts": MAX_ATTEMPTS,
                "ids": [row.id for row in rows],
                "actions": [row.action for row in rows],
                "created": [row.created_at for row in rows],
                "statuses": [str(s) for s in statuses],
                "codes": codes,
            },
        )
