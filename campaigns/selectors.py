"""Campaign reads: selectors only, no writes."""

from django.db.models import Q, QuerySet

from campaigns.models import FrequencyRule


def frequency_rule_list(
    *, is_active: bool | None = None, channel: str | None = None
) -> QuerySet[FrequencyRule]:
    """Rules by name; `channel` keeps those that may apply to a send on it: its own rules, the
    all-channel rules and the label rules (those apply by campaign)."""
    rules = FrequencyRule.objects.order_by("name", "id")
    if is_active is not None:
        rules = rules.filter(is_active=is_active)
    if channel:
        rules = rules.filter(Q(channel="") | Q(channel=channel))
    return rules
