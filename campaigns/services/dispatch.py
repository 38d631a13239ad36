"""Dispatch: hand reserved deliveries to their channel, each at most once.

1. Claim (one transaction): the batch's reserved rows are locked (SKIP LOCKED, so a second
   copy of the same task claims nothing), consent is checked one last time (an opt-out that
   arrived after planning wins), and the rest become `sending` and are grouped into
   `ChannelSend` rows: one per WeCom call (one sender, one text), one per webhook batch.
2. Run each ChannelSend under a session advisory lock on its id, so that only one worker runs
   it at a time; a worker that dies drops its connection and with it the lock, and the
   ChannelSend, still `requested`, is picked up again by the next tick. A call already
   attempted whose outcome is unknown is looked up before anything is sent again (see the
   channel modules).
"""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.models import (
    Campaign,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.campaigns import TEMPLATE_VARIABLES, template_render, template_variables
from campaigns.services.links import has_links, links_rewrite
from campaigns.services.reservation import NO_JIT_SQL

logger = logging.getLogger(__name__)


def orphan_after() -> timedelta:
    """How long after it was written, or last attempted, a ChannelSend still `requested` with
    nobody holding its lock is taken for one whose worker died (a running one holds the lock
    throughout). An attempt younger than this may still be reaching the platform (a killed
    worker's request in flight), so nothing is sent again before (CHANNEL_ORPHAN_SECONDS)."""
    return timedelta(seconds=settings.CHANNEL_ORPHAN_SECONDS)


_LOCK_NAMESPACE = 0x43_53  # "CS": keeps these advisory keys apart from other users


@contextmanager
def channel_send_lock(channel_send_id: int) -> Iterator[bool]:
    """Try the session-level lock of one ChannelSend; yields whether it was taken."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LOCK_NAMESPACE, channel_send_id])
        (is_taken,) = cursor.fetchone()
    try:
        yield bool(is_taken)
    finally:
        if is_taken:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [_LOCK_NAMESPACE, channel_send_id]
                )


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


def deliveries_claim(*, campaign_id: int, delivery_ids: Sequence[int]) -> list[int]:
    """Step 1: claim what is still reserved among `delivery_ids` and group it into channel
    calls; answer the ids of the ChannelSends to run (new ones and unfinished ones of these
    deliveries, e.g. when a worker died after claiming). One statement locks and reads the
    batch, one writes each delivery's claim (its status, and its call or its opt-out)."""
    from campaigns.channels import channel_for

    now = timezone.now()
    with transaction.atomic():
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            return []
        contents = dict(campaign.variants.values_list("pk", "content"))
        variables = {name for text in contents.values() for name in template_variables(text)}
        with connection.cursor() as cursor:
            cursor.execute(NO_JIT_SQL)
            cursor.execute(
                f"""
                WITH batch AS (
                    SELECT id, customer_id, variant_id, sender_id FROM campaigns_delivery
                    WHERE id = ANY(%(ids)s) AND status = 'reserved'
                    ORDER BY id
                    FOR UPDATE SKIP LOCKED
                )
                SELECT b.id, b.variant_id, b.sender_id,
                       (SELECT TRUE FROM crm_consent co  -- index consent_unique_channel
                        WHERE co.customer_id = b.customer_id
                          AND co.channel = %(consent)s AND co.status = 'opted_out') IS NOT NULL
                           AS is_opted_out,
                       {_values_sql(variables)}
                FROM batch b
                JOIN crm_customer c ON c.id = b.customer_id
                LEFT JOIN crm_staffmember s ON s.id = b.sender_id
                ORDER BY b.id
                """,  # noqa: S608 - the columns are this module's
                {"ids": list(delivery_ids), "consent": campaign.consent_channel},
            )
            names = [column.name for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            opted_out = [row["id"] for row in rows if row["is_opted_out"]]
            claimed = [row for row in rows if not row["is_opted_out"]]
            links = _group_into_sends(campaign, channel_for(campaign.channel), contents, claimed)
            cursor.execute(
                """
                UPDATE campaigns_delivery d SET
                    status = CASE WHEN l.send_id IS NULL THEN 'suppressed' ELSE 'sending' END,
                    reason = CASE WHEN l.send_id IS NULL THEN %s ELSE d.reason END,
                    channel_send_id = l.send_id, claimed_at = %s
                FROM unnest(%s::bigint[], %s::bigint[]) AS l(id, send_id)
                WHERE d.id = l.id AND d.id = ANY(%s)  -- the primary key, not a scan
                """,
                [
                    DeliveryReason.OPTED_OUT,
                    now,
                    [*opted_out, *(d for d, _s in links)],
                    [*(None for _ in opted_out), *(s for _d, s in links)],
                    [*opted_out, *(d for d, _s in links)],
                ],
            )
        # Two steps: by the deliveries' primary key first, which a join would not use.
        send_ids = set(
            Delivery.objects.filter(pk__in=list(delivery_ids), channel_send__isnull=False)
            .values_list("channel_send_id", flat=True)
            .distinct()
        )
        return sorted(
            ChannelSend.objects.filter(
                pk__in=send_ids, state=ChannelSendState.REQUESTED
            ).values_list("pk", flat=True)
        )


def _group_into_sends(
    campaign: Campaign,
    channel: Any,
    contents: dict[int, str],
    rows: list[dict[str, Any]],
) -> list[tuple[int, int]]:
    """Write the ChannelSends of the claimed `rows` (one per sender and text, split as the
    channel takes them); answer (delivery id, ChannelSend id) for each."""
    # A text addressed to one customer anyway carries its delivery in its tracked links.
    per_customer = {
        pk: not channel.groups_by_sender or bool(template_variables(content))
        for pk, content in contents.items()
    }
    groups: dict[tuple[int | None, str], list[int]] = {}
    for row in rows:
        variant_id = row["variant_id"]
        text = template_render(contents[variant_id], row)
        if has_links(text):
            text = links_rewrite(
                text,
                campaign_id=campaign.pk,
                variant_id=variant_id,
                delivery_id=row["id"] if per_customer[variant_id] else None,
            )
        sender = row["sender_id"] if channel.groups_by_sender else None
        groups.setdefault((sender, text), []).append(row["id"])
    parts = [
        (sender_id, text, part)
        for (sender_id, text), delivery_ids in groups.items()
        for part in channel.split(delivery_ids)
    ]
    now = timezone.now()
    sends = ChannelSend.objects.bulk_create(
        ChannelSend(
            campaign=campaign,
            channel=campaign.channel,
            sender_id=sender_id,
            content=text,
            requested_at=now,
        )
        for sender_id, text, _part in parts
    )
    return [
        (delivery_id, send.pk)
        for send, (_sender, _text, part) in zip(sends, parts, strict=True)
        for delivery_id in part
    ]


def channel_send_run(*, channel_send_id: int) -> str | None:
    """Step 2: run one ChannelSend unless another worker holds it or it is done. Answers its
    state afterwards (None when it was skipped)."""
    from campaigns.channels import channel_for

    with channel_send_lock(channel_send_id) as is_taken:
        if not is_taken:
            return None
        send = (
            ChannelSend.objects.select_related("campaign", "sender")
            .filter(pk=channel_send_id)
            .first()
        )
        if send is None or send.state != ChannelSendState.REQUESTED:
            return None
        if send.attempted_at is not None and send.attempted_at > timezone.now() - orphan_after():
            logger.info("channel_send.attempt_too_recent", extra={"channel_send_id": send.pk})
            return None
        channel_for(send.channel).run(send)
        send.refresh_from_db(fields=["state"])
        return send.state


def deliveries_dispatch(*, campaign_id: int, delivery_ids: Sequence[int]) -> int:
    """Claim and send; answers how many ChannelSends ran."""
    ran = 0
    for send_id in deliveries_claim(campaign_id=campaign_id, delivery_ids=delivery_ids):
        if channel_send_run(channel_send_id=send_id) is not None:
            ran += 1
    return ran


def orphaned_channel_sends(*, now: datetime | None = None) -> list[int]:
    """ChannelSends that still wait for their call (or, for webhooks, a retry that is due)
    and that no worker holds: the ones to run again."""
    now = now or timezone.now()
    old = now - orphan_after()
    candidates = (
        ChannelSend.objects.filter(state=ChannelSendState.REQUESTED, requested_at__lte=old)
        .filter(Q(attempted_at__isnull=True) | Q(attempted_at__lte=old))
        .order_by("id")
        .values_list("pk", flat=True)
    )
    return list(candidates[:1000])


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
            WHERE d.id = r.id AND d.id = ANY(%s) AND d.status IN ('sending', 'submitted')
            """,
            [*(list(column) for column in zip(*rows, strict=True)), [row[0] for row in rows]],
        )


IN_FLIGHT = (DeliveryStatus.SENDING, DeliveryStatus.SUBMITTED)


def channel_send_deliveries(send: ChannelSend) -> list[dict[str, Any]]:
    """The in-flight deliveries of a ChannelSend with what a channel needs to address them."""
    rows = send.deliveries.filter(status__in=IN_FLIGHT).order_by("id")
    return [
        dict(row)
        for row in rows.values("id", "customer_id", "campaign_id", "variant_id", "attempts")
    ]
