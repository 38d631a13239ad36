"""Operator admin of WeCom as a source: the sync records (同步记录: when, who started it, how
far it got, what it changed, in the operator's words) and a customer's relations with staff
members (跟进关系), on the customer's page. Read-only: WeCom is where both change."""

from typing import Any

from django.contrib import admin
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils.formats import number_format
from django.utils.html import format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import (
    ActorLabelsAdmin,
    NeverEditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    actor_column,
    actor_list_filter,
)
from crm.admin_scoping import AllCustomersAdmin
from crm.models import ContactWay, WeComFollow, WeComSyncRun
from crm.wecom.client import ERRCODE_NO_PRIVILEGE
from crm.wecom.sync_labels import change_lines

# WeCom's add_way codes (来源定义 of externalcontact/get).
ADD_WAYS = {
    0: _("Unknown"),
    1: _("Scanned a QR code"),
    2: _("Searched a phone number"),
    3: _("Shared contact card"),
    4: _("Group chat"),
    5: _("Phone address book"),
    6: _("WeChat contact"),
    7: _("Friend request from WeChat"),
    8: _("Support staff added by a third-party app"),
    9: _("Searched an email address"),
    10: _("WeChat Channels"),
    11: _("Schedule participant"),
    12: _("Meeting participant"),
    13: _("WeChat friend's WeCom account"),
    14: _("Smart device support"),
    15: _("On-site service support"),
    16: _("Customer acquisition link"),
    17: _("Custom development"),
    18: _("Reply to a request"),
    201: _("Shared by a colleague"),
    202: _("Assigned by an administrator"),
}

SCOPE_LABELS = {
    "contacts": _("customers"),
    "tags": _("tags"),
    "groups": _("group chats"),
}


def add_way_label(add_way: int | None) -> str:
    if add_way is None:
        return "-"
    label = ADD_WAYS.get(add_way)
    return str(label) if label is not None else gettext("Other")


class WeComFollowInline(ReadOnlyInline):
    """On the customer's page: every staff member who added the customer in WeCom, ended
    relations included."""

    model = WeComFollow
    fields = readonly_fields = (
        "staff_member",
        "added_at",
        "add_way_label",
        "channel_label",
        "status_label",
        "deleted_at",
        "deleted_by",
    )
    ordering = ["added_at"]
    verbose_name = _("WeCom relation")
    verbose_name_plural = _("WeCom relations")

    def get_queryset(self, request: HttpRequest) -> QuerySet[WeComFollow]:
        # The channel QR code whose state the relation carries, by name, in the same query.
        code = ContactWay.objects.filter(state=OuterRef("state")).values("name")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("staff_member")
            .annotate(contact_way_name=Subquery(code))
        )

    @admin.display(description=_("channel QR code"))
    def channel_label(self, follow: WeComFollow) -> str:
        """The code that brought the relation, by name (its 渠道参数 after it), else the
        state as WeCom sent it."""
        name = getattr(follow, "contact_way_name", None)
        if name:
            return gettext("%(name)s (%(state)s)") % {"name": name, "state": follow.state}
        return follow.state

    @admin.display(description=_("added by way of"))
    def add_way_label(self, follow: WeComFollow) -> str:
        return add_way_label(follow.add_way)

    @admin.display(description=_("status"))
    def status_label(self, follow: WeComFollow) -> str:
        return gettext("Relation deleted") if follow.deleted_at else gettext("Connected")


@admin.register(WeComSyncRun)
class WeComSyncRunAdmin(AllCustomersAdmin, NeverEditedAdmin, ActorLabelsAdmin, ReadOnlyAdmin):
    """同步记录: each full sync with WeCom, newest first. Nothing here is edited; a run is
    started by the nightly task or `manage.py wecom_sync`."""

    actor_fields = ("trigger",)
    trigger_label = actor_column("trigger", _("started by"))
    list_display = [
        "started_at",
        "trigger_label",
        "scope_label",
        "status",
        "progress",
        "changes_label",
        "error_label",
        "finished_at",
    ]
    list_filter = ["status", actor_list_filter("trigger", _("started by"))]
    fields = readonly_fields = (
        "started_at",
        "trigger_label",
        "scope_label",
        "status",
        "progress",
        "changes_label",
        "error_label",
        "heartbeat_at",
        "finished_at",
    )

    @admin.display(description=_("sync scope"))
    def scope_label(self, run: WeComSyncRun) -> str:
        return "、".join(str(SCOPE_LABELS.get(scope, scope)) for scope in run.scopes)

    @admin.display(description=_("progress"))
    def progress(self, run: WeComSyncRun) -> str:
        done = number_format(run.items_done, force_grouping=True)
        if run.items_total is None:
            return done
        total = number_format(run.items_total, force_grouping=True)
        return gettext("%(done)s of %(total)s") % {"done": done, "total": total}

    @admin.display(description=_("changes"))
    def changes_label(self, run: WeComSyncRun) -> str:
        lines = change_lines(run.changes)
        if not lines:
            return gettext("No changes")
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines))

    @admin.display(description=_("error"))
    def error_label(self, run: WeComSyncRun) -> str:
        if not run.error:
            return "-"
        code = run.error.rpartition(":")[2].strip()
        if code == str(ERRCODE_NO_PRIVILEGE):
            return gettext("The app may not see this data in WeCom (visible range).")
        if code.lstrip("-").isdigit():
            return gettext("WeCom refused the request (error %(code)s).") % {"code": code}
        return gettext("The sync stopped on an error; see the logs.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
