"""Dispatch: hand reserved deliveries to their channel, each at most once.

1. The statement that reserves a batch of deliveries also writes the calls that will carry
   them (`ChannelSend` rows: one per WeCom task, i.e. one sender and one text, up to the
   channel's size; one per run of webhook posts) and assigns each delivery its call
   (`call_layout` says how a campaign's variants are laid out into calls). Nothing is
   rewritten to dispatch it: the task that follows the commit names calls, not deliveries.
2. Each call runs under a session advisory lock on its id, so only one worker runs it at a
   time; a worker that dies drops its connection and with it the lock, and the call, still
   `requested`, is picked up again by the next tick. Every attempt is recorded before the
   platform is called (`attempt_begin`). A call already attempted whose outcome is unknown is
   looked up before anything is sent again (see the channel modules).
3. Immediately before each post or WeCom call, on every attempt and every recovery path, the
   channel reads consent through `campaigns.services.channel_calls.consent_hold`, which keeps
   the call's customers locked until the post has returned: an opt-out answered before the
   post is honoured, and one arriving meanwhile is answered only after it.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.channels import channel_for
from campaigns.models import (
    Campaign,
    Channel,
    ChannelSend,
    ChannelSendState,
)
from campaigns.services.links import has_links, links_rewrite
from campaigns.services.templates import (
    CUSTOMER_VARIABLES,
    TEMPLATE_VARIABLES,
    template_render,
    template_variables,
)
from core.locks import Lock, session_lock

logger = logging.getLogger(__name__)


def orphan_after() -> timedelta:
    """How long after its last attempt a ChannelSend still `requested` is taken for one whose
    worker died (a running one holds its lock throughout). An attempt younger than this may
    still be reaching the platform (a killed worker's request in flight), so nothing is sent
    again before (CHANNEL_ORPHAN_SECONDS)."""
    return timedelta(seconds=settings.CHANNEL_ORPHAN_SECONDS)


def requeue_after() -> timedelta:
    """How long after it was written a ChannelSend never attempted is taken for one whose task
    was lost (CHANNEL_REQUEUE_SECONDS). Long: calls are written at reservation and wait in the
    queue behind a launch's backlog."""
    return timedelta(seconds=settings.CHANNEL_REQUEUE_SECONDS)


def _values_sql(variables: set[str]) -> str:
    """Columns answering the template variables a campaign's messages use, by name."""
    columns = {
        "display_name": "c.display_name",
        "city": "c.city",
        "province": "c.province",
        "member_level": "c.member_level",
        "owner_name": "coalesce(nullif(s.name, ''), s.wecom_userid)",
    }
    assert set(columns) == set(TEMPLATE_VARIABLES)
    return ", ".join(f"{columns[name]} AS {name}" for name in sorted(variables)) or "NULL"


@dataclass(frozen=True)
class CallLayout:
    """How a campaign's reserved deliveries are grouped into calls, per variant: up to `size`
    deliveries of one sender per call, all with `text`, or, when it is empty, with a text
    rendered at the first attempt; for a WeCom call, from customers who agree on the variant's
    `key_columns` (crm_customer columns), so that the text is one for the whole call."""

    variant_ids: list[int]
    sizes: list[int]
    texts: list[str]
    key_columns: dict[int, list[str]]
    is_by_chat: bool = False  # group chats per call, not deliveries

    def params(self) -> dict[str, Any]:
        return {
            "layout_variants": self.variant_ids,
            "layout_sizes": self.sizes,
            "layout_texts": self.texts,
        }


def call_layout(campaign: Campaign) -> CallLayout:
    """A WeCom task carries one text, whose links name the campaign and variant (not the
    delivery): a variant without variables is one text for everybody, written with the call;
    one with variables is one text per sender and values of the customer's variables it
    names (one call per customer for `display_name`, a few for `city`). Webhook posts each
    carry their own text, links naming the delivery, so any variant fills calls alike."""
    channel = channel_for(campaign.channel)
    layout = CallLayout(
        variant_ids=[],
        sizes=[],
        texts=[],
        key_columns={},
        is_by_chat=campaign.channel == Channel.WECOM_GROUP,
    )
    for variant_id, content in campaign.variants.order_by("id").values_list("pk", "content"):
        variables = template_variables(content)
        text = ""
        if not variables and channel.one_text_per_call:
            text = content
            if has_links(content):
                text = links_rewrite(
                    content, campaign_id=campaign.pk, variant_id=variant_id, delivery_id=None
                )
        if channel.one_text_per_call:
            layout.key_columns[variant_id] = [
                name for name in CUSTOMER_VARIABLES if name in variables
            ]
        layout.variant_ids.append(variant_id)
        layout.sizes.append(channel.size)
        layout.texts.append(text)
    return layout


# The deliveries of the call %s, read through index delivery_by_channel_send alone. OFFSET 0
# keeps the outer query's status test out of this scan: right after a launch the table's
# statistics still describe it empty, and the planner then also scans the partial index of
# counted sends (a million entries) for `status = 'reserved'`, 170 ms for each call.
_CALL_ROWS = "(SELECT * FROM campaigns_delivery WHERE channel_send_id = %s OFFSET 0)"


@dataclass(frozen=True)
class Attempt:
    """A call about to be made: the ChannelSend (its `attempts` counts this one) and its
    deliveries still to send: id, customer_id, variant_id, group_id, attempts, retry_at and
    text."""

    send: ChannelSend
    deliveries: list[dict[str, Any]]


def attempt_begin(*, channel_send_id: int, now: datetime | None = None) -> Attempt | None:
    """Record an attempt of a call still `requested` and not attempted within
    `orphan_after()`, and answer it (consent is read later, by `channel_calls.consent_hold`,
    right before the channel's call). None when the call is finished, was released (a pause),
    or was attempted too recently. One transaction: a pause either releases the call before
    it, or finds it attempted and leaves it to finish."""
    now = now or timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE campaigns_channelsend SET attempts = attempts + 1, attempted_at = %s
            WHERE id = %s AND state = 'requested'
              AND (attempted_at IS NULL OR attempted_at <= %s)
            RETURNING id
            """,
            [now, channel_send_id, now - orphan_after()],
        )
        if cursor.fetchone() is None:
            return None
        send = ChannelSend.objects.select_related("campaign", "sender").get(pk=channel_send_id)
        contents = dict(send.campaign.variants.values_list("pk", "content"))
        variables = set()
        if not send.content:
            variables = {name for text in contents.values() for name in template_variables(text)}
        # One text per WeCom call (links name the variant); a webhook post's names its delivery.
        is_per_delivery = not channel_for(send.channel).one_text_per_call
        cursor.execute(
            f"""
            SELECT d.id, d.customer_id, d.variant_id, d.group_id, d.attempts, d.retry_at,
                   {_values_sql(variables)}
            FROM {_CALL_ROWS} d
            JOIN crm_customer c ON c.id = d.customer_id
            LEFT JOIN crm_staffmember s ON s.id = d.sender_id
            WHERE d.status = 'reserved'
            ORDER BY d.id
            """,  # noqa: S608 - this module's SQL
            [send.pk],
        )
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    shared = send.content
    if not shared and rows and not is_per_delivery:
        # A WeCom call's customers agree on the values its text names: render it once.
        shared = _text_for(send, contents[rows[0]["variant_id"]], rows[0], is_per_delivery=False)
    for row in rows:
        row["text"] = shared or _text_for(
            send, contents[row["variant_id"]], row, is_per_delivery=True
        )
    return Attempt(send=send, deliveries=rows)


def _text_for(
    send: ChannelSend, content: str, row: dict[str, Any], *, is_per_delivery: bool
) -> str:
    """A delivery's text: its customer's values, its links naming it when `is_per_delivery`."""
    text = template_render(content, row)
    if has_links(text):
        text = links_rewrite(
            text,
            campaign_id=send.campaign_id,
            variant_id=row["variant_id"],
            delivery_id=row["id"] if is_per_delivery else None,
        )
    return text


def channel_send_run(*, channel_send_id: int) -> str | None:
    """Run one call unless another worker holds it, it is done, or it was attempted too
    recently. Answers its state afterwards (None when it was skipped)."""
    with session_lock(Lock.CHANNEL_SEND, channel_send_id) as is_taken:
        if not is_taken:
            return None
        attempt = attempt_begin(channel_send_id=channel_send_id)
        if attempt is None:
            logger.info("channel_send.skipped", extra={"channel_send_id": channel_send_id})
            return None
        channel_for(attempt.send.channel).run(attempt.send, attempt.deliveries)
        attempt.send.refresh_from_db(fields=["state"])
        return attempt.send.state


def channel_sends_run(*, channel_send_ids: Sequence[int]) -> int:
    """Run calls one after the other; answers how many ran."""
    return sum(
        channel_send_run(channel_send_id=send_id) is not None for send_id in channel_send_ids
    )


def channel_sends_release(*, campaign_id: int) -> int:
    """The campaign's calls not attempted yet are dropped, and their deliveries go back to
    pending (releasing what they took from the caps); answers the deliveries released. Calls
    already attempted are left to finish (see `attempt_begin` for the race)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH released AS (
                DELETE FROM campaigns_channelsend
                WHERE campaign_id = %s AND state = 'requested' AND attempts = 0
                RETURNING id
            )
            UPDATE campaigns_delivery SET status = 'pending', reserved_at = NULL,
                                          channel_send_id = NULL
            WHERE channel_send_id IN (SELECT id FROM released) AND status = 'reserved'
            """,
            [campaign_id],
        )
        return cursor.rowcount


def orphaned_channel_sends(
    *, now: datetime | None = None, after_id: int = 0, limit: int | None = None
) -> list[int]:
    """ChannelSends to run again, by id after `after_id` (a cursor; at most `limit`):
    attempted, unanswered and not attempted for `orphan_after()` (a dead worker's, or a
    webhook retry that is due), or never attempted for `requeue_after()` (a lost task); in
    both cases not queued again (`requeued_at`) within that same wait, so a call queued again
    and still waiting behind a backlog is not queued once more at every tick. A copy of one
    still running or queued skips it. Read through index channel_send_unanswered."""
    now = now or timezone.now()
    lost, orphaned = now - requeue_after(), now - orphan_after()
    candidates = (
        ChannelSend.objects.filter(state=ChannelSendState.REQUESTED, pk__gt=after_id)
        .filter(
            Q(attempted_at__isnull=True, requested_at__lte=lost)
            & (Q(requeued_at__isnull=True) | Q(requeued_at__lte=lost))
            | Q(attempted_at__lte=orphaned)
            & (Q(requeued_at__isnull=True) | Q(requeued_at__lte=orphaned))
        )
        .order_by("id")
        .values_list("pk", flat=True)
    )
    return list(candidates if limit is None else candidates[:limit])
