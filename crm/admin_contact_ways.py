"""Operator admin of channel QR codes (渠道活码): the list with each code's report, a form that
creates or changes the code through its service (in WeCom first), the code's image on its page
and as a download, and stopping codes after a confirmation. The report counts every customer a
code brought: its columns are for users who see every customer."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import ServiceAdmin
from core.errors import DomainError, NotFound
from crm.admin_scoping import sees_all_customers
from crm.models import ContactWay
from crm.selectors.contact_ways import ContactWayReport, contact_way_reports
from crm.wecom.contact_ways import (
    contact_way_create,
    contact_way_deactivate,
    contact_way_qr_code_image,
    contact_way_update,
)

REPORT_HELP = _(
    "How the numbers are counted. Added: WeCom relations added through the code (every scan "
    "that led to an add, whether or not the customer was new). Still connected after 7 / 30 "
    "days: of those added at least 7 (30) days ago, the share that neither side ended within "
    "7 (30) days. First orders within 30 / 90 days: of the customers who first came through "
    "this code, those whose first purchase ever came within 30 (90) days, and what those first "
    "orders paid net of refunds; orders count for the code a customer first came through only. "
    "Repeat rate: of the customers with a first order within 90 days, the share who bought again."
)
REPORT_COLUMNS = ("added", "kept", "first_orders_30", "first_orders_90", "repeat_rate")


class ContactWayForm(forms.ModelForm):
    class Meta:
        model = ContactWay
        fields = ["name", "state", "kind", "staff_members", "auto_tags", "source_channel"]
        fields += ["skip_verify"]
        help_texts = {
            "state": _(
                "Tells this code's customers apart, e.g. one per video or live room: letters, "
                "digits, _ or -, at most 30. Left empty, one is made up. It cannot change later."
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "state" in self.fields:
            self.fields["state"].required = False
        # Uniqueness and every other rule are the service's (shown on the fields if refused).
        self._validate_unique = False

    def validate_unique(self) -> None:
        pass


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f}%"


def _money(amount: Decimal) -> str:
    return "¥" + number_format(amount, decimal_pos=2, force_grouping=True)


@admin.register(ContactWay)
class ContactWayAdmin(ServiceAdmin):
    form = ContactWayForm
    list_display = ["name", "state", "staff", "source_channel", *REPORT_COLUMNS, "is_active"]
    list_filter = ["is_active", "source_channel"]
    search_fields = ["name", "state"]
    autocomplete_fields = ["staff_members", "auto_tags"]
    actions = ["deactivate"]
    service_field_names = {"staff_member_ids": "staff_members", "auto_tag_ids": "auto_tags"}

    def get_queryset(self, request: HttpRequest) -> QuerySet[ContactWay]:
        return (
            super().get_queryset(request).defer("qr_code_image").prefetch_related("staff_members")
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "state", "kind", "staff_members", "auto_tags", "source_channel"]
        fields.append("skip_verify")
        if obj is not None:
            fields += ["qr_code", "is_active", "created_at"]
        return fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        readonly = ["state", "kind", "qr_code", "is_active", "created_at"]
        if not obj.is_active:
            readonly += ["name", "staff_members", "auto_tags", "source_channel", "skip_verify"]
        return readonly

    def get_list_display(self, request: HttpRequest) -> Any:
        columns = super().get_list_display(request)
        if sees_all_customers(request):
            return columns
        return [c for c in columns if c not in REPORT_COLUMNS]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # stopped, never deleted: its customers' first touch names it

    def get_actions(self, request: HttpRequest) -> Any:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        extra_context = {**(extra_context or {}), "report_help": REPORT_HELP}
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None and sees_all_customers(request):
            # The page's reports in one query; the rows are the ones the template shows.
            ways = list(changelist.result_list)
            reports = contact_way_reports(contact_way_ids=[way.pk for way in ways])
            for way in ways:
                way.report = reports.get(way.pk) or ContactWayReport(contact_way_id=way.pk)
        return response

    # --- columns ---

    @admin.display(description=_("staff members"))
    def staff(self, way: ContactWay) -> str:
        return "、".join(str(member) for member in way.staff_members.all())

    @admin.display(description=_("contacts added"))
    def added(self, way: ContactWay) -> int:
        return self._report(way).added

    @admin.display(description=_("still connected after 7 / 30 days"))
    def kept(self, way: ContactWay) -> str:
        report = self._report(way)
        return f"{_percent(report.kept_7_rate)} / {_percent(report.kept_30_rate)}"

    @admin.display(description=_("first orders within 30 days"))
    def first_orders_30(self, way: ContactWay) -> str:
        report = self._report(way)
        return f"{report.first_orders_30}（{_money(report.first_order_revenue_30)}）"

    @admin.display(description=_("first orders within 90 days"))
    def first_orders_90(self, way: ContactWay) -> str:
        report = self._report(way)
        return f"{report.first_orders_90}（{_money(report.first_order_revenue_90)}）"

    @admin.display(description=_("repeat-purchase rate"))
    def repeat_rate(self, way: ContactWay) -> str:
        return _percent(self._report(way).repeat_rate)

    def _report(self, way: ContactWay) -> ContactWayReport:
        report = getattr(way, "report", None)
        return report or ContactWayReport(contact_way_id=way.pk)

    @admin.display(description=_("QR code"))
    def qr_code(self, way: ContactWay) -> str:
        if way.pk is None:
            return "-"
        url = reverse("admin:crm_contactway_qr_code", args=[way.pk])
        return format_html(
            '<img src="{}" alt="{}" width="160" height="160"><br><a href="{}?download=1">{}</a>',
            url,
            way.name,
            url,
            gettext("Download the QR code"),
        )

    # --- writes, through the services ---

    def save_model(self, request: HttpRequest, obj: ContactWay, form: Any, change: bool) -> None:
        data = form.cleaned_data
        actor = f"user:{request.user.pk}"
        values = {
            "name": data["name"],
            "staff_member_ids": [member.pk for member in data["staff_members"]],
            "auto_tag_ids": [tag.pk for tag in data["auto_tags"]],
            "source_channel": data["source_channel"],
            "skip_verify": data["skip_verify"],
        }
        if change:
            contact_way_update(contact_way_id=obj.pk, actor=actor, **values)
        else:
            created = contact_way_create(
                state=data.get("state") or "",
                kind=int(data["kind"]),
                actor=actor,
                **values,
            )
            obj.pk = created.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # staff members and tags were set by the service

    @admin.action(description=_("Stop the selected channel QR codes"), permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[ContactWay]) -> Any:
        ways = list(queryset.filter(is_active=True).order_by("pk"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": gettext("Stop channel QR codes"),
                "question": gettext(
                    "Stop these channel QR codes? They are deleted in WeCom: scanning them adds "
                    "nobody any more. Their customers and reports stay."
                ),
                "confirm_label": gettext("Yes, stop them"),
                "ways": ways,
                "action": "deactivate",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.opts,
                "media": self.media,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request, "admin/crm/contactway/deactivate_confirmation.html", context
            )
        done = 0
        for way in ways:
            try:
                contact_way_deactivate(contact_way_id=way.pk, actor=f"user:{request.user.pk}")
            except DomainError as refusal:
                self.message_refusal(request, refusal, about=way.name)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d channel QR code stopped.",
                    "%(count)d channel QR codes stopped.",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )
        return None

    # --- the image ---

    def get_urls(self) -> list[Any]:
        return [
            path(
                "<int:object_id>/qr-code/",
                self.admin_site.admin_view(self.qr_code_view),
                name="crm_contactway_qr_code",
            ),
            *super().get_urls(),
        ]

    def qr_code_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """The stored PNG: shown on the page, or (`?download=1`) as a file to save."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            image = contact_way_qr_code_image(contact_way_id=object_id)
        except NotFound:
            raise Http404 from None
        response = HttpResponse(image, content_type="image/png")
        if request.GET.get("download"):
            response["Content-Disposition"] = f'attachment; filename="contact-way-{object_id}.png"'
        return response
