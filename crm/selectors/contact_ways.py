"""Channel QR code (渠道活码) reads: the codes, and the report per code that closes the funnel
from a video to money. Reads only.

What each number means (the admin's help text says the same):

- 添加人数 (`added`): WeCom relations added with the code's state (渠道参数), whoever the customer
  is and whether or not it was their first touch: every scan that led to an add counts.
- 7/30 天仍在联系 (`kept_7_rate`, `kept_30_rate`): of those relations added at least 7 (30) days
  ago, the share not ended (by either side) within 7 (30) days of being added.
- 首次添加客户 (`acquired`): customers whose first touch (CustomerAcquisition) is this code. Orders
  are attributed to a code through first touch only, so that no order counts for two codes.
- 30/90 天首单 (`first_orders_30`, ...): of those customers, how many made their first purchase
  ever (a paid or partly refunded order) within 30 (90) days after they were added; the revenue
  is what those first orders paid, net of refunds.
- 复购率 (`repeat_rate`): of the customers with a first order within 90 days, the share who
  bought again (a second purchase, at any time).

One statement for all codes at once: relations are found by state through
wecom_follow_by_state, acquisitions by code through acquisition_by_way, and each acquired
customer's first two purchases through order_by_customer_paid (an index-only scan)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q, QuerySet
from django.utils import timezone

from crm.models import PURCHASE_STATUSES, ContactWay


@dataclass(frozen=True)
class ContactWayReport:
    contact_way_id: int
    added: int = 0
    kept_7_due: int = 0  # relations added at least 7 days ago
    kept_7: int = 0
    kept_30_due: int = 0
    kept_30: int = 0
    acquired: int = 0
    first_orders_30: int = 0
    first_order_revenue_30: Decimal = Decimal("0.00")
    first_orders_90: int = 0
    first_order_revenue_90: Decimal = Decimal("0.00")
    repeat_buyers: int = 0  # of first_orders_90

    @property
    def kept_7_rate(self) -> float | None:
        return self.kept_7 / self.kept_7_due if self.kept_7_due else None

    @property
    def kept_30_rate(self) -> float | None:
        return self.kept_30 / self.kept_30_due if self.kept_30_due else None

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_buyers / self.first_orders_90 if self.first_orders_90 else None


def contact_way_list(
    *, is_active: bool | None = None, source_channel: str | None = None, search: str | None = None
) -> QuerySet[ContactWay]:
    """The codes with their staff members and tags on add (prefetched), newest first."""
    ways = (
        ContactWay.objects.defer("qr_code_image")
        .annotate(has_image=ExpressionWrapper(Q(qr_code_image__isnull=False), BooleanField()))
        .prefetch_related("staff_members", "auto_tags")
        .order_by("-created_at", "-id")
    )
    if is_active is not None:
        ways = ways.filter(is_active=is_active)
    if source_channel:
        ways = ways.filter(source_channel=source_channel)
    if search:
        ways = ways.filter(Q(name__icontains=search) | Q(state=search))
    return ways


_REPORT_SQL = """
WITH ways AS (
    SELECT id, state FROM crm_contactway
    WHERE (%(ids)s::bigint[] IS NULL OR id = ANY(%(ids)s::bigint[]))
),
relations AS (
    SELECT
        w.id AS way_id,
        count(*) AS added,
        count(*) FILTER (WHERE f.added_at <= %(now)s - interval '7 days') AS kept_7_due,
        count(*) FILTER (
            WHERE f.added_at <= %(now)s - interval '7 days'
            AND (f.deleted_at IS NULL OR f.deleted_at >= f.added_at + interval '7 days')
        ) AS kept_7,
        count(*) FILTER (WHERE f.added_at <= %(now)s - interval '30 days') AS kept_30_due,
        count(*) FILTER (
            WHERE f.added_at <= %(now)s - interval '30 days'
            AND (f.deleted_at IS NULL OR f.deleted_at >= f.added_at + interval '30 days')
        ) AS kept_30
    FROM ways w
    JOIN crm_wecomfollow f ON f.state = w.state AND f.state <> '' AND f.added_at IS NOT NULL
    WHERE (%(since)s::timestamptz IS NULL OR f.added_at >= %(since)s)
      AND (%(before)s::timestamptz IS NULL OR f.added_at < %(before)s)
    GROUP BY w.id
),
buyers AS (
    SELECT a.contact_way_id AS way_id, a.acquired_at, p.first_paid_at, p.first_amount, p.purchases
    FROM ways w
    JOIN crm_customeracquisition a ON a.contact_way_id = w.id
    LEFT JOIN LATERAL (
        SELECT
            min(o.paid_at) AS first_paid_at,
            (array_agg(o.amount ORDER BY o.paid_at, o.id))[1] AS first_amount,
            count(*) AS purchases
        FROM (
            SELECT o.id, o.paid_at, o.total_amount - o.refunded_amount AS amount
            FROM crm_order o
            WHERE o.customer_id = a.customer_id
              AND o.paid_at IS NOT NULL
              AND o.status = ANY(%(purchase)s)
            ORDER BY o.paid_at, o.id
            LIMIT 2
        ) o
    ) p ON true
    WHERE (%(since)s::timestamptz IS NULL OR a.acquired_at >= %(since)s)
      AND (%(before)s::timestamptz IS NULL OR a.acquired_at < %(before)s)
),
orders AS (
    SELECT
        way_id,
        count(*) AS acquired,
        count(*) FILTER (WHERE in_30) AS first_orders_30,
        coalesce(sum(first_amount) FILTER (WHERE in_30), 0) AS first_order_revenue_30,
        count(*) FILTER (WHERE in_90) AS first_orders_90,
        coalesce(sum(first_amount) FILTER (WHERE in_90), 0) AS first_order_revenue_90,
        count(*) FILTER (WHERE in_90 AND purchases >= 2) AS repeat_buyers
    FROM (
        SELECT
            way_id,
            first_amount,
            purchases,
            first_paid_at >= acquired_at
                AND first_paid_at < acquired_at + interval '30 days' AS in_30,
            first_paid_at >= acquired_at
                AND first_paid_at < acquired_at + interval '90 days' AS in_90
        FROM buyers
    ) b
    GROUP BY way_id
)
SELECT
    w.id,
    coalesce(r.added, 0), coalesce(r.kept_7_due, 0), coalesce(r.kept_7, 0),
    coalesce(r.kept_30_due, 0), coalesce(r.kept_30, 0),
    coalesce(o.acquired, 0), coalesce(o.first_orders_30, 0),
    coalesce(o.first_order_revenue_30, 0), coalesce(o.first_orders_90, 0),
    coalesce(o.first_order_revenue_90, 0), coalesce(o.repeat_buyers, 0)
FROM ways w
LEFT JOIN relations r ON r.way_id = w.id
LEFT JOIN orders o ON o.way_id = w.id
"""


def contact_way_reports(
    *,
    contact_way_ids: list[int] | None = None,
    added_since: datetime | None = None,
    added_before: datetime | None = None,
    now: datetime | None = None,
) -> dict[int, ContactWayReport]:
    """The report of each code (of `contact_way_ids`, or every code), by code id, in one
    query. `added_since` / `added_before` narrow it to relations added and customers first
    touched in that span (yesterday, the past 7 days); `now` is when 7 and 30 days are
    counted back from."""
    now = now or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _REPORT_SQL,
            {
                "ids": contact_way_ids,
                "now": now,
                "since": added_since,
                "before": added_before,
                "purchase": list(PURCHASE_STATUSES),
            },
        )
        rows = cursor.fetchall()
    return {
        row[0]: ContactWayReport(
            contact_way_id=row[0],
            added=row[1],
            kept_7_due=row[2],
            kept_7=row[3],
            kept_30_due=row[4],
            kept_30=row[5],
            acquired=row[6],
            first_orders_30=row[7],
            first_order_revenue_30=Decimal(row[8]).quantize(Decimal("0.01")),
            first_orders_90=row[9],
            first_order_revenue_90=Decimal(row[10]).quantize(Decimal("0.01")),
            repeat_buyers=row[11],
        )
        for row in rows
    }


def report_window(days: int, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last `days` whole business days before today (1: yesterday), as [since, before)."""
    today = timezone.localtime(now or timezone.now(), timezone.get_default_timezone()).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return today - timedelta(days=days), today
