"""What the tick recovers when the broker lost its queued messages: every call waiting, however
many, and the plan of a launched campaign whose plan task was lost; nothing still in time."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignState, Channel, ChannelSend, ScheduleKind
from campaigns.services import pipeline
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.dispatch import orphan_after, requeue_after
from campaigns.services.pipeline import campaigns_tick
from tests.campaigns.support import audience, make_campaign, wecom_customers
from tests.conftest import Enqueued
from tests.factories import CampaignFactory, ChannelSendFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def tick(
    enqueued: list[Enqueued], django_capture_on_commit_callbacks: Callable[..., Any]
) -> Callable[..., dict[str, int]]:
    """`campaigns_tick` as a worker runs it, outside a transaction: what it queues is
    published at once (recorded in `enqueued`, not sent)."""

    def run(*, now: datetime) -> dict[str, int]:
        with django_capture_on_commit_callbacks(execute=True):
            return campaigns_tick(now=now)

    return run


def test_the_tick_queues_every_lost_call_again_however_many(
    tick: Callable[..., dict[str, int]],
    enqueued: list[Enqueued],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """More calls wait than one page of the recovery reads: all are queued again in one tick,
    each once; calls not yet due (a recent attempt, a recent write) and answered ones wait."""
    campaign = CampaignFactory(channel=Channel.WEBHOOK)
    now = timezone.now()
    lost_at = now - requeue_after() - timedelta(seconds=1)
    # In bulk: one INSERT for the many calls.
    never_attempted = ChannelSend.objects.bulk_create(
        ChannelSendFactory.build_batch(1203, campaign=campaign, requested_at=lost_at)
    )
    orphaned = ChannelSendFactory.create_batch(
        3,
        campaign=campaign,
        requested_at=lost_at,
        attempts=1,
        attempted_at=now - orphan_after() - timedelta(seconds=1),
    )
    ChannelSendFactory(campaign=campaign, requested_at=now)
    ChannelSendFactory(campaign=campaign, requested_at=lost_at, attempts=1, attempted_at=now)
    ChannelSendFactory(campaign=campaign, requested_at=lost_at, state="finished")
    monkeypatch.setattr(pipeline, "RECOVERED_PER_TASK", 500)

    counts = tick(now=now)

    expected = sorted(send.pk for send in [*never_attempted, *orphaned])
    assert counts["recovered"] == 1206
    tasks = [ids for name, (ids,), _ in enqueued if name == "campaigns.run_channel_sends"]
    assert [len(ids) for ids in tasks] == [500, 500, 206]
    assert [i for ids in tasks for i in ids] == expected


def test_a_call_queued_again_is_not_queued_again_before_the_same_wait(
    tick: Callable[..., dict[str, int]], enqueued: list[Enqueued]
) -> None:
    """A lost call queued again by one tick may still wait behind a backlog at the next ones:
    it is queued once more only when the same wait has passed again, so a backlog is not
    multiplied minute after minute."""
    campaign = CampaignFactory(channel=Channel.WEBHOOK)
    now = timezone.now()
    never_attempted = ChannelSendFactory(campaign=campaign, requested_at=now - requeue_after())
    orphaned = ChannelSendFactory(
        campaign=campaign,
        requested_at=now - requeue_after(),
        attempts=1,
        attempted_at=now - orphan_after(),
    )
    half_a_minute = timedelta(seconds=30)
    recovered = [
        tick(now=at)["recovered"]
        for at in (now, now + half_a_minute, now + orphan_after(), now + requeue_after())
    ]
    assert recovered == [2, 0, 1, 2]
    tasks = [ids for name, (ids,), _ in enqueued if name == "campaigns.run_channel_sends"]
    assert tasks == [
        [never_attempted.pk, orphaned.pk],
        [orphaned.pk],
        [never_attempted.pk, orphaned.pk],
    ]


def test_a_campaign_whose_plan_task_was_lost_is_planned_again(
    tick: Callable[..., dict[str, int]], enqueued: list[Enqueued]
) -> None:
    """A launch queues its plan after the commit; the broker lost it. Once `requeue_after()`
    has passed since it began sending, the tick queues the plan again; a campaign planned,
    or one just started, is left alone."""
    customers = wecom_customers(2)
    lost = make_campaign(audience(customers, name="lost"))
    planned = make_campaign(audience(customers, name="planned"))
    scheduled = make_campaign(
        audience(customers, name="scheduled"),
        schedule_kind=ScheduleKind.AT,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )
    for campaign in (lost, planned, scheduled):
        campaign_launch(campaign_id=campaign.pk, actor="test")  # its plan task: never run
    campaign_plan(campaign_id=planned.pk)
    launched_at = Campaign.objects.get(pk=lost.pk).launched_at
    assert launched_at is not None

    assert tick(now=launched_at + requeue_after() - timedelta(seconds=1))["replanned"] == 0
    assert enqueued == []
    # The scheduled one starts sending an hour later: its plan is queued then (and lost).
    start = launched_at + timedelta(hours=1, seconds=1)
    counts = tick(now=start)
    assert (counts["started"], counts["replanned"]) == (1, 1)
    assert Campaign.objects.get(pk=scheduled.pk).state == CampaignState.SENDING
    assert ("campaigns.plan", (lost.pk,)) in [(name, args) for name, args, _ in enqueued]
    enqueued.clear()
    counts = tick(now=start + requeue_after())
    assert counts["replanned"] == 2
    assert sorted(args for name, args, _ in enqueued if name == "campaigns.plan") == [
        (lost.pk,),
        (scheduled.pk,),
    ]

    # Run again, the plan writes the campaign's deliveries once; nothing is queued again.
    assert campaign_plan(campaign_id=lost.pk) == 2
    assert campaign_plan(campaign_id=lost.pk) == 0
    enqueued.clear()
    counts = tick(now=start + requeue_after())
    assert counts["replanned"] == 1
    assert [args for name, args, _ in enqueued if name == "campaigns.plan"] == [(scheduled.pk,)]
