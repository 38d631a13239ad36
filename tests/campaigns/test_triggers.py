"""Triggered campaigns follow their feeds under concurrent writers: an entrant whose row was
written by a transaction that committed after a later one is greeted all the same, once."""

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import Campaign, Delivery
from campaigns.services.campaigns import campaign_launch
from campaigns.services.pipeline import campaign_plan_entrants
from segments.services.segments import segment_create, segment_members_change
from tests.campaigns.support import make_campaign, wecom_customers
from tests.segments.feed_support import HeldOpen, RunWithFirstBatchHeld
from tests.segments.recompute_support import order

# Nothing is published to the broker: these tests call the steps themselves.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("enqueued")]

NOON = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def greeted(campaign: Campaign) -> list[int]:
    return sorted(Delivery.objects.filter(campaign=campaign).values_list("customer_id", flat=True))


def test_a_lifecycle_trigger_greets_the_entrants_of_a_batch_committing_late(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A full run's first batch (the lower transition ids) commits after the second: the tick
    in between plans nobody past the open batch, the next one plans everybody."""
    customers = wecom_customers(4)
    for customer in customers:
        order(customer, days_ago=1)  # every customer becomes new
    campaign = make_campaign(schedule_kind="lifecycle", trigger_lifecycle_state="new")
    campaign_launch(campaign_id=campaign.pk, actor="test", at=NOON)
    run = RunWithFirstBatchHeld(
        customer_ids=[c.pk for c in customers], monkeypatch=monkeypatch, settings=settings
    )

    run.start()
    during = campaign_plan_entrants(campaign_id=campaign.pk, at=NOON)
    run.release()
    after = campaign_plan_entrants(campaign_id=campaign.pk, at=NOON)

    assert greeted(campaign) == [c.pk for c in customers]
    assert (during, after) == (0, 4)


def test_a_segment_entry_trigger_greets_an_entrant_whose_refresh_commits_late() -> None:
    """The watched segment's refresh draws the lower event id and commits after another
    segment's: the entrant is greeted once it commits."""
    entrant, other_member = wecom_customers(2)
    watched = segment_create(name="watched", kind="static", actor="test")
    other = segment_create(name="other", kind="static", actor="test")
    campaign = make_campaign(schedule_kind="segment_entry", trigger_segment_id=watched.pk)
    campaign_launch(campaign_id=campaign.pk, actor="test", at=NOON)
    refresh = HeldOpen(
        lambda: segment_members_change(segment_id=watched.pk, add=[entrant.pk], actor="test")
    )

    refresh.start()
    segment_members_change(segment_id=other.pk, add=[other_member.pk], actor="test")
    during = campaign_plan_entrants(campaign_id=campaign.pk, at=NOON)
    refresh.commit()
    after = campaign_plan_entrants(campaign_id=campaign.pk, at=NOON)

    assert greeted(campaign) == [entrant.pk]
    assert (during, after) == (0, 1)


def test_a_trigger_launched_while_a_refresh_is_open_greets_its_entrant() -> None:
    """Launched while a refresh holding a lower event id is still open and a later one has
    committed: the campaign starts below the open one, and greets its entrant."""
    entrant, other_member = wecom_customers(2)
    watched = segment_create(name="watched", kind="static", actor="test")
    other = segment_create(name="other", kind="static", actor="test")
    campaign = make_campaign(schedule_kind="segment_entry", trigger_segment_id=watched.pk)
    refresh = HeldOpen(
        lambda: segment_members_change(segment_id=watched.pk, add=[entrant.pk], actor="test")
    )

    refresh.start()
    segment_members_change(segment_id=other.pk, add=[other_member.pk], actor="test")
    campaign_launch(campaign_id=campaign.pk, actor="test", at=NOON)
    refresh.commit()
    planned = campaign_plan_entrants(campaign_id=campaign.pk, at=NOON)

    assert greeted(campaign) == [entrant.pk]
    assert planned == 1
