"""The two ends of each call a channel makes, which every channel adapter uses (dispatch runs
the adapters, see `campaigns.services.dispatch`):

- right before each post or WeCom call, on every attempt and every recovery path,
  `consent_hold` reads consent and keeps the call's customers locked until the post has
  returned: an opt-out answered before the post is honoured, and one arriving meanwhile is
  answered only after it;
- after it, `delivery_outcomes_record` records the outcomes the platform answered (a late or
  repeated answer changes nothing).
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, transaction

from campaigns.models import Channel, ChannelSend, DeliveryReason, DeliveryStatus
from crm.selectors.consents import opted_out_sql

logger = logging.getLogger(__name__)


# Of the deliveries about to be sent (%(ids)s; for a group-chat call, all those of the
# call), those whose customer opted out of the campaign's consent channel and, for a
# group-chat call, every delivery of their chats and of a chat someone joined since the
# reservation (no delivery of theirs in the call, so never judged): suppressed, in one
# statement. Consent read through index consent_unique_channel.
_CONSENT_CHECK_SQL = f"""
    WITH call AS (
        SELECT id, customer_id, group_id FROM campaigns_delivery
        WHERE id = ANY(%(ids)s) AND status = '{DeliveryStatus.RESERVED}'
    ),
    opted_out AS (
        SELECT c.id, c.group_id FROM call c
        WHERE EXISTS (SELECT 1 FROM ({opted_out_sql(channel_param="channel")}) AS co
                      WHERE co.customer_id = c.customer_id)
    ),
    joined AS (
        SELECT gm.group_id FROM crm_groupmembership gm
        WHERE %(is_by_chat)s AND gm.group_id IN (SELECT group_id FROM call)
          AND gm.left_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM call x WHERE x.group_id = gm.group_id
                          AND x.customer_id = gm.customer_id)
    )
    UPDATE campaigns_delivery d
    SET status = '{DeliveryStatus.SUPPRESSED}', channel_send_id = NULL, retry_at = NULL,
        reason = CASE WHEN d.id IN (SELECT id FROM opted_out) THEN %(opted_out)s
                      ELSE %(group_blocked)s END
    WHERE d.id IN (SELECT id FROM call)
      AND (d.id IN (SELECT id FROM opted_out)
           OR (%(is_by_chat)s AND (d.group_id IN (SELECT group_id FROM opted_out)
                                   OR d.group_id IN (SELECT group_id FROM joined))))
    RETURNING d.id
"""  # noqa: S608 - this module's SQL


@contextmanager
def consent_hold(
    *, send: ChannelSend, deliveries: list[dict[str, Any]]
) -> Iterator[list[dict[str, Any]]]:
    """Read consent for `deliveries` (rows of `dispatch.Attempt.deliveries`) right before the
    channel sends them, and yield those that may still go; the others are suppressed (opted
    out; for a group-chat call, their whole chat). Every channel calls it immediately before
    each post or WeCom call, on every attempt: nothing read at an earlier attempt is trusted.

    The promise is "no post after an opt-out was answered". An opt-out locks its customer's
    row (FOR UPDATE, `crm.services.consents.consent_record`) until it commits; here the
    call's customers are locked FOR KEY SHARE, in id order, by a statement of their own, and
    stay locked until the block exits, after the post. So either the opt-out committed
    first, and the consent read (a later statement, a newer snapshot) sees it; or it waits
    for the post to return before it is answered. Row locks, not advisory ones: a WeCom call
    holds up to 10,000 customers, beyond the shared lock table. KEY SHARE does not block
    profile updates (FOR NO KEY UPDATE), only what locks the row FOR UPDATE or deletes it.

    The block runs in one transaction, so what the channel records inside it commits (or,
    should the worker die, rolls back) with the suppressions; an opt-out waits at most for
    one post (WEBHOOK_TIMEOUT_SECONDS, or WeCom's 10 s)."""
    customer_ids = sorted({row["customer_id"] for row in deliveries})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM crm_customer WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
            [customer_ids],
        )
        cursor.execute(
            _CONSENT_CHECK_SQL,
            {
                "ids": [row["id"] for row in deliveries],
                "channel": send.campaign.consent_channel,
                "is_by_chat": send.channel == Channel.WECOM_GROUP,
                "opted_out": DeliveryReason.OPTED_OUT,
                "group_blocked": DeliveryReason.GROUP_BLOCKED,
            },
        )
        suppressed = {delivery_id for (delivery_id,) in cursor.fetchall()}
        if suppressed:
            logger.info(
                "channel_send.suppressed_at_send",
                extra={"channel_send_id": send.pk, "deliveries": len(suppressed)},
            )
        yield [row for row in deliveries if row["id"] not in suppressed]


def delivery_outcomes_record(
    rows: Sequence[tuple[int, str, str, datetime | None, str]],
) -> None:
    """Record channel outcomes, one statement: (delivery id, status, reason, sent_at, error).
    Only deliveries still in flight change, so a late or repeated answer changes nothing."""
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_delivery d SET status = r.status, reason = r.reason,
                   sent_at = coalesce(r.sent_at, d.sent_at), error = r.error
            FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::timestamptz[], %s::text[])
                 AS r(id, status, reason, sent_at, error)
            WHERE d.id = r.id AND d.id = ANY(%s) AND d.status IN ('reserved', 'submitted')
            """,
            [*(list(column) for column in zip(*rows, strict=True)), [row[0] for row in rows]],
        )
