"""The launch confirmation in words: the dry run's funnel (see `presenters.dry_run`), the WeCom
tasks each staff member would confirm, the warnings worth reading before launching, and each
variant's message as an example customer would read it."""

from dataclasses import dataclass
from typing import Any

from django.utils.formats import time_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import Campaign, Channel
from campaigns.presenters.dry_run import funnel_context
from campaigns.presenters.formatting import format_count, format_percent
from campaigns.services.dry_run import DryRun
from campaigns.services.launch_check import LaunchCheck
from campaigns.services.templates import template_render
from core.business_time import business_time_label, business_zone_name

# "Most of": a warning is worth showing past this share.
MOSTLY = 0.5

# The values an example customer's message is rendered with: made up, and said to be.
EXAMPLE_VALUES: dict[str, Promise] = {
    "display_name": gettext_lazy("Wang Xiaomei (example)"),
    "city": gettext_lazy("Hangzhou"),
    "province": gettext_lazy("Zhejiang"),
    "member_level": gettext_lazy("3"),
    "owner_name": gettext_lazy("Li Na (example staff member)"),
}


@dataclass(frozen=True)
class LaunchWarning:
    text: str
    link: str = ""
    link_label: str = ""


def launch_warnings(
    campaign: Campaign, dry: DryRun, check: LaunchCheck, *, edit_url: str
) -> list[LaunchWarning]:
    warnings: list[LaunchWarning] = []
    if dry.audience and not dry.would_send:
        warnings.append(LaunchWarning(_("Nobody would be sent this message now.")))
    held = sum(dry.capped_by_rule.values()) + sum(dry.deferred_by_rule.values())
    if dry.audience and held / dry.audience > MOSTLY:
        by_rule: dict[str, int] = {}
        for counts in (dry.capped_by_rule, dry.deferred_by_rule):
            for rule, count in counts.items():
                by_rule[rule] = by_rule.get(rule, 0) + count
        top = max(sorted(by_rule), key=lambda rule: by_rule[rule])
        warnings.append(
            LaunchWarning(
                _(
                    "Most of the audience is held back by frequency rules: %(held)s of "
                    "%(audience)s (%(share)s), most by “%(rule)s”. They were messaged recently."
                )
                % {
                    "held": format_count(held),
                    "audience": format_count(dry.audience),
                    "share": format_percent(held / dry.audience),
                    "rule": top,
                }
            )
        )
    if check.holdout_overlaps and check.would_send:
        overlap = check.holdout_overlaps[0]
        if overlap.recipients / check.would_send > MOSTLY:
            warnings.append(
                LaunchWarning(
                    _(
                        "Most of those who would be sent are in the holdout (control group) of "
                        "the campaign “%(campaign)s”: %(count)s of %(total)s (%(share)s). "
                        "Messaging them spoils that campaign's measure of lift."
                    )
                    % {
                        "campaign": overlap.campaign_name,
                        "count": format_count(overlap.recipients),
                        "total": format_count(check.would_send),
                        "share": format_percent(overlap.recipients / check.would_send),
                    }
                )
            )
    start, end = campaign.quiet_hours_start, campaign.quiet_hours_end
    if dry.quiet_until is not None and start is not None and end is not None:
        warnings.append(
            LaunchWarning(
                _(
                    "Now is within the campaign's quiet hours (%(start)s–%(end)s, %(zone)s): "
                    "launched now, its sends would wait until %(until)s."
                )
                % {
                    "start": time_format(start, "H:i"),
                    "end": time_format(end, "H:i"),
                    "zone": business_zone_name(),
                    "until": business_time_label(dry.quiet_until),
                }
            )
        )
    if campaign.channel == Channel.WECOM_CUSTOMER and check.tasks > check.shared_tasks:
        names = "、".join(f"{{{{ {name} }}}}" for name in check.personal_variables)
        warnings.append(
            LaunchWarning(
                _(
                    "The message names %(variables)s, so WeCom needs a task of its own for each "
                    "customer: %(staff)s staff members would each confirm their tasks one by one, "
                    "%(tasks)s tasks in all. With one shared text (no customer variable) it would "
                    "be %(shared)s. To send a shared text, edit the variants before launching: "
                    "the campaign sends exactly the texts it holds."
                )
                % {
                    "variables": names,
                    "staff": format_count(len(check.staff_tasks)),
                    "tasks": format_count(check.tasks),
                    "shared": format_count(check.shared_tasks),
                },
                link=edit_url + "#variants-group",
                link_label=_("Edit the variants"),
            )
        )
    return warnings


def example_messages(campaign: Campaign) -> list[dict[str, str]]:
    """Each variant's message as a made-up example customer would read it."""
    values = {name: str(value) for name, value in EXAMPLE_VALUES.items()}
    return [
        {"name": name, "text": template_render(content, values)}
        for name, content in campaign.variants.order_by("name", "id").values_list("name", "content")
    ]


def launch_context(
    campaign: Campaign, dry: DryRun, check: LaunchCheck, *, edit_url: str
) -> dict[str, Any]:
    return {
        **funnel_context(dry),
        "warnings": launch_warnings(campaign, dry, check, edit_url=edit_url),
        "staff_tasks": [
            {
                "name": staff.staff_name or _("No owner"),
                "recipients": format_count(staff.recipients),
                "tasks": format_count(staff.tasks),
                "shared_tasks": format_count(staff.shared_tasks),
            }
            for staff in check.staff_tasks
        ],
        "total_tasks": format_count(check.tasks),
        "is_personalised": check.tasks > check.shared_tasks,
        "examples": example_messages(campaign),
    }
