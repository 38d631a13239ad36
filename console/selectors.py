"""Reads of the overview (运营看板): the period a page covers, and one set-based query per
panel. Reads only; formatting and caching are the presenter's (console.overview).

A period is the last N business days up to the moment it is read: from the start of the
business day N-1 days before today (business time zone) to now. Its previous period is the
same span shifted back N days, so that a period read at 10:00 is compared with one that also
ends at 10:00, never with N whole days."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from campaigns.models import Campaign, CampaignState, Delivery, FrequencyRule
from campaigns.selectors import frequency_rule_list
from campaigns.services.report import CampaignSummary, campaign_summaries
from crm.models import PURCHASE_STATUSES, Customer, Order
from segments.models import (
    CustomerMetrics,
    LifecycleTransition,
    RetentionChannel,
    RetentionCohort,
    RfmTier,
    Segment,
    SegmentSizeSnapshot,
)
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
# previous period's end and the current period's start belongs to neither). Orders of erased
# customers (customer NULL) count in orders and revenue, and as no buyer.
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
        count(customer_id) FILTER (WHERE is_current) AS buyers,
        count(customer_id) FILTER (WHERE is_current AND orders >= 2) AS repeat_buyers,
        coalesce(sum(orders) FILTER (WHERE is_current), 0) AS orders,
        coalesce(sum(revenue) FILTER (WHERE is_current), 0) AS revenue,
        count(customer_id) FILTER (WHERE NOT is_current) AS previous_buyers,
        count(customer_id) FILTER (WHERE NOT is_current AND orders >= 2)
            AS previous_repeat_buyers,
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


# Lifecycle flow, RFM tiers and retention (issue 16, section 1).


@dataclass(frozen=True)
class LifecycleFlow:
    """The customers who moved from one lifecycle state to another in a period."""

    from_state: str
    to_state: str
    customers: int


def overview_lifecycle_flow(*, period: Period) -> list[LifecycleFlow]:
    """Customers per (from, to) pair of the lifecycle transitions that began in the period;
    a customer who made the same move twice counts once, as the customers list the panel
    links to shows them. One query, served by the index transition_by_at (an index-only
    range scan over the period)."""
    rows = (
        LifecycleTransition.objects.filter(at__gte=period.start, at__lt=period.end)
        .values_list("from_state", "to_state")
        .annotate(customers=Count("customer_id", distinct=True))
        .order_by("from_state", "to_state")
    )
    return [
        LifecycleFlow(from_state=from_state, to_state=to_state, customers=customers)
        for from_state, to_state, customers in rows
    ]


@dataclass(frozen=True)
class TierFigures:
    """The customers of an RFM tier (None: no paid order in the RFM window, hence no tier)
    and their net spend in that window."""

    tier: str | None
    customers: int
    revenue: Decimal


def overview_rfm_tiers() -> list[TierFigures]:
    """Customers and net spend in the RFM window per tier now, every tier in order, then
    the customers without one. One query (an aggregate over the metrics table)."""
    found = {
        tier: TierFigures(tier=tier, customers=customers, revenue=revenue)
        for tier, customers, revenue in CustomerMetrics.objects.values_list("rfm_tier")
        .annotate(customers=Count("pk"), revenue=Sum("net_spend_in_window"))
        .order_by()
    }
    return [
        found.get(tier, TierFigures(tier=tier, customers=0, revenue=Decimal(0)))
        for tier in [*RfmTier.values, None]
    ]


@dataclass(frozen=True)
class Cohort:
    """The customers whose first purchase fell in `month`, and how many of them bought again
    in each later month (`repeat_buyers[k - 1]`: in month k after it), up to the month the
    figures were computed in."""

    month: date
    customers: int
    repeat_buyers: list[int]


@dataclass(frozen=True)
class ChannelRetention:
    """The first-time buyers of the retention cohorts who came from a source channel ("":
    none recorded), and per number of days in REPEAT_WITHIN_DAYS: those whose first order is
    at least that old (`eligible`) and, of them, those who bought again within that many
    days of it (`repeat_buyers`)."""

    channel: str
    customers: int
    eligible: dict[int, int]
    repeat_buyers: dict[int, int]


@dataclass(frozen=True)
class Retention:
    cohorts: list[Cohort]
    channels: list[ChannelRetention]
    computed_at: datetime


def _months_between(first: date, second: date) -> int:
    return (second.year - first.year) * 12 + second.month - first.month


def overview_retention() -> Retention | None:
    """The retention cohorts (every month, the oldest first) and the same customers per
    source channel (the most numerous first), as of the last computation of the
    pre-aggregate (segments.services.retention): two queries of a few hundred rows at most.
    None: never computed."""
    rows = list(RetentionCohort.objects.order_by("month", "months_since_first"))
    if not rows:
        return None
    computed_at = rows[0].computed_at
    current_month = timezone.localtime(computed_at).date().replace(day=1)
    customers = {row.month: row.customers for row in rows if row.months_since_first == 0}
    repeat_buyers = {
        (row.month, row.months_since_first): row.customers for row in rows if row.months_since_first
    }
    channels: dict[str, ChannelRetention] = {}
    for row in RetentionChannel.objects.order_by("source_channel", "within_days"):
        channel = channels.setdefault(
            row.source_channel,
            ChannelRetention(
                channel=row.source_channel, customers=row.customers, eligible={}, repeat_buyers={}
            ),
        )
        channel.eligible[row.within_days] = row.eligible
        channel.repeat_buyers[row.within_days] = row.repeat_buyers
    return Retention(
        cohorts=[
            Cohort(
                month=month,
                customers=count,
                repeat_buyers=[
                    repeat_buyers.get((month, number), 0)
                    for number in range(1, _months_between(month, current_month) + 1)
                ],
            )
            for month, count in customers.items()
        ],
        channels=sorted(channels.values(), key=lambda row: (-row.customers, row.channel)),
        computed_at=computed_at,
    )


# Acquisition ----------------------------------------------------------------------------


@contextmanager
def _panel_cursor() -> Iterator[CursorWrapper]:
    """A cursor for one panel's aggregate, with JIT compilation off: on a million customers
    it compiled for over a second to save less than it cost."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        yield cursor


# The buckets of the acquisition chart: days for a week, weeks (from Monday) for a month,
# months for a quarter, each taken in business time.
BUCKET_UNITS = {7: "day", 30: "week", 90: "month"}


@dataclass(frozen=True)
class ChannelBucket:
    source_channel: str  # "" when the customer's channel is not known
    bucket: date  # the first day of the day, week or month, in business time
    new_customers: int
    converted: int  # of them, those with a purchase paid in the period


# New customers of the period by channel and bucket, each with whether they paid a purchase
# in the period (their first order, since they are new). The customers table is scanned once
# (a period is a large share of it at the dashboard's periods); each new customer's purchase
# is probed on index order_by_customer_paid (customer_id, paid_at, with status).
_ACQUISITION_SQL = """
SELECT c.source_channel,
       date_trunc(%(unit)s, c.first_seen_at AT TIME ZONE %(zone)s)::date AS bucket,
       count(*) AS new_customers,
       count(*) FILTER (WHERE EXISTS (
           SELECT 1 FROM {order} o
           WHERE o.customer_id = c.id AND o.status = ANY(%(statuses)s)
             AND o.paid_at >= %(start)s AND o.paid_at < %(end)s
       )) AS converted
FROM {customer} c
WHERE c.first_seen_at >= %(start)s AND c.first_seen_at < %(end)s
GROUP BY 1, 2
ORDER BY 1, 2
"""


def overview_acquisition(*, period: Period) -> list[ChannelBucket]:
    """New customers and those of them who paid a first order in the period, per source
    channel and bucket (see BUCKET_UNITS); only the pairs with new customers. One query."""
    sql = _ACQUISITION_SQL.format(customer=Customer._meta.db_table, order=Order._meta.db_table)
    with _panel_cursor() as cursor:
        cursor.execute(
            sql,
            {
                "unit": BUCKET_UNITS[period.days],
                "zone": settings.TIME_ZONE,
                "start": period.start,
                "end": period.end,
                "statuses": list(PURCHASE_STATUSES),
            },
        )
        return [ChannelBucket(*row) for row in cursor.fetchall()]


# Pinned segments ------------------------------------------------------------------------

# How many pinned segments the overview draws, by name: a chart of more lines is unreadable.
MAX_PINNED_SEGMENTS = 8


@dataclass(frozen=True)
class PinnedSegment:
    segment_id: int
    name: str
    member_count: int
    sizes: dict[date, int]  # business day -> size at its last refresh that day


# Per pinned segment, its size at the last refresh of each business day of the period, and
# its last size before the period (dated the day before it starts, so that the line starts at
# the size the period began with). Index size_snapshot_by_segment (segment_id, at).
_PINNED_SIZES_SQL = """
SELECT DISTINCT ON (segment_id, day) segment_id, day, size
FROM (
    SELECT segment_id, id, at, size,
           (at AT TIME ZONE %(zone)s)::date AS day
    FROM {snapshot}
    WHERE segment_id = ANY(%(segments)s) AND at >= %(start)s AND at < %(end)s
    UNION ALL
    SELECT before.* FROM unnest(%(segments)s::bigint[]) AS pinned(id)
    CROSS JOIN LATERAL (
        SELECT segment_id, id, at, size, %(first_day)s::date - 1 AS day
        FROM {snapshot}
        WHERE segment_id = pinned.id AND at < %(start)s
        ORDER BY at DESC, id DESC
        LIMIT 1
    ) before
) snapshots
ORDER BY segment_id, day, at DESC, id DESC
"""


def _pinned() -> QuerySet[Segment]:
    return Segment.objects.filter(pinned=True).order_by("name")[:MAX_PINNED_SEGMENTS]


def overview_pinned_segment_ids() -> list[int]:
    """The ids of the segments the overview draws (at most MAX_PINNED_SEGMENTS, by name)."""
    return list(_pinned().values_list("pk", flat=True))


def overview_pinned_segments(*, period: Period) -> list[PinnedSegment]:
    """The pinned segments (at most MAX_PINNED_SEGMENTS, by name) with their daily sizes over
    the period. Two queries."""
    segments = list(_pinned().values_list("pk", "name", "member_count"))
    if not segments:
        return []
    sizes: dict[int, dict[date, int]] = {pk: {} for pk, _name, _count in segments}
    with _panel_cursor() as cursor:
        cursor.execute(
            _PINNED_SIZES_SQL.format(snapshot=SegmentSizeSnapshot._meta.db_table),
            {
                "zone": settings.TIME_ZONE,
                "segments": list(sizes),
                "start": period.start,
                "end": period.end,
                "first_day": timezone.localtime(period.start).date(),
            },
        )
        for segment_id, day, size in cursor.fetchall():
            sizes[segment_id][day] = size
    return [
        PinnedSegment(segment_id=pk, name=name, member_count=count, sizes=sizes[pk])
        for pk, name, count in segments
    ]


# Campaigns ------------------------------------------------------------------------------

# How many campaigns the panel lists, the latest launched first.
MAX_CAMPAIGNS = 20


@dataclass(frozen=True)
class CampaignFigures:
    campaign_id: int
    name: str
    state: str
    state_label: str
    launched_at: datetime | None
    finished_at: datetime | None
    summary: CampaignSummary


def overview_campaigns(*, period: Period) -> list[CampaignFigures]:
    """The campaigns sending now or finished in the period (at most MAX_CAMPAIGNS, the latest
    launched first), each with its report's total figures. Two queries, whatever their number."""
    campaigns = list(
        Campaign.objects.filter(
            Q(state=CampaignState.SENDING)
            | Q(
                state=CampaignState.COMPLETED,
                finished_at__gte=period.start,
                finished_at__lt=period.end,
            )
        )
        .order_by(F("launched_at").desc(nulls_last=True), "-id")
        .only("pk", "name", "state", "launched_at", "finished_at")[:MAX_CAMPAIGNS]
    )
    with _panel_cursor():  # the summaries' query runs in its transaction, JIT off
        summaries = campaign_summaries(campaign_ids=[campaign.pk for campaign in campaigns])
    return [
        CampaignFigures(
            campaign_id=campaign.pk,
            name=campaign.name,
            state=campaign.state,
            state_label=campaign.get_state_display(),
            launched_at=campaign.launched_at,
            finished_at=campaign.finished_at,
            summary=summaries[campaign.pk],
        )
        for campaign in campaigns
    ]


# Contact pressure -----------------------------------------------------------------------

# The distribution of the last days' messages per customer groups every customer who
# received this many or more into its last bar.
MAX_RECEIVED_SHOWN = 15
PRESSURE_DAYS = 7


@dataclass(frozen=True)
class WeekPressure:
    week: date  # its Monday, in business time
    messages: int
    customers: int  # customers reached that week

    @property
    def per_customer(self) -> float | None:
        return self.messages / self.customers if self.customers else None


@dataclass(frozen=True)
class ContactPressure:
    weeks: list[WeekPressure]  # the weeks of the period with messages sent
    # messages received in the last PRESSURE_DAYS days (MAX_RECEIVED_SHOWN: that many or
    # more) -> customers who received that many
    received: dict[int, int]


# Messages sent in the period per week (with the customers they reached), and per customer in
# the last days grouped by how many each received, in one statement: both read index
# delivery_sent_by_time (sent_at, with customer_id) over the rows sent in their span.
_PRESSURE_SQL = """
SELECT 'week', date_trunc('week', sent_at AT TIME ZONE %(zone)s)::date, count(*),
       count(DISTINCT customer_id)
FROM {delivery}
WHERE status = 'sent' AND sent_at >= %(start)s AND sent_at < %(end)s
GROUP BY 2
UNION ALL
SELECT 'received', NULL, least(received, %(most)s), count(*)
FROM (
    SELECT customer_id, count(*) AS received
    FROM {delivery}
    WHERE status = 'sent' AND sent_at >= %(recent)s AND sent_at < %(end)s
    GROUP BY customer_id
) per_customer
GROUP BY 3
"""


def overview_contact_pressure(*, period: Period) -> ContactPressure:
    """Messages sent per week of the period and the customers they reached, and how many
    customers received 1, 2, … messages in the last PRESSURE_DAYS days. One query."""
    weeks: list[WeekPressure] = []
    received: dict[int, int] = {}
    with _panel_cursor() as cursor:
        cursor.execute(
            _PRESSURE_SQL.format(delivery=Delivery._meta.db_table),
            {
                "zone": settings.TIME_ZONE,
                "start": period.start,
                "end": period.end,
                "recent": period.end - timedelta(days=PRESSURE_DAYS),
                "most": MAX_RECEIVED_SHOWN,
            },
        )
        for kind, week, count, customers in cursor.fetchall():
            if kind == "week":
                weeks.append(WeekPressure(week=week, messages=count, customers=customers))
            else:
                received[count] = customers
    weeks.sort(key=lambda item: item.week)
    return ContactPressure(weeks=weeks, received=dict(sorted(received.items())))


def overview_frequency_rules() -> list[FrequencyRule]:
    """The active frequency rules, by name."""
    return list(frequency_rule_list(is_active=True))
