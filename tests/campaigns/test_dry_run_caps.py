"""The dry run's frequency caps read the ledger for its audience only: the deliveries of
everyone else, however many, change none of its numbers."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import FrequencyRule
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.frequency_rules import frequency_rule_create
from tests.campaigns.support import audience, make_campaign, wecom_customers
from tests.factories import CampaignFactory, CustomerFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def cap(name: str, **fields: Any) -> FrequencyRule:
    values: dict[str, Any] = {
        "name": name,
        "scope": "all_channels",
        "max_count": 1,
        "window_kind": "calendar",
        "calendar_unit": "day",
        **fields,
    }
    return frequency_rule_create(actor="test", **values)


def test_the_caps_count_the_audiences_deliveries_and_no_one_elses() -> None:
    FrequencyRule.objects.filter(is_platform_preset=True).update(is_active=False)
    daily = cap("每天 1 条")
    rolling = cap("3 天 2 条", max_count=2, window_kind="rolling", window_hours=72,
                  calendar_unit="", on_hit="defer", max_delay_hours=96)  # fmt: skip
    sent_today, twice_lately, long_ago, never = wecom_customers(4)
    ledger = CampaignFactory()
    DeliveryFactory(campaign=ledger, customer=sent_today, at=NOON - timedelta(hours=2))
    oldest = NOON - timedelta(hours=60)
    DeliveryFactory(campaign=ledger, customer=twice_lately, at=oldest)
    DeliveryFactory(campaign=CampaignFactory(), customer=twice_lately, at=NOON - timedelta(days=1))
    DeliveryFactory(campaign=ledger, customer=long_ago, at=NOON - timedelta(days=5))
    campaign = make_campaign(audience([sent_today, twice_lately, long_ago, never]))

    alone = campaign_dry_run(campaign=campaign, at=NOON)
    for other in CustomerFactory.create_batch(30):  # a ledger of others, in every window
        for hours in (1, 30, 70):
            DeliveryFactory(
                campaign=CampaignFactory(), customer=other, at=NOON - timedelta(hours=hours)
            )
    among_others = campaign_dry_run(campaign=campaign, at=NOON)

    for dry in (alone, among_others):
        assert dry.audience == 4
        assert dry.capped_by_rule == {daily.name: 1}
        assert dry.deferred_by_rule == {rolling.name: 1}
        assert dry.would_send == 2
        deferred = [entry for entry in dry.sample if entry["outcome"] == "deferred"]
        assert [(e["customer_id"], e["deferred_until"]) for e in deferred] == [
            (twice_lately.pk, oldest + timedelta(hours=72))
        ]
