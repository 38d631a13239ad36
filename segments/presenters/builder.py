"""The segment builder of the segment form (segments/static/segments/builder.js): the data its
page carries (the rule language's catalogue, its words, its addresses, the problems the last
save found) and the body of its live preview."""

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from segments.models import LifecycleState, RfmTier
from segments.rules import RuleProblem
from segments.rules.catalogue import rule_catalogue
from segments.services.segments import Preview


def _texts() -> dict[str, str]:
    """The builder's words, in the active language."""
    return {
        "all": _("Match all"),
        "any": _("Match any"),
        "not": _("Match none"),
        "all_hint": _("customers meeting every condition below"),
        "any_hint": _("customers meeting at least one condition below"),
        "not_hint": _("customers NOT meeting the condition below"),
        "add_condition": _("Add a condition"),
        "add_group": _("Add a group"),
        "remove": _("Remove"),
        "choose_field": _("Choose a field…"),
        "choose": _("Choose…"),
        "show_json": _("Show the JSON"),
        "hide_json": _("Back to the builder"),
        "json_help": _(
            "The rule as JSON, for those who write it by hand; the builder follows each change."
        ),
        "json_invalid": _("The JSON cannot be read: %(error)s"),
        "search": _("Type to search by name"),
        "no_match": _("Nothing matches"),
        "type_and_enter": _("Type a value and press Enter"),
        "on_day": _("on a date"),
        "days_ago_mode": _("some days ago"),
        "days_ago": _("days ago"),
        "days": _("days"),
        "to": _("to"),
        "empty_rule": _("No condition yet: add one to start."),
        "unreadable_node": _("This part cannot be edited here; change it in the JSON."),
        "optional": _("%(label)s (optional)"),
        "preview_title": _("Estimated size"),
        "preview_pending": _("Counting…"),
        "preview_invalid": _("The conditions are not complete: see the marked places."),
        "preview_failed": _("The size could not be estimated; try again."),
        "preview_before_save": _("Counted now, before saving; the segment fills after saving."),
        "people": _("%(count)s customers"),
        "alone": _("alone: %(count)s customers"),
        "sample_title": _("Sample customers (newest first)"),
        "sample_empty": _("No customer matches."),
        "customer": _("customer"),
        "lifecycle_state": _("lifecycle state"),
        "rfm_tier": _("RFM tier"),
        "value_missing": _("Fill in or choose a value here."),
    }


def builder_page_data(
    *, segment_id: int | None, problems: list[RuleProblem] | None = None
) -> dict[str, Any]:
    """What the form's page hands the builder (through json_script)."""
    return {
        "catalogue": rule_catalogue(),
        "texts": _texts(),
        "urls": {
            "preview": reverse("admin:segments_segment_builder_preview"),
            "options": reverse("admin:segments_segment_builder_options", kwargs={"kind": "KIND"}),
        },
        "segment_id": segment_id,
        "problems": [{"path": p.path, "message": p.message} for p in problems or []],
    }


_LIFECYCLE_LABELS = dict(LifecycleState.choices)
_TIER_LABELS = dict(RfmTier.choices)


def preview_body(preview: Preview) -> dict[str, Any]:
    """The builder's preview: the size, each top-level condition's count, and the sample
    customers with the labels of their state and tier and a link to their page. Names are
    shown as the API's preview shows them (identity values are what is masked, never here)."""
    return {
        "size": preview.size,
        "condition_counts": list(preview.condition_counts),
        "sample": [
            {
                "id": customer["id"],
                "display_name": customer["display_name"] or f"#{customer['id']}",
                "lifecycle_state": str(_LIFECYCLE_LABELS.get(customer["lifecycle_state"], "—")),
                "rfm_tier": str(_TIER_LABELS.get(customer["rfm_tier"], "—")),
                "url": reverse("admin:crm_customer_change", args=[customer["id"]]),
            }
            for customer in preview.sample
        ],
    }
