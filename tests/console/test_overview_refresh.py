"""The overview computed ahead: `overview_refresh` (beat, every five minutes) stores every
panel of every period, so that a visit reads them and computes nothing; the schedule comes
with the migrations."""

from datetime import timedelta
from decimal import Decimal

import pytest
from celery import current_app
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from console.overview import PERIOD_DAYS, REFRESH_SECONDS, overview_refresh
from segments.models import LifecycleState
from segments.portrait import BASE_CACHE_KEY
from segments.services.retention import retention_recompute
from tests.factories import CustomerFactory, CustomerMetricsFactory, OrderFactory
from tests.support import client_of

# The tables the panels count from: a visit after a refresh reads none of them.
COUNTED = (
    "crm_order",
    'crm_customer"',
    "segments_customermetrics",
    "segments_lifecycletransition",
    "segments_segmentsizesnapshot",
    "campaigns_delivery",
)


def _buyer(amount: str) -> None:
    an_hour_ago = timezone.now() - timedelta(hours=1)
    customer = CustomerFactory(first_seen_at=an_hour_ago)
    OrderFactory(customer=customer, paid_at=an_hour_ago, total_amount=Decimal(amount))
    CustomerMetricsFactory(customer=customer, lifecycle_state=LifecycleState.ACTIVE)


def _counting(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if any(t in q["sql"] for t in COUNTED)]


@pytest.mark.django_db
def test_after_a_refresh_every_period_s_visit_computes_nothing(admin_user: object) -> None:
    _buyer("120.00")
    retention_recompute()  # the nightly run's
    cache.clear()
    overview_refresh()
    assert cache.get(BASE_CACHE_KEY) is not None  # the portraits' figures of all customers

    client = client_of(admin_user)  # type: ignore[arg-type]
    for days in PERIOD_DAYS:
        with CaptureQueriesContext(connection) as visit:
            page = client.get(f"/admin/?period={days}")
        assert page.status_code == 200
        overview = page.context["overview"]
        assert {"kpis", "lifecycle", "lifecycle_flow", "rfm", "acquisition", "pinned"} <= set(
            overview
        )
        assert {"campaigns", "pressure"} <= set(overview)
        assert _counting(visit) == [], days


@pytest.mark.django_db
def test_a_refresh_replaces_the_figures_visitors_read(admin_user: object) -> None:
    client = client_of(admin_user)  # type: ignore[arg-type]
    _buyer("120.00")
    cache.clear()
    overview_refresh()
    revenue = client.get("/admin/").context["overview"]["kpis"]["cards"][4]

    _buyer("80.00")  # a new order: visitors read the last refresh's figures
    assert client.get("/admin/").context["overview"]["kpis"]["cards"][4] == revenue

    overview_refresh()
    refreshed = client.get("/admin/").context["overview"]["kpis"]["cards"][4]
    assert (revenue.exact, refreshed.exact) == ("¥120.00", "¥200.00")


@pytest.mark.django_db
def test_beat_refreshes_the_overview_every_five_minutes() -> None:
    task = PeriodicTask.objects.get(task="console.overview_refresh")
    assert task.name == "刷新运营看板"
    assert (task.interval.every, task.interval.period) == (REFRESH_SECONDS, "seconds")
    assert task.expire_seconds == REFRESH_SECONDS  # a run still queued when the next is due
    assert "console.overview_refresh" in current_app.tasks
