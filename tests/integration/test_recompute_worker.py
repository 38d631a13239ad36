"""Recomputation on a real worker over a real broker: the sweep of marked customers and the
segment refresh that follows it, delivered twice without harm."""

import pytest

from crm.services.customers import customers_mark_dirty
from segments.models import CustomerMetrics, RecomputeRun, Segment, SegmentMembership
from segments.tasks import recompute_dirty_task, recompute_full_task
from tests.factories import CustomerFactory, OrderFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_sweep_on_the_worker_recomputes_and_refreshes_segments(celery_worker) -> None:
    # Written directly: segment_create would queue its first refresh on the default queue.
    segment = Segment.objects.create(
        name="buyers", kind="dynamic", rule={"field": "order_count", "op": "gte", "value": 1}
    )
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
