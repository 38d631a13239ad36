"""The send pipeline's steps as the tasks run them, and the every-minute tick that moves
campaigns along: start scheduled ones, plan trigger entrants, queue reservations that are due,
queue again plans and channel sends whose task was lost or whose worker died, and finish
campaigns with nothing left to send. Everything it recovers is read from the database, so a
broker that lost its queue loses nothing for longer than CHANNEL_REQUEUE_SECONDS and a tick."""

import logging
import time
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns import enqueue
from campaigns.models import (
    Campaign,
    CampaignState,
    Channel,
    ChannelSend,
    ChannelSendState,
    Delivery,
    DeliveryStatus,
    ScheduleKind,
)
from campaigns.services.campaigns import campaign_get_or_404, campaign_plan, trigger_feed_end
from campaigns.services.dispatch import (
    channel_sends_run,
    orphaned_channel_sends,
    requeue_after,
)
from campaigns.services.planning import audience_query, deliveries_plan
from campaigns.services.reservation import deliveries_reserve_batch

logger = logging.getLogger(__name__)

TRIGGERED = (ScheduleKind.LIFECYCLE, ScheduleKind.SEGMENT_ENTRY)
UNFINISHED = (DeliveryStatus.PENDING, DeliveryStatus.RESERVED)
# Calls run again per task by the tick: a few, so that recovery after an outage is spread.
RECOVERED_PER_TASK = 20
# Calls read per query by the tick's recovery: it pages through all of them by id.
RECOVERY_PAGE = 1000


def campaign_plan_step(*, campaign_id: int) -> int:
    return campaign_plan(campaign_id=campaign_id)


def campaign_reserve_step(*, campaign_id: int, deadline: float) -> int:
    """Reserve batch after batch (each dispatched after its commit); hand over to a new task
    when the time slice is used and more is due. Answers deliveries reserved."""
    reserved = 0
    while True:
        outcome = deliveries_reserve_batch(campaign_id=campaign_id)
        reserved += len(outcome.reserved_ids)
        if outcome.is_exhausted:
            return reserved
        if time.monotonic() > deadline:
            enqueue.campaign_reserve(campaign_id=campaign_id)
            return reserved


def channel_sends_step(*, channel_send_ids: list[int]) -> int:
    return channel_sends_run(channel_send_ids=channel_send_ids)


def campaign_plan_entrants(*, campaign_id: int, at: datetime | None = None) -> int:
    """Plan the customers a triggered campaign's feed brought since it last looked."""
    at = at or timezone.now()
    with transaction.atomic():
        campaign = campaign_get_or_404(campaign_id, for_update=True)
        if campaign.state != CampaignState.SENDING or campaign.schedule_kind not in TRIGGERED:
            return 0
        value: Any
        if campaign.schedule_kind == ScheduleKind.LIFECYCLE:
            table, condition, value = (
                "segments_lifecycletransition",
                "to_state = %s",
                campaign.trigger_lifecycle_state,
            )
        else:
            table, condition, value = (
                "segments_segmentmembershipevent",
                "segment_id = %s AND kind = 'entered'",
                campaign.trigger_segment_id,
            )
        # Not max(id): a writer still in flight may commit lower ids later (segments.feeds).
        upto = trigger_feed_end(campaign)
        if upto <= campaign.trigger_cursor:
            return 0
        candidates = f"SELECT customer_id FROM {table} WHERE id > %s AND id <= %s AND {condition}"  # noqa: S608
        quiet_until = campaign.quiet_until(at)
        outcome = deliveries_plan(
            campaign,
            audience=audience_query(
                campaign,
                include_ids=sorted(s.pk for s in campaign.include_segments.all()),
                exclude_ids=sorted(s.pk for s in campaign.exclude_segments.all()),
                as_of=at,
                candidates_sql=candidates,
                candidates_params=[campaign.trigger_cursor, upto, value],
            ),
            at=at,
            due_at=quiet_until or at,
            is_quiet=quiet_until is not None,
            reserve=quiet_until is None and campaign.throttle_per_minute is None,
        )
        campaign.trigger_cursor = upto
        campaign.save(update_fields=["trigger_cursor"])
    return sum(outcome.counts.values())


def campaigns_tick(*, now: datetime | None = None) -> dict[str, int]:
    """One turn of the scheduler; every part is safe to repeat."""
    now = now or timezone.now()
    counts = {
        "started": 0,
        "entrants": 0,
        "reserving": 0,
        "replanned": 0,
        "recovered": 0,
        "completed": 0,
    }
    due = Campaign.objects.filter(state=CampaignState.SCHEDULED, scheduled_at__lte=now)
    for campaign_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            campaign = campaign_get_or_404(campaign_id, for_update=True)
            if campaign.state == CampaignState.SCHEDULED:
                campaign.state = CampaignState.SENDING
                campaign.save(update_fields=["state"])
                enqueue.campaign_plan(campaign_id=campaign.pk)
                counts["started"] += 1
    sending = Campaign.objects.filter(state=CampaignState.SENDING).order_by("-priority", "id")
    for campaign_id in sending.filter(schedule_kind__in=TRIGGERED).values_list("pk", flat=True):
        counts["entrants"] += campaign_plan_entrants(campaign_id=campaign_id, at=now)
    has_due = Delivery.objects.filter(
        campaign=OuterRef("pk"), status=DeliveryStatus.PENDING, due_at__lte=now
    )
    for campaign_id in sending.filter(Exists(has_due)).values_list("pk", flat=True):
        enqueue.campaign_reserve(campaign_id=campaign_id)
        counts["reserving"] += 1
    counts["replanned"] = _replan_lost(now)
    # Every call waiting, page after page: a lost queue may hold any number of them.
    after_id = 0
    while orphans := orphaned_channel_sends(now=now, after_id=after_id, limit=RECOVERY_PAGE):
        ChannelSend.objects.filter(pk__in=orphans).update(requeued_at=now)
        for start in range(0, len(orphans), RECOVERED_PER_TASK):
            enqueue.channel_sends_run(channel_send_ids=orphans[start : start + RECOVERED_PER_TASK])
        counts["recovered"] += len(orphans)
        after_id = orphans[-1]
    counts["completed"] = _complete_finished(now)
    return counts


def _replan_lost(now: datetime) -> int:
    """Queue again the plan of one-shot campaigns sending since `requeue_after()` and still
    not planned: their plan task was lost (a broker emptied). A copy of a plan still running
    finds it locked and stops (`campaign_plan`)."""
    lost = Campaign.objects.filter(
        state=CampaignState.SENDING, planned_at__isnull=True, launched_at__lte=now - requeue_after()
    ).exclude(schedule_kind__in=TRIGGERED)
    lost = lost.exclude(scheduled_at__gt=now - requeue_after())
    replanned = 0
    for campaign_id in lost.order_by("id").values_list("pk", flat=True):
        enqueue.campaign_plan(campaign_id=campaign_id)
        replanned += 1
    return replanned


def _complete_finished(now: datetime) -> int:
    """Sending campaigns with nothing left to reserve or dispatch: planned one-shots, and
    triggered ones past their end."""
    unfinished = Delivery.objects.filter(campaign=OuterRef("pk"), status__in=UNFINISHED)
    candidates = Campaign.objects.filter(state=CampaignState.SENDING).exclude(Exists(unfinished))
    one_shot = candidates.exclude(schedule_kind__in=TRIGGERED).filter(planned_at__isnull=False)
    ended = candidates.filter(schedule_kind__in=TRIGGERED, trigger_ends_at__lte=now)
    completed = 0
    for campaign_id in [
        *one_shot.values_list("pk", flat=True),
        *ended.values_list("pk", flat=True),
    ]:
        with transaction.atomic():
            campaign = campaign_get_or_404(campaign_id, for_update=True)
            still_open = campaign.deliveries.filter(status__in=UNFINISHED).exists()
            if campaign.state == CampaignState.SENDING and not still_open:
                campaign.state = CampaignState.COMPLETED
                campaign.finished_at = now
                campaign.save(update_fields=["state", "finished_at"])
                completed += 1
                logger.info("campaign.completed", extra={"campaign_id": campaign.pk})
    return completed


def wecom_results_poll_due(*, now: datetime | None = None) -> int:
    """Poll the WeCom tasks whose turn has come; answers deliveries settled."""
    from campaigns.channels.wecom import wecom_results_poll

    now = now or timezone.now()
    sends = ChannelSend.objects.filter(
        state=ChannelSendState.ACCEPTED,
        channel__in=[Channel.WECOM_CUSTOMER, Channel.WECOM_GROUP],
        next_poll_at__lte=now,
    ).order_by("next_poll_at")[:500]
    settled = 0
    for send in sends:
        try:
            settled += wecom_results_poll(send=send, now=now)
        except Exception:
            logger.exception("wecom.poll_failed", extra={"channel_send_id": send.pk})
    return settled
