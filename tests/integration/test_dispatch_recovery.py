"""Webhook campaigns on real workers over a real broker, posting to a receiver in this process
over real HTTP: a worker killed mid-dispatch while customers opt out through the API, its call
taken over by another worker, posts to nobody after their opt-out was answered; and a broker
that loses every queued message mid-dispatch has everything queued again by the tick within
CHANNEL_REQUEUE_SECONDS and a tick."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kombu import Exchange, Queue
from rest_framework.test import APIClient

from campaigns.models import DeliveryReason, DeliveryStatus
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.pipeline import campaigns_tick
from config.celery import app
from crm.models import Customer
from tests.campaigns.support import (
    WebhookReceiver,
    audience,
    has_nothing_in_flight,
    outcomes,
    webhook_campaign,
)
from tests.factories import CustomerFactory
from tests.integration.conftest import Worker, wait_for
from tests.support import on_own_connection

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("publish_to_test_queue")]

# Loopback receivers: allowed where the webhook channel checks the network it posts to.
WORKER_ENV = {"WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1"}


@pytest.fixture
def receiver(webhook_receiver: WebhookReceiver) -> WebhookReceiver:
    """The webhook receiver, holding the first post it gets until released."""
    webhook_receiver.is_holding = True
    return webhook_receiver


def test_a_worker_killed_mid_dispatch_posts_to_nobody_after_their_opt_out_was_answered(
    receiver: WebhookReceiver,
    start_celery_worker: Callable[..., Worker],
    api_client_with_scopes: Callable[..., APIClient],
    settings: Any,
) -> None:
    """The worker is SIGKILLed inside its first post. Customers opt out through the API: some
    before a second worker takes over, others while it sends. No customer receives a post
    that arrived after their opt-out was answered."""
    settings.CHANNEL_ORPHAN_SECONDS = 1  # the tick (this process) and the workers agree
    env = {**WORKER_ENV, "CHANNEL_ORPHAN_SECONDS": "1"}
    worker = start_celery_worker(env=env)
    customers = CustomerFactory.create_batch(30)
    campaign = webhook_campaign(audience(customers, "killed"), receiver.url, name="killed")
    client = api_client_with_scopes("consents:write")
    answered: dict[int, float] = {}

    def opt_out(customer: Customer) -> None:
        response = client.post(
            "/api/v1/consents",
            {"customer_id": customer.pk, "channel": "sms", "status": "opted_out", "source": "api"},
            format="json",
        )
        assert response.status_code == 201, response.content
        answered[customer.pk] = time.monotonic()

    campaign_launch(campaign_id=campaign.pk, actor="test")
    assert receiver.arrived.wait(timeout=60), worker.log()
    worker.kill()
    (first_posted,) = receiver.posted_customers()
    rest = [c for c in customers if c.pk != first_posted]
    before_takeover, while_sending = rest[:8], rest[8:20]
    for customer in before_takeover:
        opt_out(customer)
    receiver.release.set()  # the dead worker's post is answered, to nobody

    def opt_out_while_sending() -> None:
        for customer in while_sending:
            opt_out(customer)

    time.sleep(settings.CHANNEL_ORPHAN_SECONDS)  # the dead attempt must be old enough
    successor = start_celery_worker(env=env)
    racing = threading.Thread(target=on_own_connection(opt_out_while_sending))
    racing.start()
    campaigns_tick()  # finds the call orphaned, queues it for the successor
    racing.join(timeout=60)
    wait_for(lambda: has_nothing_in_flight(campaign), timeout=60, worker=successor)

    # No post after an opt-out's answer.
    for customer_id, at in receiver.posted():
        if customer_id in answered:
            assert at < answered[customer_id], f"customer {customer_id} posted after opting out"
    # Opted out before the takeover: suppressed, never posted to.
    result = outcomes(campaign)
    for customer in before_takeover:
        assert result[customer.pk] == (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT)
        assert customer.pk not in receiver.posted_customers()
    # Opted out while it sent: suppressed, or posted (once) before the answer and sent.
    for customer in while_sending:
        posted = receiver.posted_customers().count(customer.pk)
        assert (result[customer.pk], posted) in {
            ((DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT), 0),
            ((DeliveryStatus.SENT, ""), 1),
        }
    # Everyone else was sent, once (the killed post again, with its idempotency key).
    others = [c for c in customers if c not in before_takeover and c not in while_sending]
    for customer in others:
        assert result[customer.pk] == (DeliveryStatus.SENT, "")
        assert receiver.posted_customers().count(customer.pk) == (
            2 if customer.pk == first_posted else 1
        )


def queue_purge(name: str) -> int:
    """Drop every message waiting in the test's queue, as a broker restarted empty would."""
    with app.connection_for_write() as broker:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(broker.default_channel)
        return int(queue.purge() or 0)


def test_a_broker_that_lost_its_queue_mid_dispatch_has_everything_queued_again_in_time(
    receiver: WebhookReceiver,
    start_celery_worker: Callable[..., Worker],
    celery_queue: str,
    settings: Any,
) -> None:
    """While the worker is inside a post of campaign A, campaign B's plan task and campaign
    C's dispatch task wait in the queue; the queue is then emptied. With the beat's tick
    (run here every half second), both are queued again once CHANNEL_REQUEUE_SECONDS have
    passed, and every customer is posted to exactly once."""
    requeue_seconds = 2
    settings.CHANNEL_REQUEUE_SECONDS = requeue_seconds
    worker = start_celery_worker(env=WORKER_ENV)
    groups = [CustomerFactory.create_batch(n) for n in (3, 4, 5)]
    a, b, c = (
        webhook_campaign(audience(group, name), receiver.url, name=name)
        for group, name in zip(groups, ("a", "b", "c"), strict=True)
    )
    campaign_launch(campaign_id=a.pk, actor="test")
    assert receiver.arrived.wait(timeout=60), worker.log()
    campaign_launch(campaign_id=b.pk, actor="test")  # its plan task waits in the queue
    campaign_launch(campaign_id=c.pk, actor="test")
    campaign_plan(campaign_id=c.pk)  # its dispatch task waits in the queue (and its plan)

    assert queue_purge(celery_queue) >= 3  # the broker lost them
    lost_at = time.monotonic()
    receiver.release.set()
    deadline = lost_at + requeue_seconds + 30  # the bound, with room for a busy machine
    while not all(has_nothing_in_flight(campaign) for campaign in (a, b, c)):
        assert time.monotonic() < deadline, f"still waiting after the bound:\n{worker.log()}"
        campaigns_tick()  # the beat's tick
        time.sleep(0.5)

    for campaign, group in zip((a, b, c), groups, strict=True):
        assert outcomes(campaign) == {customer.pk: (DeliveryStatus.SENT, "") for customer in group}
    assert sorted(receiver.posted_customers()) == sorted(c.pk for g in groups for c in g)
