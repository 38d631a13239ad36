"""The dry run page: what launching a campaign now would do, in words: the funnel from the
audience to those sent to (audience → opted out → no identity → held back by each frequency
rule → holdout → to send, also drawn as a chart), counts by frequency rule and by variant, and a
sample of the audience with each member's outcome."""

from dataclasses import dataclass
from typing import Any

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext
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


@dataclass(frozen=True)
class FunnelStep:
    label: str
    removed: int  # by this step; the first step removes nobody
    remaining: int


def funnel_steps(dry: DryRun) -> list[FunnelStep]:
    """The dry run's audience step by step; each member counts once, at the first step that
    holds them back (the dry run's order)."""
    steps = [FunnelStep(gettext("Audience"), 0, dry.audience)]

    def take(label: str, removed: int) -> None:
        steps.append(FunnelStep(label, removed, steps[-1].remaining - removed))

    take(gettext("Opted out"), dry.opted_out)
    take(gettext("No identity for the channel"), dry.no_identity)
    if dry.group_blocked:
        take(gettext("Held back with its group chat"), dry.group_blocked)
    for rule, count in sorted(dry.capped_by_rule.items()):
        take(gettext("Capped by “%(rule)s”") % {"rule": rule}, count)
    for rule, count in sorted(dry.deferred_by_rule.items()):
        take(gettext("Deferred by “%(rule)s”") % {"rule": rule}, count)
    take(gettext("Holdout (control group)"), dry.holdout)
    return steps


def funnel_chart(steps: list[FunnelStep]) -> dict[str, Any]:
    """The chart's data (json_script): one layer per step, what remains after it; the last
    step (the holdout) leaves those to send."""
    after = [gettext("Without: %(step)s") % {"step": step.label} for step in steps[1:-1]]
    return {
        "title": gettext("From audience to sends"),
        "names": [steps[0].label, *after, gettext("To send")],
        "values": [step.remaining for step in steps],
        "labels": [format_count(step.remaining) for step in steps],
    }


def funnel_context(dry: DryRun) -> dict[str, Any]:
    """The funnel's table and chart (includes/funnel.html)."""
    steps = funnel_steps(dry)
    return {
        "funnel_steps": [
            {
                "label": step.label,
                "removed": format_count(step.removed) if index else "",
                "remaining": format_count(step.remaining),
            }
            for index, step in enumerate(steps)
        ],
        "would_send": format_count(dry.would_send),
        "funnel_chart": funnel_chart(steps),
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
        **funnel_context(dry),
        "dry_run": dry,
        "sample_size": SAMPLE_SIZE,
        "rule_columns": [_("Capped"), _("Deferred")],
        "variant_columns": [_("Weight"), _("Would be sent"), _("Share")],
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
