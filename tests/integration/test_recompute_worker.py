"""Recomputation on a real worker over a real broker: the sweep of marked customers and the
segment refresh that follows it, delivered twice without harm; a backfill recorded apart."""

import pytest

from crm.services.marks import customers_mark_dirty
from segments.models import CustomerMetrics, RecomputeRun, Segment, SegmentMembership
from segments.tasks import recompute_dirty_task, recompute_full_task
from tests.factories import CustomerFactory, OrderFactory, SegmentFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_sweep_on_the_worker_recomputes_and_refreshes_segments(celery_worker) -> None:
    # Written directly: segment_create would queue its first refresh on the default queue.
    segment = SegmentFactory(name="buyers", rule={"field": "order_count", "op": "gte", "value": 1})
    OrderFactory(customer=CustomerFactory())  # a buyer: the full run gets breakpoints
    recompute_full_task.apply_async(kwargs={"trigger": "test"}, queue=celery_worker.queue)
    wait_for(lambda: RecomputeRun.objects.filter(status="succeeded").exists(), worker=celery_worker)
    customer = CustomerFactory()
    OrderFactory(customer=customer)
    customers_mark_dirty([customer.pk])
    for _ in range(2):  # a duplicate delivery finds no marks left and does nothing
        recompute_dirty_task.apply_async(queue=celery_worker.queue)
    wait_for(
        lambda: SegmentMembership.objects.filter(segment=segment, customer=customer).exists(),
        worker=celery_worker,
    )
    wait_for(lambda: celery_worker.log().count("succeeded") >= 3, worker=celery_worker)
    assert CustomerMetrics.objects.get(customer=customer).lifecycle_state == "new"
    assert list(RecomputeRun.objects.order_by("id").values_list("kind", "status")) == [
        ("full", "succeeded"),
        ("incremental", "succeeded"),
    ]


def test_backfill_requested_over_the_api_is_recorded_apart_on_the_worker(
    celery_worker, publish_to_test_queue, api_client_with_scopes
) -> None:
    """A date before the latest full run, asked for over the API and run by a real worker:
    its figures are recorded, and the live rows and the feed are as they were."""
    from datetime import date

    from segments.models import LifecycleTransition
    from segments.services.recompute import recompute_full
    from segments.services.segments import segments_refresh_all
    from tests.segments.recompute_support import AS_OF, order

    segment = SegmentFactory(
        name="sleeping", rule={"field": "lifecycle_state", "op": "eq", "value": "sleeping"}
    )
    customer = CustomerFactory()  # new on 2026-03-01, sleeping as of AS_OF
    order(customer, days_ago=150)
    recompute_full(trigger="test", as_of=AS_OF)
    segments_refresh_all()
    live = (
        list(CustomerMetrics.objects.values()),
        list(LifecycleTransition.objects.values()),
        list(SegmentMembership.objects.values()),
        list(Segment.objects.values("member_count", "refreshed_at")),
    )
    assert [(m["segment_id"], m["customer_id"]) for m in live[2]] == [(segment.pk, customer.pk)]

    response = api_client_with_scopes("segments").post(
        "/api/v1/recompute", {"as_of": "2026-03-01"}, format="json"
    )
    assert response.status_code == 202
    wait_for(lambda: "succeeded" in celery_worker.log(), worker=celery_worker)

    assert (
        list(CustomerMetrics.objects.values()),
        list(LifecycleTransition.objects.values()),
        list(SegmentMembership.objects.values()),
        list(Segment.objects.values("member_count", "refreshed_at")),
    ) == live
    assert response.json()["backfill"] is True
    from segments.models import BackfillCount

    run = RecomputeRun.objects.get(kind="backfill")
    assert (run.status, run.as_of, run.customers_processed) == ("succeeded", date(2026, 3, 1), 1)
    assert list(
        BackfillCount.objects.filter(run=run).values_list(
            "lifecycle_state", "rfm_tier", "customers"
        )
    ) == [("new", "general_develop", 1)]
