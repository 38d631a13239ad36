"""The retention (留存) pre-aggregate the overview reads: customers by the business month of
their first purchase over the last RETENTION_COHORTS months, those of them who bought again in
each later month, and per source channel those who bought again within 30, 60 and 90 days.

Counted from every later order of up to a year's first-time buyers, the figures cost tens of
seconds on a large brand (a million customers, ten million orders): too slow for a page. They
are computed after each full recomputation (the nightly run; `retention_after_run`) into
RetentionCohort and RetentionChannel, a few hundred rows that the overview reads in
milliseconds and dates with `computed_at`. One statement computes and writes both tables; the
old rows are deleted in the same transaction, so readers see the previous figures until the new
ones commit. Before the first computation (a new installation), the page asks for it once
(`retention_compute_missing`)."""

from datetime import date, datetime

from django.db import connection, transaction
from django.utils import timezone

from core.locks import Lock, xact_lock
from crm.models import PURCHASE_STATUSES, Customer, Order
from segments import enqueue
from segments.models import (
    CustomerMetrics,
    RecomputeKind,
    RecomputeRun,
    RecomputeStatus,
    RetentionChannel,
    RetentionCohort,
)
from segments.rules.values import business_zone, start_of_day

RETENTION_COHORTS = 12  # months of first orders the retention panel follows
REPEAT_WITHIN_DAYS = (30, 60, 90)
# Up to this many first-time buyers in the cohorts (about a second of computation), a page
# that finds no figures computes them while it waits; beyond, it queues the computation.
ON_DEMAND_CUSTOMERS = 50_000


def retention_first_month(now: datetime) -> date:
    """The first month of the retention cohorts: the last RETENTION_COHORTS months, the
    current business month included."""
    today = timezone.localtime(now).date()
    index = today.year * 12 + today.month - 1 - (RETENTION_COHORTS - 1)
    return date(index // 12, index % 12 + 1, 1)


# The month of a moment in the business time zone, as a number (year * 12 + month) so that
# the difference of two is a number of months.
_MONTH = (
    "(extract(year FROM ({moment}) AT TIME ZONE %(zone)s) * 12"
    " + extract(month FROM ({moment}) AT TIME ZONE %(zone)s))::int"
)

# The cohorts (customers by the month of their first purchase, from the metrics: the
# recomputation keeps first_paid_at over every order) and their later purchases, read through
# the index order_by_customer_paid (customer_id, paid_at; covering status): a range of each
# cohort customer's orders, never the orders of anyone else. The cohort rows (every month of
# the window, empty ones too, so that a computed table is never empty) and the repeat buyers
# per later month go to one table, the figures per channel and number of days to the other.
_RETENTION_SQL = """
WITH cohort AS MATERIALIZED (
    SELECT m.customer_id, m.first_paid_at, c.source_channel,
           date_trunc('month', m.first_paid_at AT TIME ZONE %(zone)s)::date AS month,
           {first_month} AS month_index
    FROM {metrics} m
    JOIN {customer} c ON c.id = m.customer_id
    WHERE m.first_paid_at >= %(start)s AND m.first_paid_at < %(end)s
),
later AS MATERIALIZED (
    SELECT o.customer_id, cohort.month, {order_month} - cohort.month_index AS month_number,
           o.paid_at - cohort.first_paid_at AS gap
    FROM cohort
    JOIN {order} o ON o.customer_id = cohort.customer_id
    WHERE o.status = ANY(%(statuses)s)
      AND o.paid_at > cohort.first_paid_at AND o.paid_at < %(end)s
),
first_repeat AS (
    SELECT customer_id, min(gap) AS gap FROM later GROUP BY customer_id
),
months AS (
    SELECT (%(first_month)s::date + make_interval(months => number))::date AS month
    FROM generate_series(0, %(cohorts)s - 1) AS number
),
cohorts AS (
    INSERT INTO {cohort_table} (month, months_since_first, customers, computed_at)
    SELECT months.month, 0, count(cohort.customer_id), %(end)s
    FROM months LEFT JOIN cohort ON cohort.month = months.month
    GROUP BY months.month
    UNION ALL
    SELECT month, month_number, count(DISTINCT customer_id), %(end)s
    FROM later WHERE month_number >= 1
    GROUP BY month, month_number
)
INSERT INTO {channel_table}
    (source_channel, within_days, customers, eligible, repeat_buyers, computed_at)
SELECT cohort.source_channel, within.days, count(*),
       count(*) FILTER (WHERE cohort.first_paid_at <= %(end)s - make_interval(days => within.days)),
       count(*) FILTER (WHERE cohort.first_paid_at <= %(end)s - make_interval(days => within.days)
                        AND r.gap <= make_interval(days => within.days)),
       %(end)s
FROM cohort
LEFT JOIN first_repeat r ON r.customer_id = cohort.customer_id
CROSS JOIN unnest(%(within_days)s::int[]) AS within(days)
GROUP BY cohort.source_channel, within.days
"""


def retention_recompute(*, now: datetime | None = None, if_missing: bool = False) -> None:
    """Replace the pre-aggregate by the figures as of `now` (default: this moment), in one
    transaction; with `if_missing`, only if it holds none (a computation queued or asked for
    twice runs once)."""
    now = now or timezone.now()
    first_month = retention_first_month(now)
    sql = _RETENTION_SQL.format(
        metrics=CustomerMetrics._meta.db_table,
        customer=Customer._meta.db_table,
        order=Order._meta.db_table,
        cohort_table=RetentionCohort._meta.db_table,
        channel_table=RetentionChannel._meta.db_table,
        first_month=_MONTH.format(moment="m.first_paid_at"),
        order_month=_MONTH.format(moment="o.paid_at"),
    )
    with transaction.atomic():
        xact_lock(Lock.RETENTION)
        if if_missing and RetentionCohort.objects.exists():
            return
        RetentionCohort.objects.all().delete()
        RetentionChannel.objects.all().delete()
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                {
                    "zone": str(business_zone()),
                    "start": start_of_day(first_month),
                    "end": now,
                    "first_month": first_month,
                    "cohorts": RETENTION_COHORTS,
                    "statuses": list(PURCHASE_STATUSES),
                    "within_days": list(REPEAT_WITHIN_DAYS),
                },
            )


def retention_after_run(run: RecomputeRun) -> None:
    """The retention figures follow each successful full recomputation (the nightly run):
    they count first purchases from the metrics it has just brought up to date."""
    if run.status == RecomputeStatus.SUCCEEDED and run.kind == RecomputeKind.FULL:
        retention_recompute()


def retention_compute_missing() -> bool:
    """When no figures were ever computed (a new installation before its first nightly run):
    compute them now if the cohorts' first-time buyers are few enough for a page to wait
    (ON_DEMAND_CUSTOMERS), else queue the computation. Whether they are there now."""
    start = start_of_day(retention_first_month(timezone.now()))
    buyers = CustomerMetrics.objects.filter(first_paid_at__gte=start)[: ON_DEMAND_CUSTOMERS + 1]
    if buyers.count() <= ON_DEMAND_CUSTOMERS:
        retention_recompute(if_missing=True)
        return True
    enqueue.retention_recompute()
    return False
