"""The retention pre-aggregate (segments.services.retention): its figures against a count in
Python of the same orders (several channels, refunds and cancellations, moments at the edges
of business months), a rerun, and the runs that leave it filled."""

import random
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import PURCHASE_STATUSES, Customer, Order, OrderStatus
from segments.models import CustomerMetrics, RetentionChannel, RetentionCohort
from segments.services.retention import (
    REPEAT_WITHIN_DAYS,
    RETENTION_COHORTS,
    retention_first_month,
    retention_recompute,
)
from segments.tasks import recompute_full_task, retention_recompute_task
from tests.factories import CustomerFactory, CustomerMetricsFactory, OrderFactory
from tests.segments.recompute_support import AS_OF, buyer

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 15, 10, 0, tzinfo=SHANGHAI)
CHANNELS = ("", "douyin", "xiaohongshu", "wecom", "offline_store")
STATUSES = (*[OrderStatus.PAID] * 5, *OrderStatus)  # mostly paid, some refunded or cancelled
# The night after the recomputation tests' day.
NIGHT = datetime.combine(AS_OF + timedelta(days=1), time(3), tzinfo=SHANGHAI)


def _moment(rng: random.Random) -> datetime:
    """A moment from January 2025 to April 2026 in business time, often at a month's edge:
    00:30 on the 1st (still the month before in UTC) or 23:30 on the last day."""
    index = 2025 * 12 + rng.randrange(16)
    month = date(index // 12, index % 12 + 1, 1)
    edge = rng.choice(("first", "last", "inside", "inside"))
    if edge == "first":
        return datetime(month.year, month.month, 1, 0, 30, tzinfo=SHANGHAI)
    if edge == "last":
        last = (month + timedelta(days=31)).replace(day=1) - timedelta(days=1)
        return datetime(last.year, last.month, last.day, 23, 30, tzinfo=SHANGHAI)
    return datetime(month.year, month.month, rng.randint(1, 28), rng.randrange(24), tzinfo=SHANGHAI)


def _brand(seed: int, customers: int = 60) -> None:
    """Customers of several channels with one to five orders each, some refunded or
    cancelled, and their metrics' first purchase as the recomputation keeps it."""
    rng = random.Random(seed)
    for _ in range(customers):
        customer = CustomerFactory(source_channel=rng.choice(CHANNELS))
        paid = []
        for _ in range(rng.randint(1, 5)):
            status = rng.choice(STATUSES)
            moment = _moment(rng)
            OrderFactory(customer=customer, paid_at=moment, status=status)
            if status in PURCHASE_STATUSES:
                paid.append(moment)
        CustomerMetricsFactory(customer=customer, first_paid_at=min(paid, default=None))
    # At the bounds: a first order exactly 60 days before NOW (old enough for 60 days) and a
    # second exactly 30 days after it (back within 30 days); a first order at midnight on 1
    # February in business time (31 January in UTC) and an order at NOW (not yet counted).
    for channel, paid in (
        ("wecom", (NOW - timedelta(days=60), NOW - timedelta(days=30))),
        ("douyin", (datetime(2026, 2, 1, 0, 0, tzinfo=SHANGHAI), NOW)),
    ):
        customer = CustomerFactory(source_channel=channel)
        for moment in paid:
            OrderFactory(customer=customer, paid_at=moment)
        CustomerMetricsFactory(customer=customer, first_paid_at=paid[0])


def _month(moment: datetime) -> date:
    return timezone.localtime(moment, SHANGHAI).date().replace(day=1)


def _months_between(first: date, second: date) -> int:
    return (second.year - first.year) * 12 + second.month - first.month


def _counted_in_python(now: datetime) -> dict[str, Any]:
    """The figures as of `now`, counted one customer at a time from the rows themselves."""
    start = datetime.combine(retention_first_month(now), time(0), tzinfo=SHANGHAI)
    current = _month(now)
    first_paid = dict(
        CustomerMetrics.objects.filter(first_paid_at__gte=start, first_paid_at__lt=now).values_list(
            "customer_id", "first_paid_at"
        )
    )
    later: dict[int, list[datetime]] = defaultdict(list)
    for order in Order.objects.filter(customer_id__in=first_paid, status__in=PURCHASE_STATUSES):
        if first_paid[order.customer_id] < order.paid_at < now:
            later[order.customer_id].append(order.paid_at)
    cohorts: dict[tuple[date, int], int] = defaultdict(int)
    first_month = retention_first_month(now)
    for offset in range(RETENTION_COHORTS):
        index = first_month.year * 12 + first_month.month - 1 + offset
        cohorts[date(index // 12, index % 12 + 1, 1), 0] = 0
    channels: dict[tuple[str, int], list[int]] = {}
    for customer_id, first in first_paid.items():
        month = _month(first)
        cohorts[month, 0] += 1
        for number in {_months_between(month, _month(moment)) for moment in later[customer_id]}:
            if number >= 1:
                cohorts[month, number] += 1
        channel = Customer.objects.get(pk=customer_id).source_channel
        gap = min((moment - first for moment in later[customer_id]), default=None)
        for days in REPEAT_WITHIN_DAYS:
            figures = channels.setdefault((channel, days), [0, 0, 0])
            figures[0] += 1
            if first <= now - timedelta(days=days):
                figures[1] += 1
                figures[2] += gap is not None and gap <= timedelta(days=days)
    assert all(number <= _months_between(month, current) for month, number in cohorts)
    return {
        "cohorts": dict(cohorts),
        "channels": {key: tuple(figures) for key, figures in channels.items()},
    }


def _stored() -> dict[str, Any]:
    return {
        "cohorts": {
            (row.month, row.months_since_first): row.customers
            for row in RetentionCohort.objects.all()
        },
        "channels": {
            (row.source_channel, row.within_days): (row.customers, row.eligible, row.repeat_buyers)
            for row in RetentionChannel.objects.all()
        },
    }


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_pre_aggregate_counts_what_the_orders_say(seed: int) -> None:
    _brand(seed)
    retention_recompute(now=NOW)
    expected = _counted_in_python(NOW)
    assert _stored() == expected
    # The fixture reaches what it means to: several channels, orders refunded or cancelled,
    # and repeat buyers.
    assert len({channel for channel, _days in expected["channels"]}) >= 4
    assert Order.objects.exclude(status__in=PURCHASE_STATUSES).count() >= 5
    assert any(number for _month, number in expected["cohorts"])
    assert {row.computed_at for row in RetentionCohort.objects.all()} == {NOW}
    assert {row.computed_at for row in RetentionChannel.objects.all()} == {NOW}


@pytest.mark.django_db
def test_a_rerun_replaces_the_figures_and_the_same_data_gives_the_same_rows() -> None:
    _brand(4)
    retention_recompute(now=NOW)
    first = _stored()
    retention_recompute(now=NOW)
    assert _stored() == first
    later = NOW + timedelta(days=40)  # April: a new cohort month, March's buyers now older
    retention_recompute(now=later)
    assert _stored() == _counted_in_python(later)
    assert {row.computed_at for row in RetentionCohort.objects.all()} == {later}


@pytest.mark.django_db
def test_the_computation_makes_as_many_statements_whatever_the_data() -> None:
    def statements() -> int:
        with CaptureQueriesContext(connection) as queries:
            retention_recompute(now=NOW)
        return len(queries)

    few = statements()
    _brand(5)
    assert statements() == few


@pytest.mark.django_db
def test_with_no_first_purchase_every_month_is_stored_empty() -> None:
    retention_recompute(now=NOW)
    months = list(RetentionCohort.objects.order_by("month").values_list("month", "customers"))
    assert months == [
        (date(2025 + (3 + offset) // 12, (3 + offset) % 12 + 1, 1), 0)
        for offset in range(RETENTION_COHORTS)
    ]
    assert not RetentionChannel.objects.exists()


@pytest.mark.django_db
def test_a_queued_first_computation_leaves_figures_already_there_alone() -> None:
    _brand(6)
    retention_recompute(now=NOW)
    retention_recompute_task()
    assert {row.computed_at for row in RetentionCohort.objects.all()} == {NOW}


@pytest.mark.django_db
def test_the_nightly_run_and_the_command_leave_the_figures_computed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NIGHT)
    buyer(recency=2, orders=2, spend=100)
    recompute_full_task(trigger="test", as_of=AS_OF.isoformat())
    assert _stored() == _counted_in_python(NIGHT)
    assert RetentionCohort.objects.filter(months_since_first=0, customers=1).exists()
    RetentionCohort.objects.all().delete()
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=StringIO())
    assert RetentionCohort.objects.filter(months_since_first=0, customers=1).exists()
    assert {row.computed_at for row in RetentionCohort.objects.all()} == {NIGHT}


@pytest.mark.django_db
def test_an_incremental_run_leaves_the_figures_as_they_were(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timezone, "now", lambda: NIGHT)
    customer = buyer(recency=2, orders=2, spend=100)
    call_command("recompute", "--as-of", AS_OF.isoformat(), "--no-progress", stdout=StringIO())
    RetentionCohort.objects.all().delete()
    call_command("recompute", "--customers", str(customer.pk), "--no-progress", stdout=StringIO())
    assert not RetentionCohort.objects.exists()
