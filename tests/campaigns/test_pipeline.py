"""The send pipeline end to end in one process: plan, reserve, dispatch to the WeCom fake over
real HTTP, and collect the results."""

from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from campaigns.models import CampaignState, ChannelSend, Delivery, DeliveryReason
from campaigns.services.campaigns import campaign_launch, campaign_plan
from campaigns.services.dispatch import channel_sends_run
from campaigns.services.pipeline import campaigns_tick, wecom_results_poll_due
from campaigns.services.reservation import deliveries_reserve_batch
from devstack.wecom_fake import FakeWeCom
from tests.campaigns.support import (
    audience,
    calls_of,
    make_campaign,
    opt_out,
    statuses,
    wecom_customers,
)

pytestmark = pytest.mark.django_db


def test_a_campaign_reaches_its_audience_once(
    fake: FakeWeCom, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    customers = wecom_customers(5)
    opted_out = customers[0]
    opt_out(opted_out, at=opted_out.created_at)
    campaign = make_campaign(audience(customers))
    campaign_launch(campaign_id=campaign.pk, actor="test")
    with django_capture_on_commit_callbacks() as dispatches:
        assert campaign_plan(campaign_id=campaign.pk) == 5
    # Due now: planned and reserved in one write, one dispatch task queued for the sender (and
    # the reservation of whatever waits, here nothing).
    assert statuses(campaign) == {"reserved": 4, "suppressed": 1}
    assert len(dispatches) == 2
    assert deliveries_reserve_batch(campaign_id=campaign.pk).reserved_ids == []
    calls = calls_of(campaign)
    assert len(calls) == 1  # one sender, one text
    channel_sends_run(channel_send_ids=calls)
    assert statuses(campaign) == {"submitted": 4, "suppressed": 1}
    # Five more copies of the same dispatch send nothing more.
    for _ in range(5):
        channel_sends_run(channel_send_ids=calls)
    assert len(fake.messages()) == 1
    assert sorted(fake.messages()[0]["request"]["external_userid"]) == sorted(
        f"ext-{c.pk}" for c in customers[1:]
    )
    ChannelSend.objects.update(next_poll_at=timezone.now())
    assert wecom_results_poll_due() == 4
    assert statuses(campaign) == {"sent": 4, "suppressed": 1}
    assert Delivery.objects.get(customer=opted_out).reason == DeliveryReason.OPTED_OUT
    campaigns_tick()
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.COMPLETED
