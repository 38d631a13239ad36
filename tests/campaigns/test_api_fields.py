"""The campaign and frequency-rule APIs take their field lists from the services: every field
the service sets can be given, and nothing else is accepted."""

import dataclasses

from campaigns.api.campaigns import CampaignInSerializer, CampaignOutSerializer
from campaigns.api.frequency_rules import FrequencyRuleInSerializer, FrequencyRuleOutSerializer
from campaigns.services.campaigns import CampaignInput
from campaigns.services.frequency_rules import EDITABLE_FIELDS


def test_a_campaign_is_given_as_the_service_takes_it_and_shown_whole() -> None:
    taken = {field.name for field in dataclasses.fields(CampaignInput)}
    # `content`: one message instead of `variants`, answered as variant A.
    assert set(CampaignInSerializer().fields) == taken | {"content"}
    assert taken <= set(CampaignOutSerializer().fields)


def test_a_frequency_rule_is_given_and_shown_as_the_service_edits_it() -> None:
    assert set(FrequencyRuleInSerializer().fields) == set(EDITABLE_FIELDS)
    assert set(EDITABLE_FIELDS) <= set(FrequencyRuleOutSerializer().fields)
