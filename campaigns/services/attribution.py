"""Attribution: which paid orders a campaign's deliveries converted, and how much of each
order each delivery is credited with.

A conversion is a paid order (status paid or partially refunded) placed within a delivery's
goal window: from when it was sent (a holdout member: from when it would have been, its
`reserved_at`) for the campaign's `conversion_window_days`, of at least its minimum amount
net of refunds, holding its SKU or category when it names one. Conversions decide the
conversion rates, hence the lift.

Credit shares an order among the treated deliveries that converted it, by each campaign's
model: last touch (the default) credits the latest of them with the whole order, first touch
the earliest, linear each 1/n. With one model everywhere an order's credit sums to 1, so each
order is credited to at most one delivery under last touch. Holdout members get no credit.

Everything is computed for a set of customers at once, from their deliveries and orders as
they are now, and replaces what was there: computing again changes nothing, and a refund or a
status change that takes an order out of the goal takes its conversions away.
"""

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from campaigns import enqueue
from campaigns.models import DeliveryStatus
from campaigns.services.reservation import NO_JIT_SQL
from core.retry import on_deadlock_retry
from crm.models import PURCHASE_STATUSES

logger = logging.getLogger(__name__)

# Customers attributed per statement by the nightly catch-up.
CATCH_UP_BATCH = 20_000
# The longest goal window the catch-up looks back over, in days.
CATCH_UP_DAYS = 90

_PURCHASED = ", ".join(f"'{status}'" for status in PURCHASE_STATUSES)

# (customer ids) -> every conversion of those customers' deliveries, with its credit.
CONVERSIONS_SQL = f"""
    WITH touches AS MATERIALIZED (
        SELECT d.id AS delivery_id, d.campaign_id, d.customer_id, d.is_holdout,
               CASE WHEN d.is_holdout THEN d.reserved_at ELSE d.sent_at END AS touched_at,
               c.conversion_window_days, c.conversion_min_amount, c.conversion_sku,
               c.conversion_category, c.attribution_model
        FROM campaigns_delivery d  -- index delivery_unique (customer first)
        JOIN campaigns_campaign c ON c.id = d.campaign_id
        WHERE d.customer_id = ANY(%(customers)s)
          AND (d.status = '{DeliveryStatus.SENT}' AND d.sent_at IS NOT NULL
               OR d.status = '{DeliveryStatus.HELD_OUT}' AND d.is_holdout)
    ),
    converted AS (
        SELECT t.delivery_id, t.campaign_id, t.customer_id, t.is_holdout, t.touched_at,
               t.attribution_model, o.id AS order_id, o.paid_at,
               o.total_amount - o.refunded_amount AS revenue
        FROM touches t
        JOIN crm_order o  -- index order_by_customer_paid
          ON o.customer_id = t.customer_id
         AND o.paid_at >= t.touched_at
         AND o.paid_at < t.touched_at + make_interval(days => t.conversion_window_days)
         AND o.status IN ({_PURCHASED})
        WHERE (t.conversion_min_amount IS NULL
               OR o.total_amount - o.refunded_amount >= t.conversion_min_amount)
          AND (t.conversion_sku = '' OR EXISTS (
                SELECT 1 FROM crm_orderitem i  -- index order_item_unique_line
                WHERE i.order_id = o.id AND i.sku = t.conversion_sku))
          AND (t.conversion_category = '' OR EXISTS (
                SELECT 1 FROM crm_orderitem i
                WHERE i.order_id = o.id AND i.category = t.conversion_category))
    ),
    ranked AS (
        SELECT *,
               count(*) OVER (PARTITION BY order_id, is_holdout) AS touches,
               row_number() OVER (PARTITION BY order_id, is_holdout
                                  ORDER BY touched_at DESC, delivery_id DESC) AS from_last,
               row_number() OVER (PARTITION BY order_id, is_holdout
                                  ORDER BY touched_at, delivery_id) AS from_first
        FROM converted
    )
    SELECT delivery_id, order_id, campaign_id, customer_id, is_holdout,
           CASE WHEN is_holdout THEN 0
                WHEN attribution_model = 'first_touch' THEN (from_first = 1)::int
                WHEN attribution_model = 'linear' THEN round(1.0 / touches, 6)
                ELSE (from_last = 1)::int END AS credit,
           revenue, paid_at
    FROM ranked
"""  # noqa: S608 - constants only

REPLACE_SQL = f"""
    WITH computed AS ({CONVERSIONS_SQL}),
    removed AS (
        DELETE FROM campaigns_conversion v  -- index conversion_by_customer
        WHERE v.customer_id = ANY(%(customers)s)
          AND NOT EXISTS (SELECT 1 FROM computed
                          WHERE computed.delivery_id = v.delivery_id
                            AND computed.order_id = v.order_id)
        RETURNING 1
    ),
    written AS (
        INSERT INTO campaigns_conversion (delivery_id, order_id, campaign_id, customer_id,
                                          is_holdout, credit, revenue, converted_at)
        SELECT delivery_id, order_id, campaign_id, customer_id, is_holdout, credit, revenue,
               paid_at
        FROM computed
        ORDER BY delivery_id, order_id
        ON CONFLICT (delivery_id, order_id) DO UPDATE SET
            credit = EXCLUDED.credit, revenue = EXCLUDED.revenue,
            converted_at = EXCLUDED.converted_at
        WHERE (campaigns_conversion.credit, campaigns_conversion.revenue,
               campaigns_conversion.converted_at)
              IS DISTINCT FROM (EXCLUDED.credit, EXCLUDED.revenue, EXCLUDED.converted_at)
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM removed), (SELECT count(*) FROM written)
"""  # noqa: S608 - constants only


@on_deadlock_retry
@transaction.atomic
def conversions_attribute(*, customer_ids: Sequence[int]) -> tuple[int, int]:
    """Recompute the conversions of these customers' deliveries. Answers (removed, written or
    changed)."""
    ids = sorted(set(customer_ids))
    if not ids:
        return 0, 0
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '64MB'")  # the window sorts stay in memory
        cursor.execute(NO_JIT_SQL)
        cursor.execute(REPLACE_SQL, {"customers": ids})
        removed, written = cursor.fetchone()
    logger.info(
        "conversions.attributed",
        extra={"customers": len(ids), "removed": removed, "written": written},
    )
    return int(removed), int(written)


def has_touches(*, customer_ids: Sequence[int]) -> bool:
    """Whether any of these customers has a delivery attribution reads (one index probe each,
    index delivery_unique)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM campaigns_delivery WHERE customer_id = ANY(%s)"
            " AND status IN (%s, %s))",
            [list(customer_ids), DeliveryStatus.SENT, DeliveryStatus.HELD_OUT],
        )
        return bool(cursor.fetchone()[0])


def conversions_attribute_after_orders(customer_ids: list[int]) -> None:
    """Subscribed to order writes (crm, after their commit; see CampaignsConfig.ready): queue
    the attribution of their customers, only when some of them were ever sent to or held out
    (most ingested orders concern nobody here)."""
    if has_touches(customer_ids=customer_ids):
        enqueue.conversions_attribute(customer_ids=customer_ids)


def conversions_catch_up(*, now: datetime | None = None) -> int:
    """The nightly catch-up: attribute again every customer with a delivery touched in the
    last CATCH_UP_DAYS, in customer-id batches. Answers customers attributed."""
    now = now or timezone.now()
    since = now - timedelta(days=CATCH_UP_DAYS)
    after, done = 0, 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT DISTINCT customer_id FROM campaigns_delivery
                WHERE customer_id > %s AND status IN (%s, %s)
                  AND coalesce(sent_at, reserved_at) >= %s
                ORDER BY customer_id LIMIT %s
                """,
                [after, DeliveryStatus.SENT, DeliveryStatus.HELD_OUT, since, CATCH_UP_BATCH],
            )
            ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return done
        conversions_attribute(customer_ids=ids)
        done += len(ids)
        after = ids[-1]
