"""Celery entry points of the campaign engine: thin, id-taking, safe to run twice (each step
re-reads state under locks and does only what is still to do). Published after commit."""

import logging
import time

from celery import shared_task

from campaigns.services import attribution, pipeline

logger = logging.getLogger(__name__)

# A reserve task hands over to a fresh copy of itself after this long, so that one campaign
# never holds a worker for long and the others' turns come.
RESERVE_SLICE_SECONDS = 20.0


@shared_task(name="campaigns.plan")
def campaign_plan_task(campaign_id: int) -> int:
    return pipeline.campaign_plan_step(campaign_id=campaign_id)


@shared_task(name="campaigns.reserve")
def campaign_reserve_task(campaign_id: int) -> int:
    """Reserve batches until nothing is due, the throttle stops it, or the slice is used."""
    deadline = time.monotonic() + RESERVE_SLICE_SECONDS
    return pipeline.campaign_reserve_step(campaign_id=campaign_id, deadline=deadline)


@shared_task(name="campaigns.run_channel_sends")
def channel_sends_run_task(channel_send_ids: list[int]) -> int:
    """Make the calls a reservation wrote (or a tick found orphaned)."""
    return pipeline.channel_sends_step(channel_send_ids=channel_send_ids)


@shared_task(name="campaigns.tick")
def campaigns_tick_task() -> dict[str, int]:
    """Every minute: start what is due, plan trigger entrants, reserve what is due, recover
    orphaned sends, finish campaigns with nothing left."""
    return pipeline.campaigns_tick()


@shared_task(name="campaigns.attribute_customers")
def attribute_customers_task(customer_ids: list[int]) -> int:
    """Attribute again the conversions of customers whose orders just changed."""
    _removed, written = attribution.conversions_attribute(customer_ids=customer_ids)
    return written


@shared_task(name="campaigns.attribute_catch_up")
def attribution_catch_up_task() -> int:
    """Nightly: attribute again everyone touched in the last 90 days."""
    return attribution.conversions_catch_up()


@shared_task(name="campaigns.poll_results")
def wecom_results_poll_task() -> int:
    return pipeline.wecom_results_poll_due()
