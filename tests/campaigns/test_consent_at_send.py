"""Consent is read for every delivery immediately before its post or WeCom call, on every
attempt and every recovery path, the same way for every channel
(`channel_calls.consent_hold`): an opt-out committed after the call was reserved, and even
after its attempt began, is never posted to; and an opt-out that arrives while a post is in
flight is answered only after it."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import override_settings

from campaigns.models import Campaign, Channel, Delivery, DeliveryReason, DeliveryStatus
from campaigns.services import dispatch
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.dispatch import attempt_begin, channel_sends_run
from campaigns.services.pipeline import campaigns_tick
from campaigns.services.reservation import deliveries_reserve_batch
from crm.models import Consent, Customer
from crm.wecom import client as wecom_client_module
from devstack.wecom_fake import ENDPOINT_ADD_MSG_TEMPLATE, FakeWeCom
from tests.campaigns.support import (
    WebhookReceiver,
    audience,
    calls_of,
    group_chat,
    make_campaign,
    opt_out,
    outcomes,
    webhook_campaign,
    wecom_customers,
)
from tests.conftest import Enqueued
from tests.factories import CustomerFactory, StaffMemberFactory
from tests.support import locked_waiters, on_own_connection


@dataclass
class Setup:
    campaign: Campaign
    customers: list[Customer]
    leaving: Customer
    # What the channel was asked to reach, in order: customer ids (webhook), external_userids
    # (WeCom customers) or chat ids (WeCom groups).
    reached: Callable[[], list[Any]]
    # Each customer's expected target in `reached`.
    target: Callable[[Customer], Any]
    # Expected (status, reason) of every delivery once the leaving customer opted out.
    expected: dict[int, tuple[str, str]]


def set_up(channel: str, webhook_receiver: WebhookReceiver, fake: FakeWeCom) -> Setup:
    if channel == Channel.WEBHOOK:
        customers = CustomerFactory.create_batch(3)
        campaign = webhook_campaign(
            audience(customers),
            webhook_receiver.url,
            consent_channel="wecom",  # the one `opt_out` records
        )
        leaving = customers[1]
        sent = (DeliveryStatus.SENT, "")
        return Setup(
            campaign,
            customers,
            leaving,
            webhook_receiver.posted_customers,
            lambda c: c.pk,
            {c.pk: sent for c in customers}
            | {leaving.pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT)},
        )
    if channel == Channel.WECOM_CUSTOMER:
        customers = wecom_customers(3)
        campaign = make_campaign(audience(customers))
        leaving = customers[1]
        submitted = (DeliveryStatus.SUBMITTED, "")
        return Setup(
            campaign,
            customers,
            leaving,
            lambda: [u for m in fake.messages() for u in m["request"]["external_userid"]],
            lambda c: f"ext-{c.pk}",
            {c.pk: submitted for c in customers}
            | {leaving.pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT)},
        )
    owner = StaffMemberFactory()
    customers = CustomerFactory.create_batch(3)
    kept, dropped = group_chat(owner, customers[:1]), group_chat(owner, customers[1:])
    campaign = make_campaign(audience(customers), channel=Channel.WECOM_GROUP)
    chats = {customers[0].pk: kept.external_id}
    chats |= {c.pk: dropped.external_id for c in customers[1:]}
    return Setup(
        campaign,
        customers,
        customers[2],
        lambda: [u for m in fake.messages() for u in m["request"]["chat_id_list"]],
        lambda c: chats[c.pk],
        {
            customers[0].pk: (DeliveryStatus.SUBMITTED, ""),
            customers[1].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED),
            customers[2].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT),
        },
    )


def reserve(campaign: Campaign) -> list[int]:
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    while not deliveries_reserve_batch(campaign_id=campaign.pk).is_exhausted:
        pass
    assert set(campaign.deliveries.values_list("status", flat=True)) == {DeliveryStatus.RESERVED}
    return calls_of(campaign)


CHANNELS = [Channel.WEBHOOK, Channel.WECOM_CUSTOMER, Channel.WECOM_GROUP]


@pytest.mark.django_db
@override_settings(
    CHANNEL_ORPHAN_SECONDS=0, CHANNEL_REQUEUE_SECONDS=0, WEBHOOK_RETRY_BASE_SECONDS=0
)
@pytest.mark.parametrize("channel", CHANNELS)
@pytest.mark.parametrize("path", ["first", "requeue", "retry", "orphan"])
def test_an_opt_out_committed_once_the_attempt_began_is_never_posted_to(
    channel: str,
    path: str,
    webhook_receiver: WebhookReceiver,
    fake: FakeWeCom,
    monkeypatch: pytest.MonkeyPatch,
    enqueued: list[Enqueued],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """The opt-out commits after the call was reserved and after its attempt was recorded
    (`attempt_begin`), just before the channel posts: on the first attempt, on a call whose
    task was lost (the tick's requeue), on a retry after a failed post, and on a call whose
    worker died after recording its attempt (the tick's orphan lookup, then a resend)."""
    setup = set_up(channel, webhook_receiver, fake)
    (call,) = reserve(setup.campaign)
    posted_before = 0
    if path == "retry":
        # The first attempt fails for the leaving customer (webhook: a 503 for their post;
        # WeCom: a server error, so the task was never created) and will be retried.
        if channel == Channel.WEBHOOK:
            webhook_receiver.answers_for[setup.leaving.pk] = [503]
            posted_before = 1
        else:
            fake.inject_http_error(ENDPOINT_ADD_MSG_TEMPLATE, status=500)
        channel_sends_run(channel_send_ids=[call])
        assert Delivery.objects.get(customer=setup.leaving).status == DeliveryStatus.RESERVED
    elif path == "orphan":
        # The worker recorded its attempt and died before the post.
        assert attempt_begin(channel_send_id=call) is not None

    begin = dispatch.attempt_begin

    def attempt_then_opt_out(*, channel_send_id: int) -> dispatch.Attempt | None:
        attempt = begin(channel_send_id=channel_send_id)
        opt_out(setup.leaving)
        return attempt

    monkeypatch.setattr(dispatch, "attempt_begin", attempt_then_opt_out)
    if path in ("requeue", "orphan"):
        with django_capture_on_commit_callbacks(execute=True):
            assert campaigns_tick()["recovered"] == 1
        queued = [(task.name, task.args) for task in enqueued]
        assert queued == [("campaigns.run_channel_sends", ([call],))]
    channel_sends_run(channel_send_ids=[call])

    assert Consent.objects.get(customer=setup.leaving).status == "opted_out"
    assert outcomes(setup.campaign) == setup.expected
    # Each target reached once, the leaving customer's never after the opt-out.
    expected = {
        setup.target(c)
        for c in setup.customers
        if setup.expected[c.pk][0] != DeliveryStatus.SUPPRESSED
    }
    posted_to_leaving = [setup.target(setup.leaving)] * posted_before
    assert sorted(setup.reached()) == sorted([*expected, *posted_to_leaving])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("channel", [Channel.WEBHOOK, Channel.WECOM_CUSTOMER])
def test_an_opt_out_arriving_while_its_post_is_in_flight_is_answered_after_it(
    channel: str,
    webhook_receiver: WebhookReceiver,
    fake: FakeWeCom,
    monkeypatch: pytest.MonkeyPatch,
    settings: Any,
) -> None:
    """The channel has read consent and its post is on its way (held at the receiver); the
    customer opts out meanwhile. The opt-out must not be answered before the post was made:
    it waits for the call's lock, and is answered once the post returned. Deterministic:
    the test releases the post only once the opt-out finished or is seen waiting on a lock."""
    setup = set_up(channel, webhook_receiver, fake)
    (call,) = reserve(setup.campaign)
    posted: list[float] = []
    # The post is held until the opt-out is seen waiting, which on a loaded machine may take
    # longer than the clients' timeouts: a call given up would be retried or looked up and sent
    # again, which other tests cover (test_dispatch's lost answers and retries).
    settings.WEBHOOK_TIMEOUT_SECONDS = 60
    monkeypatch.setattr(wecom_client_module, "CALL_TIMEOUT_SECONDS", 60)
    if channel == Channel.WEBHOOK:
        webhook_receiver.is_holding = True
        arrived, release = webhook_receiver.arrived, webhook_receiver.release
        first_customer = Delivery.objects.filter(campaign=setup.campaign).order_by("id")[0]
        leaving = Customer.objects.get(pk=first_customer.customer_id)
    else:
        arrived, release = threading.Event(), threading.Event()
        answer = fake.handle_http

        def handle_http(method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:
            if ENDPOINT_ADD_MSG_TEMPLATE not in raw_path:
                return answer(method, raw_path, body)
            arrived.set()
            release.wait(timeout=30)
            try:
                return answer(method, raw_path, body)
            finally:
                posted.append(time.monotonic())

        monkeypatch.setattr(fake, "handle_http", handle_http)
        leaving = setup.leaving
    answered: list[float] = []

    def leave() -> None:
        opt_out(leaving)
        answered.append(time.monotonic())

    sender = threading.Thread(
        target=on_own_connection(lambda: channel_sends_run(channel_send_ids=[call]))
    )
    opting_out = threading.Thread(target=on_own_connection(leave))
    sender.start()
    try:
        assert arrived.wait(timeout=30)
        opting_out.start()
        deadline = time.monotonic() + 30
        while not answered and locked_waiters() == 0:
            assert time.monotonic() < deadline, "the opt-out neither finished nor waited"
            time.sleep(0.05)
    finally:
        release.set()
        sender.join(timeout=30)
    if opting_out.is_alive() or opting_out.ident is not None:
        opting_out.join(timeout=30)

    if channel == Channel.WEBHOOK:
        posted = [at for customer_id, at in webhook_receiver.posted() if customer_id == leaving.pk]
    assert len(posted) == 1 and len(answered) == 1
    assert posted[0] < answered[0], "posted after the opt-out was answered"
    # Posted before the answer: it stands as sent; the opt-out stands too.
    assert outcomes(setup.campaign)[leaving.pk] == (
        (DeliveryStatus.SENT, "") if channel == Channel.WEBHOOK else (DeliveryStatus.SUBMITTED, "")
    )
    assert Consent.objects.get(customer=leaving).status == "opted_out"
