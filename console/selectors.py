"""Reads of the overview (运营看板): the period a page covers, and one set-based query per
panel. Reads only; formatting and caching are the presenter's (console.overview).

A period is the last N business days up to the moment it is read: from the start of the
business day N-1 days before today (business time zone) to now. Its previous period is the
same span shifted back N days, so that a period read at 10:00 is compared with one that also
ends at 10:00, never with N whole days."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from crm.models import PURCHASE_STATUSES, Customer, Order
from segments.rules.values import start_of_day
from segments.selectors import lifecycle_distribution

PERIOD_DAYS = (7, 30, 90)
DEFAULT_PERIOD_DAYS = 30


@dataclass(frozen=True)
class Period:
    days: int
    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime

    @property
    def business_day(self) -> date:
        return timezone.localtime(self.end).date()


def overview_period(*, days: int, now: datetime) -> Period:
    """The `days` business days up to `now`, and the previous span of the same length."""
    today = timezone.localtime(now).date()
    start = start_of_day(today - timedelta(days=days - 1))
    shift = timedelta(days=days)
    return Period(
        days=days, start=start, end=now, previous_start=start - shift, previous_end=now - shift
    )


@dataclass(frozen=True)
class PeriodFigures:
    """The KPI figures of one period. Revenue is net of refunds, over the orders that count
    as purchases (paid, partially refunded) paid in the period, in the orders' own currency
    (the brand's, as the RFM metrics assume)."""

    customers: int  # customers first seen before the period's end
    new_customers: int  # customers first seen in the period
    buyers: int  # customers with a purchase in the period
    repeat_buyers: int  # buyers with two or more purchases in the period
    orders: int  # purchases in the period
    revenue: Decimal

    @property
    def repeat_purchase_rate(self) -> float | None:
        return self.repeat_buyers / self.buyers if self.buyers else None

    @property
    def average_order_value(self) -> Decimal | None:
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None


@dataclass(frozen=True)
class Kpis:
    current: PeriodFigures
    previous: PeriodFigures


# Two one-row aggregates joined: the customers table scanned once for both periods' counts,
# and the purchases of both periods grouped by buyer and period (the gap between the
# previous period's end and the current period's start belongs to neither).
_KPIS_SQL = """
SELECT c.customers, c.new_customers, c.previous_customers, c.previous_new_customers,
       o.buyers, o.repeat_buyers, o.orders, o.revenue,
       o.previous_buyers, o.previous_repeat_buyers, o.previous_orders, o.previous_revenue
FROM (
    SELECT
        count(*) FILTER (WHERE first_seen_at < %(end)s) AS customers,
        count(*) FILTER (WHERE first_seen_at >= %(start)s AND first_seen_at < %(end)s)
            AS new_customers,
        count(*) FILTER (WHERE first_seen_at < %(previous_end)s) AS previous_customers,
        count(*) FILTER (
            WHERE first_seen_at >= %(previous_start)s AND first_seen_at < %(previous_end)s
        ) AS previous_new_customers
    FROM {customer}
) c CROSS JOIN (
    SELECT
        count(*) FILTER (WHERE is_current) AS buyers,
        count(*) FILTER (WHERE is_current AND orders >= 2) AS repeat_buyers,
        coalesce(sum(orders) FILTER (WHERE is_current), 0) AS orders,
        coalesce(sum(revenue) FILTER (WHERE is_current), 0) AS revenue,
        count(*) FILTER (WHERE NOT is_current) AS previous_buyers,
        count(*) FILTER (WHERE NOT is_current AND orders >= 2) AS previous_repeat_buyers,
        coalesce(sum(orders) FILTER (WHERE NOT is_current), 0) AS previous_orders,
        coalesce(sum(revenue) FILTER (WHERE NOT is_current), 0) AS previous_revenue
    FROM (
        SELECT customer_id, paid_at >= %(start)s AS is_current, count(*) AS orders,
               sum(total_amount - refunded_amount) AS revenue
        FROM {order}
        WHERE status = ANY(%(statuses)s)
          AND ((paid_at >= %(start)s AND paid_at < %(end)s)
               OR (paid_at >= %(previous_start)s AND paid_at < %(previous_end)s))
        GROUP BY customer_id, paid_at >= %(start)s
    ) per_buyer
) o
"""


def overview_kpis(*, period: Period) -> Kpis:
    """Customers, new customers, buyers, repeat buyers, purchases and revenue of the period
    and of the previous one. One query."""
    sql = _KPIS_SQL.format(customer=Customer._meta.db_table, order=Order._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "start": period.start,
                "end": period.end,
                "previous_start": period.previous_start,
                "previous_end": period.previous_end,
                "statuses": list(PURCHASE_STATUSES),
            },
        )
        row = cursor.fetchone()
    (customers, new, previous_customers, previous_new, *orders) = row
    return Kpis(
        current=PeriodFigures(
            customers=customers,
            new_customers=new,
            buyers=orders[0],
            repeat_buyers=orders[1],
            orders=int(orders[2]),
            revenue=Decimal(orders[3]),
        ),
        previous=PeriodFigures(
            customers=previous_customers,
            new_customers=previous_new,
            buyers=orders[4],
            repeat_buyers=orders[5],
            orders=int(orders[6]),
            revenue=Decimal(orders[7]),
        ),
    )


def overview_lifecycle() -> list[dict[str, Any]]:
    """Customers per lifecycle state now (those with metrics: every customer once the
    recomputation has seen it), every state in order with its share. One query."""
    return lifecycle_distribution()
