"""Dispatch: the calls a reservation lays out, the tasks that carry them, the first attempt,
what a pause or a cancel does to calls not yet made, and the webhook channel over real HTTP."""

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from campaigns.channels.webhook import retry_delay
from campaigns.channels.wecom import WeComCustomerChannel
from campaigns.models import (
    Channel,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
)
from campaigns.services import pipeline, reservation
from campaigns.services.campaigns import (
    VariantInput,
    campaign_cancel,
    campaign_launch,
    campaign_pause,
    campaign_plan,
)
from campaigns.services.dispatch import (
    attempt_begin,
    channel_sends_run,
    orphan_after,
    orphaned_channel_sends,
    requeue_after,
)
from campaigns.services.pipeline import campaigns_tick
from campaigns.services.planning import audience_query, deliveries_plan
from campaigns.services.reservation import ReserveOutcome, deliveries_reserve_batch
from crm.models import Customer, StaffMember
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import (
    WebhookReceiver,
    audience,
    calls_of,
    make_campaign,
    statuses,
    webhook_campaign,
    wecom_customers,
)
from tests.conftest import Enqueued
from tests.factories import CustomerFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db


def calls_by_sender(campaign_id: int) -> dict[int | None, list[int]]:
    """Per sender, the sizes of its calls, each call checked to hold one sender and variant."""
    sizes: dict[int | None, list[int]] = {}
    for send in ChannelSend.objects.filter(campaign_id=campaign_id).order_by("id"):
        members = list(send.deliveries.values_list("sender_id", "variant_id", "status"))
        assert len({(sender, variant) for sender, variant, _status in members}) == 1
        assert {status for _s, _v, status in members} == {DeliveryStatus.RESERVED}
        assert members[0][0] == send.sender_id
        sizes.setdefault(send.sender_id, []).append(len(members))
    return {sender: sorted(found) for sender, found in sizes.items()}


def test_a_reservation_lays_its_deliveries_out_into_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """A shared text: one call per sender and variant, up to the channel's size; every
    reserved delivery in exactly one call; the call holds the text it will send."""
    monkeypatch.setattr(WeComCustomerChannel, "size", 2)
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    customers = wecom_customers(5, owner=owners[0]) + wecom_customers(3, owner=owners[1])
    campaign = make_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)

    assert statuses(campaign) == {DeliveryStatus.RESERVED: 8}
    assert calls_by_sender(campaign.pk) == {owners[0].pk: [1, 2, 2], owners[1].pk: [1, 2]}
    assert not campaign.deliveries.filter(channel_send__isnull=True).exists()
    assert set(ChannelSend.objects.values_list("content", "state", "attempts", "channel")) == {
        ("新品上市", ChannelSendState.REQUESTED, 0, Channel.WECOM_CUSTOMER)
    }


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        # One text per sender: the owner is the sender.
        ("{{ owner_name }} 推荐新品", [("A", "导购甲 推荐新品", 3), ("B", "导购乙 推荐新品", 3)]),
        # One text per sender and city.
        (
            "{{ city }}门店上新",
            [("A", "上海门店上新", 2), ("A", "杭州门店上新", 1), ("B", "上海门店上新", 3)],
        ),
        # One text per customer.
        ("{{ display_name }}，新品", [("A", "", 1)] * 3 + [("B", "", 1)] * 3),
    ],
    ids=["owner", "city", "name"],
)
def test_a_wecom_text_with_variables_is_one_call_per_text_it_renders_to(
    content: str, expected: list[tuple[str, str, int]], fake: FakeWeCom
) -> None:
    """Customers share a WeCom call when their texts are the same: same sender, same values of
    the variables the text names. The text is rendered at the call's first attempt."""
    owners = [StaffMemberFactory(name="导购甲"), StaffMemberFactory(name="导购乙")]
    customers = wecom_customers(3, owner=owners[0]) + wecom_customers(3, owner=owners[1])
    for customer, city in zip(
        customers, ["上海", "杭州", "上海", "上海", "上海", "上海"], strict=True
    ):
        Customer.objects.filter(pk=customer.pk).update(city=city)
    campaign = make_campaign(
        audience(customers), variants=[VariantInput(name="A", content=content)]
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    names = {owners[0].pk: "A", owners[1].pk: "B"}
    calls = ChannelSend.objects.order_by("id")
    assert all(send.content == "" for send in calls)

    channel_sends_run(channel_send_ids=[send.pk for send in calls])

    sent = sorted(
        (names[send.sender_id], send.content, send.deliveries.count())
        for send in ChannelSend.objects.all()
    )
    if expected[0][1] == "":  # each text names its customer
        assert sorted(send.content for send in ChannelSend.objects.all()) == sorted(
            f"{customer.display_name}，新品" for customer in customers
        )
        sent = [(owner, "", count) for owner, _text, count in sent]
    assert sent == sorted(expected)
    assert sorted(message["request"]["text"]["content"] for message in fake.messages()) == sorted(
        send.content for send in ChannelSend.objects.all()
    )


def test_variants_never_share_a_call() -> None:
    customers = wecom_customers(20)
    campaign = make_campaign(
        audience(customers),
        variants=[
            VariantInput(name="A", content="新品上市"),
            VariantInput(name="B", content="上新"),
        ],
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)

    per_variant = {
        send.content: set(send.deliveries.values_list("variant__name", flat=True))
        for send in ChannelSend.objects.all()
    }
    assert per_variant == {"新品上市": {"A"}, "上新": {"B"}}


def test_a_webhook_campaign_fills_calls_of_posts_whatever_the_owner() -> None:
    owners: list[StaffMember] = StaffMemberFactory.create_batch(3)
    customers = [CustomerFactory(owner=owners[n % 3]) for n in range(205)]
    campaign = webhook_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)

    assert calls_by_sender(campaign.pk) == {None: [5, 100, 100]}
    assert set(ChannelSend.objects.values_list("content", flat=True)) == {""}


def test_a_deferred_send_gets_its_call_when_it_is_reserved_later() -> None:
    """The reservation of pending deliveries (a throttled campaign) lays out calls as the
    planning statement does."""
    customers = wecom_customers(4)
    campaign = make_campaign(audience(customers), throttle_per_minute=3)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    assert statuses(campaign) == {DeliveryStatus.PENDING: 4}
    assert not ChannelSend.objects.exists()

    outcome = deliveries_reserve_batch(campaign_id=campaign.pk)

    assert len(outcome.reserved_ids) == 3
    (call,) = calls_of(campaign)
    assert outcome.sends == {call: 3}
    assert sorted(
        Delivery.objects.filter(channel_send_id=call).values_list("id", flat=True)
    ) == sorted(outcome.reserved_ids)
    assert campaign.deliveries.get(status=DeliveryStatus.PENDING).channel_send_id is None


def test_dispatch_tasks_carry_whole_calls_of_about_a_thousand_deliveries(
    enqueued: list[Enqueued], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    outcome = ReserveOutcome(sends={4: 2000, 1: 600, 2: 600, 3: 10, 5: 1, 6: 1})

    with django_capture_on_commit_callbacks(execute=True):
        reservation.dispatch_after_commit(outcome)

    published = [ids for name, (ids,), _ in enqueued if name == "campaigns.run_channel_sends"]
    assert published == [[1, 2], [3, 4], [5, 6]]


def test_a_re_plan_writes_no_delivery_and_no_call_twice(fake: FakeWeCom) -> None:
    """Planning again after a crash leaves the deliveries planned before (and their calls) as
    they are, and makes no call for them."""
    customers = wecom_customers(3)
    campaign = make_campaign(audience(customers), respects_caps=False)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    first = calls_of(campaign)
    now = timezone.now()
    again = deliveries_plan(
        campaign,
        audience=audience_query(
            campaign, include_ids=[campaign.include_segments.get().pk], exclude_ids=[], as_of=now
        ),
        at=now,
        due_at=now,
        is_quiet=False,
        reserve=True,
    )

    assert again.counts == {} and again.sends == {}
    assert calls_of(campaign) == first
    assert channel_sends_run(channel_send_ids=first) == 1
    assert len(fake.messages()) == 1
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 3}


def test_only_calls_attempted_long_enough_ago_or_never_queued_again_are_recovered(
    monkeypatch: pytest.MonkeyPatch,
    enqueued: list[Enqueued],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    """The tick runs again a call whose attempt is `orphan_after()` old (its worker died), and
    one never attempted `requeue_after()` after it was written (its task was lost), in tasks
    of a few calls; a call merely waiting in the queue behind a launch's backlog is left."""
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    customers = wecom_customers(1, owner=owners[0]) + wecom_customers(1, owner=owners[1])
    campaign = make_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    attempted, queued = calls_of(campaign)
    now = timezone.now()
    assert attempt_begin(channel_send_id=attempted, now=now) is not None

    assert orphaned_channel_sends(now=now + orphan_after()) == [attempted]
    assert orphaned_channel_sends(now=now + requeue_after()) == [attempted, queued]

    monkeypatch.setattr(pipeline, "RECOVERED_PER_TASK", 1)
    with django_capture_on_commit_callbacks(execute=True):  # outside a transaction, as a worker
        assert campaigns_tick(now=now + requeue_after())["recovered"] == 2
    published = [ids for name, (ids,), _ in enqueued if name == "campaigns.run_channel_sends"]
    assert published == [[attempted], [queued]]


def test_a_personal_text_is_rendered_once_and_kept_for_the_lookup(fake: FakeWeCom) -> None:
    (customer,) = wecom_customers(1)
    campaign = make_campaign(
        audience([customer]),
        variants=[
            VariantInput(name="A", content="{{ display_name }}，看看 https://shop.example/a")
        ],
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    (call,) = calls_of(campaign)

    channel_sends_run(channel_send_ids=[call])

    send = ChannelSend.objects.get(pk=call)
    (message,) = fake.messages()
    assert message["request"]["text"]["content"] == send.content
    base_url = settings.PUBLIC_BASE_URL.rstrip("/")
    assert send.content.startswith(f"{customer.display_name}，看看 {base_url}/l/")
    assert "shop.example" not in send.content


def test_a_pause_releases_the_calls_not_yet_attempted_and_leaves_the_others() -> None:
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    customers = wecom_customers(2, owner=owners[0]) + wecom_customers(3, owner=owners[1])
    campaign = make_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    attempted, untouched = calls_of(campaign)
    assert attempt_begin(channel_send_id=attempted) is not None  # a worker is inside the call

    campaign_pause(campaign_id=campaign.pk, actor="test")

    assert calls_of(campaign) == [attempted]
    in_flight_ids = list(campaign.deliveries.filter(channel_send_id=attempted).values_list("id"))
    assert statuses(campaign) == {
        DeliveryStatus.RESERVED: len(in_flight_ids),
        DeliveryStatus.PENDING: 5 - len(in_flight_ids),
    }
    released = campaign.deliveries.exclude(channel_send_id=attempted)
    assert set(released.values_list("status", "reserved_at", "channel_send_id")) == {
        (DeliveryStatus.PENDING, None, None)
    }
    # A copy of the dispatch task arriving now finds the released call gone.
    assert attempt_begin(channel_send_id=untouched) is None

    campaign_cancel(campaign_id=campaign.pk, actor="test")

    assert statuses(campaign) == {
        DeliveryStatus.RESERVED: len(in_flight_ids),
        DeliveryStatus.CANCELLED: 5 - len(in_flight_ids),
    }
    assert ChannelSend.objects.get().pk == attempted


def test_an_attempt_too_soon_after_the_last_is_refused() -> None:
    customers = wecom_customers(1)
    campaign = make_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    (call,) = calls_of(campaign)
    now = timezone.now()

    assert attempt_begin(channel_send_id=call, now=now) is not None
    assert attempt_begin(channel_send_id=call, now=now + timedelta(seconds=59)) is None
    later = attempt_begin(channel_send_id=call, now=now + timedelta(seconds=60))

    assert later is not None and later.send.attempts == 2


@override_settings(WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_BASE_SECONDS=30)
def test_webhook_posts_are_signed_keyed_retried_and_dead_lettered(
    webhook_receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    customers = [CustomerFactory(display_name=f"顾客{n}") for n in range(3)]
    campaign = webhook_campaign(
        audience(customers),
        webhook_receiver.url,
        variants=[VariantInput(name="A", content="{{ display_name }} https://shop.example/x")],
    )
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    (call,) = calls_of(campaign)
    first, second, third = campaign.deliveries.order_by("customer_id")
    # In delivery order: sent; refused (not retried); failing until it is a dead letter.
    webhook_receiver.answers.extend([200, 400, 503])

    channel_sends_run(channel_send_ids=[call])

    posts = [(p.headers, json.loads(p.body), p.body) for p in webhook_receiver.received]
    assert [body["delivery_id"] for _h, body, _raw in posts] == [first.pk, second.pk, third.pk]
    for headers, body, raw in posts:
        stamp, digest = (part.split("=", 1)[1] for part in headers["X-CRM-Signature"].split(","))
        expected = hmac.new(
            campaign.issued_webhook_secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256
        ).hexdigest()
        assert hmac.compare_digest(digest, expected)
        assert headers["Idempotency-Key"] == f"delivery-{body['delivery_id']}"
        customer = customers[[c.pk for c in customers].index(body["customer_id"])]
        base_url = settings.PUBLIC_BASE_URL.rstrip("/")
        assert body["content"].startswith(f"{customer.display_name} {base_url}/l/")
        assert body["variant"] == "A" and body["campaign_id"] == campaign.pk
    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.status, first.sent_at is not None) == (DeliveryStatus.SENT, True)
    assert (second.status, second.reason, second.error) == (
        DeliveryStatus.FAILED,
        DeliveryReason.CHANNEL_ERROR,
        "HTTP 400",
    )
    assert (third.status, third.attempts, third.error) == (DeliveryStatus.RESERVED, 1, "HTTP 503")
    assert third.retry_at is not None
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.REQUESTED

    # Each retry comes when its delay is over, with the same key; the last gives up.
    webhook_receiver.answers.extend([503, 503])
    at = timezone.now()
    for attempts in (1, 2):
        # Past the retry's delay, and past orphan_after() since the call's last attempt.
        at += max(retry_delay(attempts), orphan_after()) + timedelta(seconds=1)
        monkeypatch.setattr(timezone, "now", lambda at=at: at)
        channel_sends_run(channel_send_ids=[call])
    keys = [post.headers["Idempotency-Key"] for post in webhook_receiver.received[3:]]
    assert keys == [f"delivery-{third.pk}"] * 2
    third.refresh_from_db()
    assert (third.status, third.attempts, third.reason) == (
        DeliveryStatus.DEAD_LETTER,
        3,
        DeliveryReason.CHANNEL_ERROR,
    )
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.FINISHED
