"""The dry run page: what launching a campaign now would do, in words: counts by outcome, by
frequency rule and by variant, and a sample of the audience with each member's outcome."""

from typing import Any

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, Channel
from campaigns.presenters.formatting import UNKNOWN, FigureLine, format_count, format_percent
from campaigns.services.dry_run import (
    OUTCOME_CAPPED,
    OUTCOME_DEFERRED,
    OUTCOME_GROUP_BLOCKED,
    OUTCOME_HOLDOUT,
    OUTCOME_NO_IDENTITY,
    OUTCOME_OPTED_OUT,
    OUTCOME_SEND,
    SAMPLE_SIZE,
    DryRun,
)
from core.business_time import business_time_label, business_zone_name

# The dry run's outcome of one audience member, in words.
OUTCOME_LABELS: dict[str, Promise] = {
    OUTCOME_SEND: _("Would be sent"),
    OUTCOME_HOLDOUT: _("Held out (control group)"),
    OUTCOME_OPTED_OUT: _("Opted out"),
    OUTCOME_NO_IDENTITY: _("No identity for the channel"),
    OUTCOME_GROUP_BLOCKED: _("Held back with its group chat"),
    OUTCOME_CAPPED: _("Capped by a frequency rule"),
    OUTCOME_DEFERRED: _("Deferred by a frequency rule"),
}


def dry_run_context(campaign: Campaign, dry: DryRun) -> dict[str, Any]:
    rules = sorted({*dry.capped_by_rule, *dry.deferred_by_rule})
    variants = list(campaign.variants.order_by("name", "id").values_list("name", "weight"))
    sample = [
        {
            **member,
            "outcome_label": OUTCOME_LABELS.get(member["outcome"], member["outcome"]),
            "deferred_until_label": business_time_label(member["deferred_until"], empty="—"),
            "customer_url": reverse("admin:crm_customer_change", args=[member["customer_id"]]),
        }
        for member in dry.sample
    ]
    return {
        "dry_run": dry,
        "sample_size": SAMPLE_SIZE,
        "rule_columns": [_("Capped"), _("Deferred")],
        "variant_columns": [_("Weight"), _("Would be sent"), _("Share")],
        "held_back": sum(dry.capped_by_rule.values()) + sum(dry.deferred_by_rule.values()),
        "rule_lines": [
            FigureLine(
                name,
                [
                    format_count(dry.capped_by_rule.get(name, 0)),
                    format_count(dry.deferred_by_rule.get(name, 0)),
                ],
            )
            for name in rules
        ],
        "variant_lines": [
            FigureLine(
                name,
                [
                    format_count(weight),
                    format_count(dry.per_variant.get(name, 0)),
                    format_percent(dry.per_variant.get(name, 0) / dry.would_send)
                    if dry.would_send
                    else UNKNOWN,
                ],
            )
            for name, weight in variants
        ],
        "has_quiet_hours": campaign.quiet_hours_start is not None
        and campaign.quiet_hours_end is not None
        and campaign.quiet_hours_start != campaign.quiet_hours_end,
        "sample": sample,
        "quiet_until_label": business_time_label(dry.quiet_until),
        "zone_name": business_zone_name(),
        "is_group_chat": campaign.channel == Channel.WECOM_GROUP,
    }
