"""The demo channel QR codes (渠道活码) and the customers they brought, so that the code report and
the overview's panel have numbers in `make run`.

`load(now=...)` writes the codes of devstack.demo_wecom.DEMO_WAYS (the config ids and states the
WeCom fake's demo corp serves, the image the fake draws), then, set-based, for a share of the
demo customers of each code's source channel: their first touch (CustomerAcquisition) through the
code some days before their first purchase (or, for customers who never bought, within the last
two months), and the WeCom relation added then, about one in seven ended a few days later.

Those relations are with the guides outside the fake's demo corp (demo_guide_07 onwards: the
codes' earlier staff): the full sync of `make run` ends the relations of the corp's own guides
that WeCom does not list, and the fake knows nothing of the demo customers. Every draw comes
from a hash of the customer id: the same data gives the same rows."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from crm.models import (
    PURCHASE_STATUSES,
    ContactWay,
    ContactWayKind,
    CustomerAcquisition,
    StaffMember,
)
from devstack.demo import STAFF_COUNT
from devstack.demo_wecom import DEMO_STAFF, DEMO_WAYS, demo_userid
from devstack.wecom_fake_contact_ways import qr_png

# Of the customers of a code's source channel, the share (per thousand) it brought in.
SHARE_PER_MILLE = 120
# Codes went up this long ago: first purchases before it are not the code's.
CODES_AGE_DAYS = 150

_ACQUISITIONS_SQL = """
WITH candidates AS (
    SELECT
        c.id AS customer_id,
        ('x' || substr(md5(c.id::text || %(state)s), 1, 7))::bit(28)::int AS h,
        (
            SELECT min(o.paid_at) FROM crm_order o
            WHERE o.customer_id = c.id AND o.paid_at IS NOT NULL AND o.status = ANY(%(purchase)s)
        ) AS first_paid_at
    FROM crm_customer c
    WHERE c.source_channel = %(channel)s
      AND NOT EXISTS (SELECT 1 FROM crm_customeracquisition a WHERE a.customer_id = c.id)
),
chosen AS (
    SELECT
        customer_id,
        abs(h) AS h,
        CASE
            WHEN first_paid_at IS NULL
                -- Never bought: added within the last two months.
                THEN %(now)s - (abs(h) / 1000 %% 86400) * interval '60 seconds'
            -- Added 0-100 days before the first purchase, most of them shortly before.
            ELSE first_paid_at - power((abs(h) / 1000 %% 1000) / 1000.0, 2) * interval '100 days'
                - interval '1 hour'
        END AS acquired_at
    FROM candidates
    WHERE abs(h) %% 1000 < %(share)s
      AND (first_paid_at IS NULL OR first_paid_at >= %(since)s)
),
acquired AS (
    INSERT INTO crm_customeracquisition
        (customer_id, contact_way_id, state, staff_member_id, acquired_at)
    SELECT
        customer_id,
        %(way_id)s,
        %(state)s,
        (%(staff_ids)s::bigint[])[1 + (h / 7) %% cardinality(%(staff_ids)s::bigint[])],
        greatest(acquired_at, %(since)s)
    FROM chosen
    RETURNING customer_id, staff_member_id, acquired_at
)
INSERT INTO crm_wecomfollow
    (customer_id, staff_member_id, added_at, add_way, state, wecom_tag_ids, deleted_at,
     deleted_by, observed_at, created_at, updated_at)
SELECT
    customer_id,
    staff_member_id,
    acquired_at,
    1,
    %(state)s,
    '{}',
    ended_at,
    CASE WHEN ended_at IS NULL THEN '' ELSE 'customer' END,
    coalesce(ended_at, acquired_at),
    acquired_at,
    coalesce(ended_at, acquired_at)
FROM (
    SELECT
        a.*,
        CASE
            WHEN ('x' || substr(md5(a.customer_id::text), 1, 4))::bit(16)::int %% 7 = 0
                AND a.acquired_at + interval '3 days' < %(now)s
            THEN a.acquired_at + (1 + a.customer_id %% 20) * interval '1 day'
        END AS ended_at
    FROM acquired a
) e
WHERE ended_at IS NULL OR ended_at < %(now)s
ON CONFLICT (customer_id, staff_member_id) DO NOTHING
"""


def load(*, now: datetime | None = None) -> dict[str, int]:
    """Write the demo codes and their customers' first touches and relations; returns counts."""
    now = now or timezone.now()
    since = now - timedelta(days=CODES_AGE_DAYS)
    counts = {"contact_ways": 0, "acquisitions": 0, "wecom_follows": 0}
    earlier_userids = [demo_userid(n) for n in range(DEMO_STAFF + 1, STAFF_COUNT + 1)]
    earlier_staff_ids = list(
        StaffMember.objects.filter(wecom_userid__in=earlier_userids)
        .order_by("wecom_userid")
        .values_list("pk", flat=True)
    )
    with transaction.atomic():
        for index, way in enumerate(DEMO_WAYS):
            staff = list(
                StaffMember.objects.filter(wecom_userid__in=way.userids).order_by("wecom_userid")
            )
            if not staff or not earlier_staff_ids:
                continue
            contact_way = ContactWay.objects.create(
                name=way.name,
                state=way.state,
                config_id=way.config_id,
                kind=ContactWayKind.MULTI if len(way.userids) > 1 else ContactWayKind.SINGLE,
                source_channel=way.source_channel,
                qr_code_image=qr_png(way.config_id),
                created_at=since,
            )
            contact_way.staff_members.set(staff)
            counts["contact_ways"] += 1
            with connection.cursor() as cursor:
                cursor.execute(
                    _ACQUISITIONS_SQL,
                    {
                        "state": way.state,
                        "channel": way.source_channel,
                        "purchase": list(PURCHASE_STATUSES),
                        "now": now,
                        "since": since,
                        "share": SHARE_PER_MILLE,
                        "way_id": contact_way.pk,
                        # Eight earlier guides per code.
                        "staff_ids": [
                            earlier_staff_ids[(index * 8 + k) % len(earlier_staff_ids)]
                            for k in range(8)
                        ],
                    },
                )
                counts["wecom_follows"] += cursor.rowcount
        counts["acquisitions"] = CustomerAcquisition.objects.filter(
            contact_way__state__in=[w.state for w in DEMO_WAYS]
        ).count()
    return counts
