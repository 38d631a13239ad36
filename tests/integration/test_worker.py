"""The CRM's tasks run on a real worker over a real broker, published after commit."""

import pytest
from django.db import transaction

from crm.models import Customer, CustomerMerge
from crm.tasks import customers_merge_task
from tests.factories import CustomerFactory, OrderFactory
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_merge_task_runs_on_the_worker_after_commit(celery_worker) -> None:
    first, second = CustomerFactory(), CustomerFactory()
    OrderFactory(customer=second)
    with transaction.atomic():
        transaction.on_commit(
            lambda: customers_merge_task.apply_async(
                args=[[first.pk, second.pk], "operator:1", "duplicate"], queue=celery_worker.queue
            )
        )
    wait_for(lambda: CustomerMerge.objects.exists(), worker=celery_worker)
    merge = CustomerMerge.objects.get()
    assert (merge.survivor_id, merge.merged_customer_id) == (first.pk, second.pk)
    assert merge.moved["orders"] == 1
    assert list(Customer.objects.values_list("pk", flat=True)) == [first.pk]


def test_merge_task_delivered_twice_merges_once(celery_worker) -> None:
    first, second = CustomerFactory(), CustomerFactory()
    for _ in range(2):
        customers_merge_task.apply_async(
            args=[[first.pk, second.pk], "operator:1", "duplicate"], queue=celery_worker.queue
        )
    wait_for(
        lambda: "succeeded" in celery_worker.log() and celery_worker.log().count("succeeded") >= 2,
        worker=celery_worker,
    )
    assert CustomerMerge.objects.count() == 1
    assert list(Customer.objects.values_list("pk", flat=True)) == [first.pk]
