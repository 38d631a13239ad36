"""Enqueueing by task name (`core.enqueue` and the apps' enqueue modules): published only once
the caller's transaction commits, never for one that rolls back; an unknown name fails in the
caller; and every function of the apps' enqueue modules names a registered task whose
signature takes the arguments it sends."""

import inspect
from datetime import date
from unittest import mock

import pytest
from celery import current_app
from celery.exceptions import NotRegistered
from django.db import transaction

from campaigns import enqueue as campaigns_enqueue
from core.enqueue import enqueue_on_commit
from segments import enqueue as segments_enqueue
from tests.conftest import Enqueued


@pytest.mark.django_db(transaction=True)
def test_a_task_is_published_once_the_transaction_commits_and_never_after_a_rollback(
    enqueued: list[Enqueued],
) -> None:
    with transaction.atomic():
        segments_enqueue.segment_refresh(segment_id=7)
        assert enqueued == []
    assert enqueued == [Enqueued("segments.segment_refresh", (7,), {})]

    enqueued.clear()
    with pytest.raises(RuntimeError), transaction.atomic():
        campaigns_enqueue.campaign_plan(campaign_id=8)
        raise RuntimeError("rolled back")
    assert enqueued == []


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_task_is_published_at_once(enqueued: list[Enqueued]) -> None:
    campaigns_enqueue.channel_sends_run(channel_send_ids=[3, 4])
    assert enqueued == [Enqueued("campaigns.run_channel_sends", ([3, 4],), {})]


def test_an_unknown_task_name_fails_in_the_caller(enqueued: list[Enqueued]) -> None:
    with mock.patch("core.enqueue.transaction.on_commit") as on_commit:
        with pytest.raises(NotRegistered):
            enqueue_on_commit("segments.no_such_task", 1)
        on_commit.assert_not_called()
    assert enqueued == []


@pytest.mark.django_db(transaction=True)
def test_every_enqueue_function_sends_what_its_task_takes(enqueued: list[Enqueued]) -> None:
    day = date(2026, 3, 1)
    segments_enqueue.recompute_full(trigger="api", as_of=day)
    segments_enqueue.recompute_customers(customer_ids=[2, 1], trigger="api")
    segments_enqueue.segment_refresh(segment_id=5)
    segments_enqueue.models_fit(trigger="admin", as_of=day, wait=False)
    campaigns_enqueue.campaign_plan(campaign_id=6)
    campaigns_enqueue.campaign_reserve(campaign_id=6)
    campaigns_enqueue.channel_sends_run(channel_send_ids=[9])
    campaigns_enqueue.conversions_attribute(customer_ids=[1, 2])

    assert enqueued == [
        Enqueued("segments.recompute_full", (), {"trigger": "api", "as_of": "2026-03-01"}),
        Enqueued("segments.recompute_customers", ([2, 1],), {"trigger": "api", "as_of": None}),
        Enqueued("segments.segment_refresh", (5,), {}),
        Enqueued(
            "segments.fit_models", (), {"trigger": "admin", "as_of": "2026-03-01", "wait": False}
        ),
        Enqueued("campaigns.plan", (6,), {}),
        Enqueued("campaigns.reserve", (6,), {}),
        Enqueued("campaigns.run_channel_sends", ([9],), {}),
        Enqueued("campaigns.attribute_customers", ([1, 2],), {}),
    ]
    for task in enqueued:
        inspect.signature(current_app.tasks[task.name].run).bind(*task.args, **task.kwargs)
