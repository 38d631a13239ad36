"""WeCom group-chat campaigns: a message posted in a chat reaches every member, so a chat is
sent to only when the audience covers it and each member may be sent to; one member refused
holds the whole chat back, at planning, at reservation and at dispatch. Over real HTTP to the
WeCom fake: one task per owner naming its chats, and each chat's result reaching every
member's delivery."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone, translation

from campaigns.channels.wecom import WeComGroupChannel, wecom_results_poll
from campaigns.models import (
    Campaign,
    Channel,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
    OnHit,
)
from campaigns.services import reservation
from campaigns.services.campaigns import (
    VariantInput,
    campaign_launch,
    campaign_pause,
    campaign_plan,
    campaign_resume,
)
from campaigns.services.dispatch import channel_sends_run
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.reservation import deliveries_reserve_batch
from core.errors import ValidationFailed
from crm.models import Customer, Group, GroupMembership, StaffMember
from devstack.wecom_fake import ENDPOINT_ADD_MSG_TEMPLATE, FakeWeCom
from segments.models import Segment
from tests.campaigns.support import (
    audience,
    calls_of,
    group_chat,
    make_campaign,
    opt_out,
    statuses,
    webhook_campaign,
)
from tests.factories import (
    CustomerFactory,
    DeliveryFactory,
    FrequencyRuleFactory,
    GroupMembershipFactory,
    StaffMemberFactory,
)

pytestmark = pytest.mark.django_db


def group_campaign(customers: list[Customer], **overrides: Any) -> Campaign:
    segment = audience(customers, name=f"chats-{Segment.objects.count()}")
    return make_campaign(segment, channel=Channel.WECOM_GROUP, **overrides)


def launch(campaign: Campaign) -> None:
    """Launch, plan (a group-chat campaign is planned pending) and reserve."""
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    assert set(statuses(campaign)) <= {DeliveryStatus.PENDING, DeliveryStatus.SUPPRESSED}
    while not deliveries_reserve_batch(campaign_id=campaign.pk).is_exhausted:
        pass


def outcome(campaign: Campaign) -> dict[int, tuple[str, str, int | None]]:
    return {
        customer_id: (status, reason, group_id)
        for customer_id, status, reason, group_id in Delivery.objects.filter(
            campaign=campaign
        ).values_list("customer_id", "status", "reason", "group_id")
    }


def test_a_chat_is_sent_to_only_when_the_audience_covers_it() -> None:
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    c = CustomerFactory.create_batch(9)
    outsider = CustomerFactory()
    covered = group_chat(owners[0], [c[0], c[1]])
    group_chat(owners[0], [c[2], outsider])  # someone outside the audience
    group_chat(owners[1], [c[3], c[4]])  # c[4] opted out
    group_chat(owners[1], [c[6], c[0]])  # c[0] goes through `covered`, whose id is lower
    group_chat(None, [c[7]])  # nobody to send it
    past = group_chat(owners[1], [c[8]])
    GroupMembership.objects.filter(group=past).update(left_at=timezone.now())  # c[8] left
    opt_out(c[4])
    campaign = group_campaign(c)

    dry = campaign_dry_run(campaign=campaign)
    assert (dry.audience, dry.would_send, dry.opted_out) == (9, 2, 1)
    assert (dry.group_blocked, dry.no_identity) == (4, 2)  # c[5] is in no chat, c[8] left

    launch(campaign)

    blocked = (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, None)
    assert outcome(campaign) == {
        c[0].pk: (DeliveryStatus.RESERVED, "", covered.pk),
        c[1].pk: (DeliveryStatus.RESERVED, "", covered.pk),
        c[2].pk: blocked,
        c[3].pk: blocked,
        c[4].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT, None),
        c[5].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.NO_IDENTITY, None),
        c[6].pk: blocked,
        c[7].pk: blocked,
        c[8].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.NO_IDENTITY, None),
    }
    (send,) = ChannelSend.objects.filter(campaign=campaign)
    assert (send.sender_id, send.channel) == (owners[0].pk, Channel.WECOM_GROUP)
    reserved = campaign.deliveries.filter(status=DeliveryStatus.RESERVED)
    assert set(reserved.values_list("sender_id", "channel_send_id")) == {(owners[0].pk, send.pk)}


@pytest.mark.parametrize("on_hit", [OnHit.SKIP, OnHit.DEFER])
def test_one_member_at_a_cap_holds_back_the_whole_chat(on_hit: str) -> None:
    owner = StaffMemberFactory()
    members = CustomerFactory.create_batch(3)
    group = group_chat(owner, members)
    rule = FrequencyRuleFactory(
        name="one a day", on_hit=on_hit, max_delay_hours=48 if on_hit == OnHit.DEFER else None
    )
    earlier = webhook_campaign(audience([members[1]], name="earlier"), consent_channel="wecom")
    campaign_launch(campaign_id=earlier.pk, actor="test")
    campaign_plan(campaign_id=earlier.pk)  # members[1] has had its one send of the day
    campaign = group_campaign(members)

    launch(campaign)

    rows = Delivery.objects.filter(campaign=campaign)
    if on_hit == OnHit.SKIP:
        assert outcome(campaign) == {
            members[0].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, group.pk),
            members[1].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.CAPPED, group.pk),
            members[2].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, group.pk),
        }
        assert rows.get(customer=members[1]).rule_id == rule.pk
    else:
        # The chat waits, whole, until its capped member's window frees up.
        assert {status for status, _r, _g in outcome(campaign).values()} == {DeliveryStatus.PENDING}
        assert rows.get(customer=members[1]).reason == DeliveryReason.CAPPED
        assert len(set(rows.values_list("due_at", flat=True))) == 1
        assert rows.first().due_at > timezone.now() + timedelta(hours=23)
    assert not ChannelSend.objects.filter(campaign=campaign).exists()
    assert not rows.filter(reserved_at__isnull=False).exists()  # nothing counts toward caps


def test_a_chat_someone_joined_since_planning_waits_and_one_who_left_is_not_counted() -> None:
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(4)
    joined, left = group_chat(owner, c[:2]), group_chat(owner, c[2:])
    campaign = group_campaign(c)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    newcomer = CustomerFactory()
    GroupMembershipFactory(group=joined, customer=newcomer)
    GroupMembership.objects.filter(group=left, customer=c[3]).update(left_at=timezone.now())

    deliveries_reserve_batch(campaign_id=campaign.pk)

    assert outcome(campaign) == {
        c[0].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, joined.pk),
        c[1].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, joined.pk),
        c[2].pk: (DeliveryStatus.RESERVED, "", left.pk),
        c[3].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.NO_IDENTITY, left.pk),
    }


def test_the_holdout_and_the_variants_are_drawn_by_chat() -> None:
    owner = StaffMemberFactory()
    customers = CustomerFactory.create_batch(120)
    groups = [group_chat(owner, customers[start : start + 3]) for start in range(0, 120, 3)]
    campaign = group_campaign(
        customers,
        holdout_share=Decimal("0.5"),
        variants=[VariantInput(name="A", content="群福利 A"), VariantInput(name="B", content="B")],
    )

    launch(campaign)

    arms: dict[int, set[tuple[str, int | None]]] = {}
    for group_id, status, variant_id in Delivery.objects.filter(campaign=campaign).values_list(
        "group_id", "status", "variant_id"
    ):
        arms.setdefault(group_id, set()).add((status, variant_id))
    assert set(arms) == {group.pk for group in groups}
    assert all(len(arm) == 1 for arm in arms.values())  # a chat's members share their draw
    drawn = [next(iter(arm)) for arm in arms.values()]
    held = sum(status == DeliveryStatus.HELD_OUT for status, _v in drawn)
    assert 8 <= held <= 32  # 40 chats at 0.5: about 20 (over 4 standard deviations)
    sent_variants = {variant for status, variant in drawn if status == DeliveryStatus.RESERVED}
    assert len(sent_variants) == 2


def test_a_group_chat_message_names_no_customer_and_is_not_triggered() -> None:
    with translation.override("en"), pytest.raises(ValidationFailed) as refused:
        group_campaign(
            CustomerFactory.create_batch(1),
            variants=[VariantInput(name="A", content="{{ display_name }}，{{ city }}福利")],
            schedule_kind="lifecycle",
            trigger_lifecycle_state="churned",
        )
    assert refused.value.detail["variants[0].content"] == [
        "A group-chat message is read by the whole chat; it cannot name city, display_name."
    ]
    assert "schedule_kind" in refused.value.detail
    assert not Campaign.objects.filter(channel=Channel.WECOM_GROUP).exists()
    # The sender's name is one per call: allowed.
    group_campaign(
        CustomerFactory.create_batch(1),
        variants=[VariantInput(name="A", content="{{ owner_name }} 邀您参加群活动")],
    )


def test_a_group_chat_message_goes_out_from_each_owner_and_reaches_every_member(
    fake: FakeWeCom,
) -> None:
    owners = [StaffMemberFactory(name="群主甲"), StaffMemberFactory(name="群主乙")]
    c = CustomerFactory.create_batch(5)
    first, second, third = (
        group_chat(owners[0], c[:2]),
        group_chat(owners[0], [c[2]]),
        group_chat(owners[1], c[3:]),
    )
    campaign = group_campaign(
        c, variants=[VariantInput(name="A", content="{{ owner_name }}：今晚群内秒杀")]
    )
    launch(campaign)

    assert channel_sends_run(channel_send_ids=calls_of(campaign)) == 2

    requests = sorted(
        (
            m["request"]["sender"],
            m["request"]["chat_type"],
            sorted(m["request"]["chat_id_list"]),
            m["request"]["text"]["content"],
        )
        for m in fake.messages()
    )
    assert requests == sorted(
        [
            (
                owners[0].wecom_userid,
                "group",
                sorted([first.external_id, second.external_id]),
                "群主甲：今晚群内秒杀",
            ),
            (owners[1].wecom_userid, "group", [third.external_id], "群主乙：今晚群内秒杀"),
        ]
    )
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 5}
    for send in ChannelSend.objects.filter(campaign=campaign):
        wecom_results_poll(send=send)
    assert statuses(campaign) == {DeliveryStatus.SENT: 5}
    assert not campaign.deliveries.filter(sent_at__isnull=True).exists()
    assert set(ChannelSend.objects.values_list("state", flat=True)) == {ChannelSendState.FINISHED}


def test_an_opt_out_after_the_reservation_keeps_its_whole_chat_out_of_the_call(
    fake: FakeWeCom,
) -> None:
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(3)
    kept, dropped = group_chat(owner, [c[0]]), group_chat(owner, c[1:])
    campaign = group_campaign(c)
    launch(campaign)
    (call,) = calls_of(campaign)

    opt_out(c[2])
    channel_sends_run(channel_send_ids=[call])

    (message,) = fake.messages()
    assert message["request"]["chat_id_list"] == [kept.external_id]
    assert outcome(campaign) == {
        c[0].pk: (DeliveryStatus.SUBMITTED, "", kept.pk),
        c[1].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, dropped.pk),
        c[2].pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.OPTED_OUT, dropped.pk),
    }


def test_a_group_call_whose_answer_was_lost_is_found_not_sent_again(
    fake: FakeWeCom, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(2)
    group = group_chat(owner, c)
    campaign = group_campaign(c)
    launch(campaign)
    (call,) = calls_of(campaign)
    answer = fake.handle_http
    lost = []

    def handle_http(method: str, raw_path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        status, payload = answer(method, raw_path, body)
        if ENDPOINT_ADD_MSG_TEMPLATE in raw_path and not lost:
            lost.append(payload)
            return 502, {"error": "the task was created; its answer is lost"}
        return status, payload

    monkeypatch.setattr(fake, "handle_http", handle_http)
    channel_sends_run(channel_send_ids=[call])
    assert ChannelSend.objects.get(pk=call).state == ChannelSendState.REQUESTED
    ChannelSend.objects.filter(pk=call).update(attempted_at=timezone.now() - timedelta(hours=1))

    channel_sends_run(channel_send_ids=[call])

    (message,) = fake.messages()
    assert message["request"]["chat_id_list"] == [group.external_id]
    send = ChannelSend.objects.get(pk=call)
    assert (send.state, send.external_id, send.attempts) == (
        ChannelSendState.ACCEPTED,
        lost[0]["msgid"],
        2,
    )
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 2}


def test_a_chat_is_reserved_whole_and_sent_by_its_owner_at_the_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch takes whole chats (at least one) however small it is; a chat deleted since
    planning reaches nobody; a chat whose owner changed goes out from the new owner."""
    monkeypatch.setattr(reservation, "RESERVE_BATCH_SIZE", 2)
    owners: list[StaffMember] = StaffMemberFactory.create_batch(2)
    c = CustomerFactory.create_batch(7)
    first, second, gone = (
        group_chat(owners[0], c[:3]),
        group_chat(owners[0], c[3:6]),
        group_chat(owners[0], [c[6]]),
    )
    campaign = group_campaign(c)
    campaign_launch(campaign_id=campaign.pk, actor="test")
    campaign_plan(campaign_id=campaign.pk)
    Group.objects.filter(pk=second.pk).update(owner=owners[1])
    gone_id = gone.pk
    gone.delete()

    assert not deliveries_reserve_batch(campaign_id=campaign.pk).is_exhausted
    assert statuses(campaign) == {DeliveryStatus.RESERVED: 3, DeliveryStatus.PENDING: 4}
    assert set(
        campaign.deliveries.filter(status=DeliveryStatus.RESERVED).values_list(
            "group_id", flat=True
        )
    ) == {first.pk}
    while not deliveries_reserve_batch(campaign_id=campaign.pk).is_exhausted:
        pass

    assert outcome(campaign)[c[6].pk] == (
        DeliveryStatus.SUPPRESSED,
        DeliveryReason.NO_IDENTITY,
        gone_id,
    )
    senders = dict(
        ChannelSend.objects.filter(campaign=campaign).values_list(
            "sender_id", "deliveries__group_id"
        )
    )
    assert senders == {owners[0].pk: first.pk, owners[1].pk: second.pk}


def test_an_owner_with_more_chats_than_a_call_takes_has_several_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(WeComGroupChannel, "size", 2)
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(6)
    chats = [group_chat(owner, c[index : index + 2]) for index in range(0, 6, 2)]
    campaign = group_campaign(c)

    launch(campaign)

    per_call: dict[int, set[int]] = {}
    for call, group_id in campaign.deliveries.values_list("channel_send_id", "group_id"):
        per_call.setdefault(call, set()).add(group_id)
    assert sorted(sorted(groups) for groups in per_call.values()) == [
        sorted(g.pk for g in chats[:2]),
        [chats[2].pk],
    ]


def test_a_chat_someone_joined_since_the_reservation_is_left_out_of_the_call(
    fake: FakeWeCom,
) -> None:
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(3)
    kept, joined = group_chat(owner, [c[0]]), group_chat(owner, c[1:])
    campaign = group_campaign(c)
    launch(campaign)
    GroupMembershipFactory(group=joined)

    channel_sends_run(channel_send_ids=calls_of(campaign))

    (message,) = fake.messages()
    assert message["request"]["chat_id_list"] == [kept.external_id]
    assert statuses(campaign) == {DeliveryStatus.SUBMITTED: 1, DeliveryStatus.SUPPRESSED: 2}


def test_a_chat_refused_by_the_platform_cap_fails_for_every_member(fake: FakeWeCom) -> None:
    fake.configure(cap_per_receiver=1, cap_period="day")
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(2)
    group_chat(owner, c)
    sent_first = group_campaign(c)
    launch(sent_first)
    channel_sends_run(channel_send_ids=calls_of(sent_first))
    refused = group_campaign(c, respects_caps=False)  # our rules would have held it back
    launch(refused)
    channel_sends_run(channel_send_ids=calls_of(refused))

    for send in ChannelSend.objects.all():
        wecom_results_poll(send=send)

    assert statuses(sent_first) == {DeliveryStatus.SENT: 2}
    assert outcome(refused) == {
        customer.pk: (DeliveryStatus.FAILED, DeliveryReason.PLATFORM_CAP, customer_group)
        for customer, customer_group in zip(
            c, [outcome(sent_first)[x.pk][2] for x in c], strict=True
        )
    }


def test_quiet_hours_and_a_pause_keep_each_chat_whole() -> None:
    """Sent in quiet hours, a group-chat campaign waits for their end, whole; paused with its
    call not yet made, every member of the call's chats goes back to the queue; resumed, the
    chats are reserved again, whole."""
    owner = StaffMemberFactory()
    c = CustomerFactory.create_batch(4)
    chats = [group_chat(owner, c[:2]), group_chat(owner, c[2:])]
    campaign = group_campaign(c, quiet_hours_start=time(21, 0), quiet_hours_end=time(9, 0))
    night = datetime(2026, 11, 23, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    campaign_launch(campaign_id=campaign.pk, actor="test", at=night)
    campaign_plan(campaign_id=campaign.pk, at=night)
    morning = datetime(2026, 11, 24, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert set(campaign.deliveries.values_list("status", "reason", "due_at")) == {
        (DeliveryStatus.PENDING, DeliveryReason.QUIET_HOURS, morning)
    }
    assert deliveries_reserve_batch(campaign_id=campaign.pk, at=morning).counts == {
        DeliveryStatus.RESERVED: 4
    }

    campaign_pause(campaign_id=campaign.pk, actor="test")
    assert statuses(campaign) == {DeliveryStatus.PENDING: 4}
    campaign_resume(campaign_id=campaign.pk, actor="test")
    deliveries_reserve_batch(campaign_id=campaign.pk, at=morning)

    (call,) = calls_of(campaign)
    assert set(campaign.deliveries.values_list("status", "channel_send_id", "group_id")) == {
        (DeliveryStatus.RESERVED, call, chats[0].pk),
        (DeliveryStatus.RESERVED, call, chats[1].pk),
    }


def test_a_chat_deferred_past_a_members_maximum_delay_is_not_sent() -> None:
    """Two deferring rules hold two members back: the chat would wait for the later one, past
    the other's rule's maximum delay, so the chat is not sent, and that member says why."""
    owner = StaffMemberFactory()
    a, b, c = CustomerFactory.create_batch(3)
    group = group_chat(owner, [a, b, c])
    short = FrequencyRuleFactory(
        name="one a day, wait 12 hours at most", on_hit=OnHit.DEFER, max_delay_hours=12
    )
    FrequencyRuleFactory(
        name="two in three days, wait 4 days at most",
        max_count=2,
        window_hours=72,
        on_hit=OnHit.DEFER,
        max_delay_hours=96,
    )
    earlier = webhook_campaign(audience([a, b], name="earlier"), consent_channel="wecom")
    now = timezone.now()
    for customer, hours_ago in ((a, 14), (b, 30), (b, 40)):  # a: +10 h; b: +32 h
        DeliveryFactory(
            customer=customer,
            campaign=earlier,
            step=hours_ago,
            at=now - timedelta(hours=hours_ago),
        )
    campaign = group_campaign([a, b, c])

    launch(campaign)

    assert outcome(campaign) == {
        a.pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.CAP_DELAY_EXCEEDED, group.pk),
        b.pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, group.pk),
        c.pk: (DeliveryStatus.SUPPRESSED, DeliveryReason.GROUP_BLOCKED, group.pk),
    }
    assert campaign.deliveries.get(customer=a).rule_id == short.pk
