"""The frequency rules editor: rules written through their service, which validates them as
the API does; the platform preset can be changed or deactivated, never deleted."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from campaigns.models import FrequencyRule
from campaigns.services.frequency_rules import (
    EDITABLE_FIELDS,
    frequency_rule_create,
    frequency_rule_delete,
    frequency_rule_update,
)
from core.admin import ServiceAdmin


@admin.register(FrequencyRule)
class FrequencyRuleAdmin(ServiceAdmin):
    list_display = [
        "name",
        "scope",
        "channel",
        "label",
        "max_count",
        "window_description",
        "on_hit",
        "is_active",
        "is_platform_preset",
    ]
    list_filter = ["is_active", "scope", "channel", "window_kind", "on_hit", "is_platform_preset"]
    search_fields = ["name", "label"]
    readonly_fields = ["is_platform_preset", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active", "is_platform_preset"]}),
        (_("Which sends count"), {"fields": ["scope", "channel", "label"]}),
        (
            _("Cap"),
            {"fields": ["max_count", "window_kind", "window_hours", "calendar_unit"]},
        ),
        (_("When the cap is reached"), {"fields": ["on_hit", "max_delay_hours"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("window"))
    def window_description(self, rule: FrequencyRule) -> str:
        if rule.window_hours is not None:
            return _("%(hours)s hours") % {"hours": rule.window_hours}
        return rule.get_calendar_unit_display()

    def save_model(self, request: HttpRequest, obj: FrequencyRule, form: Any, change: bool) -> None:
        actor = f"user:{request.user.pk}"
        fields = {
            key: form.cleaned_data[key] for key in EDITABLE_FIELDS if key in form.cleaned_data
        }
        if change:
            saved = frequency_rule_update(rule_id=obj.pk, actor=actor, **fields)
        else:
            saved = frequency_rule_create(actor=actor, **fields)
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_platform_preset:
            return False
        return super().has_delete_permission(request, obj)

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        """The service keeps the platform preset."""
        frequency_rule_delete(rule_id=object_id, actor=f"user:{request.user.pk}")
