"""WeCom's callback events in the admin (imported by crm.admin): a read-only list of what
arrived and how it was processed, by event, status and time, in business time. Never the
message itself (it names customers): only its kind, times and outcome. Nobody adds, changes
or deletes an event here (the table refuses changes of what arrived in the database too)."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import LargeListAdmin, NeverEditedAdmin
from core.business_time import business_time_label
from crm.models import WeComEvent

# The events of 客户联系 this product receives, and their changes, as operators name them.
EVENT_LABELS = {
    "change_external_contact": _("Customer change"),
    "change_external_chat": _("Customer group chat change"),
    "change_external_tag": _("Customer tag change"),
}
CHANGE_LABELS = {
    ("change_external_contact", "add_external_contact"): _("Staff member added a customer"),
    ("change_external_contact", "edit_external_contact"): _("Staff member edited a customer"),
    ("change_external_contact", "add_half_external_contact"): _(
        "Customer added a staff member (not yet accepted)"
    ),
    ("change_external_contact", "del_external_contact"): _("Staff member deleted a customer"),
    ("change_external_contact", "del_follow_user"): _("Customer deleted a staff member"),
    ("change_external_contact", "transfer_fail"): _("Customer handover failed"),
    ("change_external_chat", "create"): _("Group chat created"),
    ("change_external_chat", "update"): _("Group chat changed"),
    ("change_external_chat", "dismiss"): _("Group chat dismissed"),
    ("change_external_tag", "create"): _("Tag created"),
    ("change_external_tag", "update"): _("Tag changed"),
    ("change_external_tag", "delete"): _("Tag deleted"),
    ("change_external_tag", "shuffle"): _("Tags reordered"),
}


class WeComEventKindFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(EVENT_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(event=self.value()) if self.value() else queryset


@admin.register(WeComEvent)
class WeComEventAdmin(NeverEditedAdmin, LargeListAdmin):
    list_display = [
        "number",
        "received_at_label",
        "event_label",
        "change_label",
        "event_at_label",
        "status",
        "attempts",
        "processed_at_label",
        "error_label",
    ]
    list_filter = [
        WeComEventKindFilter,
        "status",
        ("received_at", admin.DateFieldListFilter),
    ]
    # An event's id, as a log line names it.
    number_search_fields = ("id",)
    search_help_text = _("An event's number.")
    fields = readonly_fields = (
        "received_at_label",
        "event_label",
        "change_label",
        "event_at_label",
        "status",
        "attempts",
        "processed_at_label",
        "error_label",
    )

    @admin.display(description=_("number"), ordering="id")
    def number(self, event: WeComEvent) -> str:
        return str(event)

    @admin.display(description=_("error"), ordering="error_code")
    def error_label(self, event: WeComEvent) -> str:
        """Why processing failed, in words: WeCom's refusal with its errcode, or a failure
        of this server (its kind is in the logs, by the event's number)."""
        code = event.error_code
        if not code:
            return ""
        if code.startswith("wecom_"):
            return gettext("WeCom refused the request (error %(code)s).") % {
                "code": code.removeprefix("wecom_")
            }
        return gettext("Processing failed on this server; see the logs for event %(id)d.") % {
            "id": event.pk
        }

    @admin.display(description=_("received at"), ordering="received_at")
    def received_at_label(self, event: WeComEvent) -> str:
        return business_time_label(event.received_at)

    @admin.display(description=_("event time"), ordering="event_at")
    def event_at_label(self, event: WeComEvent) -> str:
        return business_time_label(event.event_at)

    @admin.display(description=_("processed at"), ordering="processed_at")
    def processed_at_label(self, event: WeComEvent) -> str:
        return business_time_label(event.processed_at)

    @admin.display(description=_("event"), ordering="event")
    def event_label(self, event: WeComEvent) -> str:
        return str(EVENT_LABELS.get(event.event, event.event))

    @admin.display(description=_("change"), ordering="change_type")
    def change_label(self, event: WeComEvent) -> str:
        label = CHANGE_LABELS.get((event.event, event.change_type))
        return str(label) if label is not None else event.change_type or "-"
