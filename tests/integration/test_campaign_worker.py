"""The campaign pipeline on a real worker over a real broker, sending to the WeCom fake over
real HTTP: a launch reaches each eligible customer once, a dispatch delivered five times sends
once, and a worker (or only its pool process) killed inside the WeCom call neither loses nor
repeats a message, even when one sender's text went out in several tasks.

The fake runs in the test process on loopback; the worker gets its address through the same
environment variables as production (WECOM_API_BASE_URL, WECOM_CORP_ID, WECOM_SECRET), and
WECOM_POLL_SECONDS=0 so that results may be polled as soon as a task is accepted."""

import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from campaigns import tasks
from campaigns.channels.wecom import WeComCustomerChannel
from campaigns.models import (
    Campaign,
    CampaignState,
    ChannelSend,
    ChannelSendState,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.dispatch import orphan_after, orphaned_channel_sends, requeue_after
from campaigns.services.pipeline import campaigns_tick
from campaigns.services.reservation import deliveries_reserve_batch
from crm.models import Customer, StaffMember
from devstack.wecom_fake import (
    ENDPOINT_ADD_MSG_TEMPLATE,
    ENDPOINT_GET_GROUPMSG_LIST_V2,
    RECEIVER_SENT,
    FakeWeCom,
)
from tests.campaigns.support import (
    CORP_ID,
    WECOM_SECRET,
    audience,
    calls_of,
    has_nothing_in_flight,
    make_campaign,
    opt_out,
    statuses,
    wecom_customers,
    wecom_received,
)
from tests.conftest import Enqueued
from tests.factories import StaffMemberFactory
from tests.integration.conftest import Worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("publish_to_test_queue")]

ORPHAN_SECONDS = 2
DISPATCH = r"Task campaigns\.run_channel_sends\[([^\]]+)\]"
DISPATCH_SUCCEEDED = re.compile(DISPATCH + r" succeeded in [\d.]+s: (\d+)")


@pytest.fixture
def wecom_worker(
    fake: FakeWeCom, start_celery_worker: Callable[..., Worker]
) -> Callable[..., Worker]:
    """`wecom_worker(concurrency=1, orphan_seconds=ORPHAN_SECONDS)`: a worker whose WeCom
    client talks to the fake, and which looks up and retries a call attempted `orphan_seconds`
    ago (CHANNEL_ORPHAN_SECONDS, 60 s in production)."""

    def start(concurrency: int = 1, orphan_seconds: int = ORPHAN_SECONDS) -> Worker:
        env = {
            "WECOM_API_BASE_URL": fake.api_base_url,
            "WECOM_CORP_ID": CORP_ID,
            "WECOM_SECRET": WECOM_SECRET,
            "WECOM_POLL_SECONDS": "0",
            "CHANNEL_ORPHAN_SECONDS": str(orphan_seconds),
        }
        return start_celery_worker(env=env, concurrency=concurrency)

    return start


def two_owners_customers(per_owner: int) -> tuple[list[StaffMember], list[Customer]]:
    """Customers of two staff members: each text goes out in one WeCom task per sender."""
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    return owners, [c for owner in owners for c in wecom_customers(per_owner, owner=owner)]


def external_userid(customer: Customer) -> str:
    return f"ext-{customer.pk}"


def tasks_by_sender(fake: FakeWeCom) -> Counter[tuple[str, str]]:
    """How many bulk-message tasks the fake holds per (sender, text)."""
    return Counter(
        (task["userid"], message["request"]["text"]["content"])
        for message in fake.messages()
        for task in message["tasks"]
    )


def calls_to(fake: FakeWeCom, endpoint: str) -> int:
    return sum(call["endpoint"] == endpoint for call in fake.calls())


def poll_results(worker: Worker, campaign: Campaign) -> None:
    tasks.wecom_results_poll_task.delay()
    wait_for(
        lambda: not campaign.deliveries.filter(status=DeliveryStatus.SUBMITTED).exists(),
        worker=worker,
    )


class HeldCall:
    """Holds the first add_msg_template request at the fake until `release`: meanwhile its
    worker waits inside the call, as it would on a slow platform, for as long as the test
    needs (a fixed latency would race the worker instead). `answered` is set once the fake
    has answered it, to whoever is still listening."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered = threading.Event()
        self._lock = threading.Lock()

    def install(self, fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> None:
        answer = fake.handle_http

        def handle_http(method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:
            with self._lock:
                is_held = ENDPOINT_ADD_MSG_TEMPLATE in raw_path and not self.arrived.is_set()
                if is_held:
                    self.arrived.set()
            if not is_held:
                return answer(method, raw_path, body)
            self.release.wait(timeout=60)
            try:
                return answer(method, raw_path, body)
            finally:
                self.answered.set()

        monkeypatch.setattr(fake, "handle_http", handle_http)


@pytest.fixture
def held_call(fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldCall]:
    held = HeldCall()
    held.install(fake, monkeypatch)
    yield held
    held.release.set()  # a failed test must not leave the fake's thread waiting


def dispatches_succeeded(worker: Worker) -> list[int]:
    """What each campaigns.run_channel_sends the worker finished answered (calls it ran)."""
    return [int(ran) for _task, ran in DISPATCH_SUCCEEDED.findall(worker.log())]


def test_a_launched_campaign_reaches_each_eligible_customer_once(
    fake: FakeWeCom, wecom_worker: Callable[..., Worker]
) -> None:
    worker = wecom_worker()
    owners, customers = two_owners_customers(20)
    opted_out = customers[::10]
    for customer in opted_out:
        opt_out(customer)
    campaign = make_campaign(audience(customers), holdout_share=Decimal("0.25"))

    campaign_launch(campaign_id=campaign.pk, actor="test")  # plan is queued after commit
    wait_for(lambda: has_nothing_in_flight(campaign), worker=worker)
    poll_results(worker, campaign)

    held_out = set(
        campaign.deliveries.filter(is_holdout=True).values_list("customer_id", flat=True)
    )
    assert 0 < len(held_out) < 20  # a salted draw: 40 customers at 25 % give some of each
    assert held_out.isdisjoint(c.pk for c in opted_out)
    eligible = [c for c in customers if c not in opted_out and c.pk not in held_out]
    assert statuses(campaign) == {
        DeliveryStatus.SENT: len(eligible),
        DeliveryStatus.HELD_OUT: len(held_out),
        DeliveryStatus.SUPPRESSED: len(opted_out),
    }
    assert set(
        campaign.deliveries.filter(status=DeliveryStatus.SUPPRESSED).values_list(
            "customer_id", "reason"
        )
    ) == {(c.pk, DeliveryReason.OPTED_OUT) for c in opted_out}
    # Each eligible customer was asked for once, from their owner, and reached.
    assert wecom_received(fake) == sorted(external_userid(c) for c in eligible)
    assert calls_to(fake, ENDPOINT_ADD_MSG_TEMPLATE) == 2
    for message in fake.messages():
        (task,) = message["tasks"]
        owner = next(o for o in owners if o.wecom_userid == task["userid"])
        assert sorted(message["request"]["external_userid"]) == sorted(
            external_userid(c) for c in eligible if c.owner_id == owner.pk
        )
        assert {r["status"] for r in task["receivers"]} == {RECEIVER_SENT}
    campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.COMPLETED


def test_a_dispatch_delivered_five_times_sends_once(
    fake: FakeWeCom,
    wecom_worker: Callable[..., Worker],
    held_call: HeldCall,
    enqueued: list[Enqueued],
) -> None:
    worker = wecom_worker(concurrency=4)
    _owners, customers = two_owners_customers(6)
    campaign = make_campaign(audience(customers))
    # The test plans and reserves in its own process and holds back the dispatches queued.
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)  # may reserve as it plans
    deliveries_reserve_batch(campaign_id=campaign.pk)
    assert statuses(campaign) == {DeliveryStatus.RESERVED: 12}
    queued = [args for name, args, _ in enqueued if name == "campaigns.run_channel_sends"]
    # One task for both calls (one per sender), as small calls are queued together.
    assert [ids for (ids,) in queued] == [calls_of(campaign)]
    assert len(calls_of(campaign)) == 2

    def publish(copies: int) -> None:
        with ThreadPoolExecutor(max_workers=len(queued) * copies) as pool:  # all at once
            for (ids,) in queued * copies:
                pool.submit(tasks.channel_sends_run_task.apply_async, args=[ids])

    publish(2)  # two copies at once: one takes the first call, the other finds it locked
    assert held_call.arrived.wait(timeout=30), worker.log()
    # One copy now waits inside the first WeCom call, its attempt committed. Two more copies
    # arrive meanwhile and finish without waiting: the call is locked, the other sender's
    # is run by one copy at most.
    publish(2)
    wait_for(lambda: len(dispatches_succeeded(worker)) == 4 * len(queued) - 1, worker=worker)
    held_call.release.set()
    wait_for(lambda: len(dispatches_succeeded(worker)) == 4 * len(queued), worker=worker)
    publish(1)  # and a late copy, after the sends were accepted
    wait_for(lambda: len(dispatches_succeeded(worker)) == 5 * len(queued), worker=worker)

    # Each copy answers how many calls it ran: two in all, one per sender.
    assert sum(dispatches_succeeded(worker)) == 2
    assert sorted(ChannelSend.objects.values_list("state", "attempts")) == [
        (ChannelSendState.ACCEPTED, 1),
        (ChannelSendState.ACCEPTED, 1),
    ]
    assert calls_to(fake, ENDPOINT_ADD_MSG_TEMPLATE) == 2
    assert wecom_received(fake) == sorted(external_userid(c) for c in customers)
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 12}


@pytest.mark.parametrize("is_created", [True, False], ids=["call-created-the-task", "call-lost"])
def test_a_worker_killed_inside_the_wecom_call_neither_loses_nor_repeats_a_message(
    is_created: bool,
    fake: FakeWeCom,
    wecom_worker: Callable[..., Worker],
    held_call: HeldCall,
) -> None:
    """The worker is SIGKILLed with its pool while it waits for add_msg_template. The platform
    then either creates the task all the same (`is_created`) or never does (the fake answers
    the dead request with HTTP 500). Once the send is orphaned, the tick hands it to a new
    worker, which must leave exactly one task per sender either way."""
    worker = wecom_worker()
    owners, customers = two_owners_customers(5)
    campaign = make_campaign(audience(customers))

    campaign_launch(campaign_id=campaign.pk, actor="test")
    assert held_call.arrived.wait(timeout=30), worker.log()
    worker.kill()
    # The attempt was written before the call; its outcome is unknown. The other sender's
    # call, next in the same task, was never attempted.
    attempted = ChannelSend.objects.get(state=ChannelSendState.REQUESTED, attempts=1)
    assert set(attempted.deliveries.values_list("status", flat=True)) == {DeliveryStatus.RESERVED}
    assert ChannelSend.objects.filter(state=ChannelSendState.REQUESTED, attempts=0).count() == 1
    if not is_created:
        fake.inject_http_error(ENDPOINT_ADD_MSG_TEMPLATE, status=500)  # for the dead request
    # The platform answers the dead request before the send counts as orphaned, as it does
    # once CHANNEL_ORPHAN_SECONDS (60 s) have passed since the attempt: a call times out
    # after 10 s.
    held_call.release.set()
    assert held_call.answered.wait(timeout=10)
    assert len(fake.messages()) == (1 if is_created else 0)

    time.sleep(ORPHAN_SECONDS)  # the new worker judges the attempt's age by the real clock
    # The attempted call is taken for orphaned once its attempt is old enough; the other one,
    # never attempted, only once its task is taken for lost.
    soon = timezone.now() + orphan_after() + timedelta(seconds=1)
    assert orphaned_channel_sends(now=soon) == [attempted.pk]
    later = timezone.now() + requeue_after() + timedelta(seconds=1)
    assert sorted(orphaned_channel_sends(now=later)) == calls_of(campaign)
    # A new worker takes over the queue with whatever the first one left in it (RabbitMQ also
    # gives the killed dispatch back at once; Redis only after its visibility timeout).
    worker = wecom_worker()
    campaigns_tick(now=later)
    wait_for(lambda: dispatches_settled(worker, campaign), worker=worker)
    assert has_nothing_in_flight(campaign)
    # A late redelivery of the killed dispatch (the broker gives an unacknowledged task back
    # after its visibility timeout) finds nothing left to do.
    finished = len(dispatches_succeeded(worker))
    tasks.channel_sends_run_task.delay(list(ChannelSend.objects.values_list("id", flat=True)))
    wait_for(lambda: dispatches_succeeded(worker)[finished:] == [0], worker=worker)
    poll_results(worker, campaign)

    # Nothing lost: everyone was reached. Nothing repeated: one task per sender, each
    # customer in exactly one of them.
    assert statuses(campaign) == {DeliveryStatus.SENT: 10}
    assert tasks_by_sender(fake) == {(owner.wecom_userid, "新品上市"): 1 for owner in owners}
    assert wecom_received(fake) == sorted(external_userid(c) for c in customers)
    assert calls_to(fake, ENDPOINT_ADD_MSG_TEMPLATE) == (2 if is_created else 3)
    assert calls_to(fake, ENDPOINT_GET_GROUPMSG_LIST_V2) == 1  # the unknown outcome looked up
    attempted.refresh_from_db()
    assert attempted.attempts == 2  # the lost one and the one that looked it up
    assert set(ChannelSend.objects.values_list("state", flat=True)) == {ChannelSendState.FINISHED}


def pool_pids(worker: Worker) -> list[int]:
    pid = worker.process.pid
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def dispatches_settled(worker: Worker, campaign: Campaign) -> bool:
    """Every dispatch the worker received has finished (a requeued one: its second run), and
    every call has been attempted, so none is still to come."""
    log = worker.log()
    received_ids = set(re.findall(DISPATCH + " received", log))
    succeeded_ids = set(re.findall(DISPATCH + " succeeded", log))
    is_unattempted = ChannelSend.objects.filter(campaign=campaign, attempts=0).exists()
    return bool(received_ids) and received_ids == succeeded_ids and not is_unattempted


def test_a_pool_process_killed_inside_the_wecom_call_is_not_sent_again_at_once(
    fake: FakeWeCom, wecom_worker: Callable[..., Worker], held_call: HeldCall
) -> None:
    """Production's usual crash: the kernel kills a pool process (out of memory) while it waits
    for add_msg_template. The worker gives the task back at once (acks_late,
    task_reject_on_worker_lost; RabbitMQ does the same when a whole worker dies), and a new
    pool process runs the dispatch again while the platform may still be creating the first
    task. Its lookup finds nothing yet; it must not call again before the attempt is old
    enough for its outcome to be known (here the platform holds the call as long as the test
    likes, so the worker keeps production's 60 s)."""
    worker = wecom_worker(orphan_seconds=60)
    owners, customers = two_owners_customers(5)
    campaign = make_campaign(audience(customers))

    campaign_launch(campaign_id=campaign.pk, actor="test")
    assert held_call.arrived.wait(timeout=30), worker.log()
    (pool_process,) = pool_pids(worker)
    os.kill(pool_process, signal.SIGKILL)
    wait_for(lambda: dispatches_settled(worker, campaign), worker=worker)
    assert "WorkerLostError" in worker.log()  # the dispatch was given back and ran again
    held_call.release.set()  # the platform creates the first task after all
    assert held_call.answered.wait(timeout=10)

    assert tasks_by_sender(fake) == {(owner.wecom_userid, "新品上市"): 1 for owner in owners}


@pytest.mark.usefixtures("enqueued")  # the test queues each call itself
def test_two_sends_of_one_sender_and_text_with_unknown_outcomes_reach_their_own_customers(
    fake: FakeWeCom,
    wecom_worker: Callable[..., Worker],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A staff member with more customers than one call takes has one text sent in
    several tasks. Here the first one's call never reached the platform and the second one's
    answer was lost after the platform created its task: both outcomes are unknown, as after
    a crash. Recovery must find for each send its own task, or none, never the other's."""
    lose_answer = threading.Event()
    answer = fake.handle_http

    def handle_http(method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        status, payload = answer(method, raw_path, body)
        if ENDPOINT_ADD_MSG_TEMPLATE in raw_path and lose_answer.is_set():
            lose_answer.clear()
            return 502, {"error": "the task was created; its answer is lost"}
        return status, payload

    monkeypatch.setattr(fake, "handle_http", handle_http)
    worker = wecom_worker()
    owner = StaffMemberFactory()
    customers = wecom_customers(6, owner=owner)
    campaign = make_campaign(audience(customers))
    monkeypatch.setattr(WeComCustomerChannel, "size", 3)  # as a call takes up to 10,000
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    deliveries_reserve_batch(campaign_id=campaign.pk)
    assert statuses(campaign) == {DeliveryStatus.RESERVED: 6}
    first, second = calls_of(campaign)  # the reservation split the sender's customers

    fake.inject_http_error(ENDPOINT_ADD_MSG_TEMPLATE, status=500)  # not created
    tasks.channel_sends_run_task.apply_async(args=[[first]])
    wait_for(lambda: dispatches_succeeded(worker) == [1], worker=worker)
    lose_answer.set()  # created, answer lost
    tasks.channel_sends_run_task.apply_async(args=[[second]])
    wait_for(lambda: dispatches_succeeded(worker) == [1, 1], worker=worker)
    assert len(fake.messages()) == 1
    lost, created = ChannelSend.objects.order_by("id").values_list("id", flat=True)
    assert sorted(ChannelSend.objects.values_list("state", "attempts")) == [
        (ChannelSendState.REQUESTED, 1),
        (ChannelSendState.REQUESTED, 1),
    ]

    # What the tick does once both are orphaned, in a fixed order: the lost one first.
    time.sleep(ORPHAN_SECONDS)  # the worker judges the attempts' age by the real clock
    later = timezone.now() + orphan_after() + timedelta(seconds=1)
    assert sorted(orphaned_channel_sends(now=later)) == [lost, created]
    for send_id in (lost, created):
        tasks.channel_sends_run_task.apply_async(args=[[send_id]])
    wait_for(lambda: has_nothing_in_flight(campaign), worker=worker)

    assert wecom_received(fake) == sorted(external_userid(c) for c in customers)
