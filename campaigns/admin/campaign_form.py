"""The campaign's change form: its fields checked as the API checks them, its variants inline
(editable while the campaign is a draft), and its values as the campaign service names them."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_permission_codename
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign, CampaignState, Variant
from campaigns.services.campaigns import CampaignInput, VariantInput
from core.validators import FREE_TEXT_MAX_LENGTH, validate_json_text, validate_planned_time

# The services' names of the fields the form names otherwise.
SERVICE_FIELD_NAMES = {
    "include_segment_ids": "include_segments",
    "exclude_segment_ids": "exclude_segments",
    "trigger_segment_id": "trigger_segment",
}


# The accepted values of core.validators, as the API checks them (campaigns.api.campaigns).
_FORM_FIELD_VALIDATORS: dict[str, list[Callable[[Any], None]]] = {
    "scheduled_at": [validate_planned_time],
    "trigger_ends_at": [validate_planned_time],
    "extra_rule": [validate_json_text],
}
FORM_FIELD_OPTIONS: dict[str, dict[str, Any]] = {
    "conversion_min_amount": {"min_value": 0},
}


def _form_field(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Django 6's default: a URL typed without a scheme is taken as https."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return with_validators(
        field, field.formfield(**{**FORM_FIELD_OPTIONS.get(field.name, {}), **kwargs})
    )


def with_validators(field: models.Field, formfield: forms.Field | None) -> forms.Field | None:
    """The form field of `field`, checked as the API checks it."""
    if formfield is not None:
        formfield.validators.extend(_FORM_FIELD_VALIDATORS.get(field.name, []))
    return formfield


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        formfield_callback = _form_field
        # What CampaignInput holds; the admin narrows it to the fieldsets shown.
        fields = [
            *(name for name in CampaignInput.MODEL_FIELDS if name != "trigger_segment_id"),
            "trigger_segment",
            "include_segments",
            "exclude_segments",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "consent_channel" in self.fields:
            self.fields["consent_channel"].required = False
            self.fields["consent_channel"].help_text = _(
                "Empty: the channel's own (WeCom for both WeCom channels). A webhook campaign "
                "names it. Customers who opted out on it are never sent to."
            )


def campaign_values(cleaned: dict[str, Any], variants: list[VariantInput]) -> dict[str, Any]:
    """The campaign form's values as CampaignInput names them."""
    values = {name: cleaned[name] for name in CampaignInput.MODEL_FIELDS if name in cleaned}
    trigger_segment = cleaned.get("trigger_segment")
    values["trigger_segment_id"] = trigger_segment.pk if trigger_segment else None
    values["include_segment_ids"] = sorted(s.pk for s in cleaned.get("include_segments", []))
    values["exclude_segment_ids"] = sorted(s.pk for s in cleaned.get("exclude_segments", []))
    values["variants"] = variants
    return values


def variant_inputs(formset: Any) -> list[VariantInput]:
    """The variants the inline holds, in its order, leaving out rows deleted or left blank."""
    variants = []
    for form in formset.forms:
        cleaned = getattr(form, "cleaned_data", None) or {}
        if not cleaned or cleaned.get("DELETE"):
            continue
        variants.append(
            VariantInput(name=cleaned["name"], content=cleaned["content"], weight=cleaned["weight"])
        )
    return variants


def is_draft(campaign: Campaign | None) -> bool:
    return campaign is None or campaign.state == CampaignState.DRAFT


class VariantInline(admin.TabularInline):
    """A draft's messages. Variants are part of their campaign: the campaign's permissions
    govern them, and they are saved with it through the service."""

    model = Variant
    fields = ["name", "weight", "content"]
    extra = 0

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "content":
            kwargs["max_length"] = FREE_TEXT_MAX_LENGTH
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0

    def _may_edit(self, request: HttpRequest, obj: Campaign | None) -> bool:
        if not is_draft(obj):
            return False
        opts = Campaign._meta
        action = "add" if obj is None else "change"
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = Campaign._meta
        return any(
            request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
            for action in ("view", "change")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)
