"""The pages of the admin composed here from the apps' own. The customer page, from the CRM's
page and the sections the other apps offer for it: segmentation's scores, lifecycle,
predictions and segments (inlines), campaigns' recent deliveries, and the console's own
sections (latest interactions, campaign history); its list exports what it shows (导出,
console.exports), every export recorded. The segment pages, segmentation's with the portrait
(人群画像) of a segment and, as JSON for the builder, of a rule. Registered once, from explicit
imports, so the pages are the same whatever the order of INSTALLED_APPS."""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.http.response import HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.functional import Promise
from django.utils.html import format_html
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from campaigns.admin import customers as campaigns_admin
from console import customer_sections
from console.exports import (
    EXPORT_ROW_LIMIT,
    customer_export_columns,
    customer_export_csv,
    customer_export_values,
    customer_export_xlsx,
)
from console.formatting import format_count, zone_label
from console.models import CustomerExport, ExportFormat, PrivacyRequest, PrivacyRequestKind
from console.portrait import portrait_context
from console.services.exports import customer_export_record
from console.services.privacy import customer_erase, customer_personal_export
from core.admin import ActorLabelsAdmin, ReadOnlyAdmin, actor_column
from core.api.errors import error_body
from core.audit_display import joined, privacy_count_lines
from core.business_time import business_time_label
from core.errors import DomainError
from core.models import AuditAction
from core.validators import ERROR_INVALID_TEXT, json_error
from crm.admin import PERSONAL_DATA_PERMISSION, CustomerAdmin
from crm.admin_scoping import sees_all_customers
from crm.models import Customer, Tag, TagSource
from crm.services.tags import tags_assign, tags_remove
from segments.admin import (
    CustomerMetricsInline,
    CustomerPredictionInline,
    CustomerSegmentInline,
    LifecycleMoveListFilter,
    LifecycleTransitionInline,
    SegmentAdmin,
)
from segments.models import Segment, SegmentKind
from segments.portrait import rule_portrait, segment_portrait
from segments.services.segments import segment_members_change

# Who may erase a customer's personal data (PIPL) from its page.
ERASE_PERMISSION = "console.erase_personal_data"
# Who may answer a request for a copy of a customer's data (PIPL) from its page: with the
# personal-data permission too, as the file holds every value unmasked (品牌管理员).
PERSONAL_EXPORT_PERMISSION = "console.export_personal_data"
ERASE_REASON_MAX_LENGTH = 500

# Who may export a customer list (导出): it writes an export record.
EXPORT_PERMISSION = "console.add_customerexport"


def may_export(request: HttpRequest) -> bool:
    return request.user.has_perm(EXPORT_PERMISSION)


# A bulk action names its customers in one statement; beyond this many, a segment is the tool
# (a dynamic one, or a static list filled over the API).
BULK_ACTION_LIMIT = 10_000


class TagChoiceForm(forms.Form):
    tag = forms.ModelChoiceField(
        label=_("tag"), queryset=Tag.objects.select_related("group").order_by("group__name", "name")
    )


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=_("reason"),
        required=False,
        max_length=ERASE_REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text=_("The request's reference, for the record; no personal data."),
    )
    confirm = forms.BooleanField(label=_("I understand that this cannot be undone."), required=True)


class StaticSegmentChoiceForm(forms.Form):
    segment = forms.ModelChoiceField(
        label=_("static segment"),
        queryset=Segment.objects.filter(kind=SegmentKind.STATIC).order_by("name"),
        help_text=_("Only static segments (lists) take customers by hand."),
    )


@admin.register(Customer)
class CustomerPageAdmin(CustomerAdmin):
    # The list shows and filters by what segmentation computed: lifecycle state and RFM tier
    # (one row per customer in segments_customermetrics, joined in the page's one query).
    list_display = [*CustomerAdmin.list_display[:3], "lifecycle_state", "rfm_tier"]
    list_display += CustomerAdmin.list_display[3:]
    list_filter = [
        ("metrics__lifecycle_state", admin.ChoicesFieldListFilter),
        ("metrics__rfm_tier", admin.ChoicesFieldListFilter),
        LifecycleMoveListFilter,
        *CustomerAdmin.list_filter,
    ]
    list_select_related = [*CustomerAdmin.list_select_related, "metrics"]
    actions = [*CustomerAdmin.actions, "tag_customers", "untag_customers", "add_to_segment"]
    inlines = [
        CustomerMetricsInline,
        CustomerPredictionInline,
        LifecycleTransitionInline,
        CustomerSegmentInline,
        *CustomerAdmin.inlines,
    ]
    change_list_template = "admin/console/customer_change_list.html"
    change_form_template = "admin/console/customer_change_form.html"
    # Sections of their own, each after the profile (see get_fieldsets).
    sections = {
        "recent_interactions": customer_sections.recent_interactions_title,
        "campaign_history": customer_sections.campaign_history_title,
        "recent_deliveries": campaigns_admin.recent_deliveries_title,
    }
    readonly_fields = [*CustomerAdmin.readonly_fields, *sections]
    recent_interactions = staticmethod(customer_sections.recent_interactions)
    campaign_history = staticmethod(customer_sections.campaign_history)
    recent_deliveries = staticmethod(campaigns_admin.recent_deliveries)

    @admin.display(description=_("lifecycle state"), ordering="metrics__lifecycle_state")
    def lifecycle_state(self, customer: Customer) -> str:
        metrics = getattr(customer, "metrics", None)
        return metrics.get_lifecycle_state_display() if metrics else "-"

    @admin.display(description=_("RFM tier"), ordering="metrics__rfm_tier")
    def rfm_tier(self, customer: Customer) -> str:
        metrics = getattr(customer, "metrics", None)
        return metrics.get_rfm_tier_display() if metrics and metrics.rfm_tier else "-"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The sections are shown below the profile, never in it.
        return [name for name in super().get_fields(request, obj) if name not in self.sections]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [
            *fieldsets,
            *((title(), {"fields": [name]}) for name, title in self.sections.items()),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        context = {
            "export_limit": format_count(EXPORT_ROW_LIMIT),
            "may_export": may_export(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        export = path(
            "export/<str:file_format>/",
            wrap(self.export_view),
            name="crm_customer_export",
        )
        personal_export = path(
            "<int:customer_id>/personal-data/",
            wrap(self.personal_export_view),
            name="crm_customer_personal_export",
        )
        erase = path("<int:customer_id>/erase/", wrap(self.erase_view), name="crm_customer_erase")
        return [export, personal_export, erase, *super().get_urls()]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> Any:
        context = {
            "may_export_personal_data": self._may_export_personal_data(request),
            "may_erase_personal_data": request.user.has_perm(ERASE_PERMISSION),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, context)

    def _may_export_personal_data(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request) and request.user.has_perms(
            [PERSONAL_DATA_PERMISSION, PERSONAL_EXPORT_PERMISSION]
        )

    def _visible_customer(self, request: HttpRequest, customer_id: int) -> Customer:
        """The customer as this user's list would show it (a scoped user sees only theirs)."""
        customer = self.get_object(request, str(customer_id))
        if customer is None:
            raise Http404
        return customer

    def personal_export_view(self, request: HttpRequest, customer_id: int) -> HttpResponseBase:
        """Everything held about the customer as a JSON file (PIPL: access and portability),
        for users who may see personal data; recorded and audited."""
        if not self._may_export_personal_data(request):
            raise PermissionDenied
        customer = self._visible_customer(request, customer_id)
        data = customer_personal_export(customer_id=customer.pk, actor=f"user:{request.user.pk}")
        response = JsonResponse(data, json_dumps_params={"ensure_ascii": False, "indent": 2})
        filename = f"customer-{customer.pk}-personal-data.json"
        response["Content-Disposition"] = content_disposition_header(True, filename) or ""
        return response

    def erase_view(self, request: HttpRequest, customer_id: int) -> HttpResponseBase:
        """The confirmation page of an erasure (what goes, what stays), then the erasure."""
        if not request.user.has_perm(ERASE_PERMISSION):
            raise PermissionDenied
        customer = self._visible_customer(request, customer_id)
        form = EraseForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            try:
                record = customer_erase(
                    customer_id=customer.pk,
                    actor=f"user:{request.user.pk}",
                    reason=form.cleaned_data["reason"],
                )
            except DomainError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext(
                        "The personal data of customer #%(id)d was erased; its orders stay, "
                        "without the person. Request record #%(record)d."
                    )
                    % {"id": customer_id, "record": record.pk},
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:crm_customer_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Erase personal data"),
            "customer": customer,
            "form": form,
        }
        return TemplateResponse(request, "admin/console/customer_erase.html", context)

    def export_view(self, request: HttpRequest, file_format: str) -> HttpResponseBase:
        """The list as filtered and searched (every page of it) as a CSV or .xlsx file, masked
        unless the user may see personal data; refused above EXPORT_ROW_LIMIT customers.
        Takes the list's own query string, so the list's filters decide the rows."""
        if file_format not in ExportFormat.values:
            raise Http404
        if not self.has_view_permission(request) or not may_export(request):
            raise PermissionDenied
        list_url = reverse("admin:crm_customer_changelist")
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseRedirect(f"{list_url}?{ERROR_FLAG}=1")
        # Exact up to one past the limit (the list's own count may be the planner's estimate).
        row_count = changelist.queryset[: EXPORT_ROW_LIMIT + 1].count()
        if row_count > EXPORT_ROW_LIMIT:
            self.message_user(
                request,
                gettext(
                    "The list holds %(count)s customers; an export takes at most %(limit)s."
                    " Narrow it with the filters on the right (lifecycle state, RFM tier, tag,"
                    " source channel…) or a search, then export again."
                )
                % {"count": format_count(row_count), "limit": format_count(EXPORT_ROW_LIMIT)},
                messages.ERROR,
            )
            return HttpResponseRedirect(list_url + changelist.get_query_string())
        is_unmasked = request.user.has_perm(PERSONAL_DATA_PERMISSION)
        customer_export_record(
            actor=f"user:{request.user.pk}",
            filters=_filters_description(changelist),
            query_string=changelist.get_query_string().removeprefix("?"),
            row_count=row_count,
            file_format=ExportFormat(file_format),
            is_unmasked=is_unmasked,
        )
        columns = customer_export_columns(may_see_personal_data=is_unmasked)
        rows = customer_export_values(changelist.queryset, may_see_personal_data=is_unmasked)
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        filename = f"{capfirst(str(Customer._meta.verbose_name_plural))}-{stamp}.{file_format}"
        if file_format == ExportFormat.CSV:
            response = StreamingHttpResponse(
                customer_export_csv(columns, rows), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = content_disposition_header(True, filename) or ""
            return response
        return FileResponse(
            customer_export_xlsx(columns, rows),
            as_attachment=True,
            filename=filename,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )

    def _bulk(
        self,
        request: HttpRequest,
        queryset: QuerySet[Customer],
        *,
        action: str,
        title: str | Promise,
        submit_label: str | Promise,
        form_class: type[forms.Form],
        apply: Callable[[list[int], Any], str],
    ) -> TemplateResponse | None:
        """An action that asks for one choice first: the page with the choice, then, once it
        is made, `apply(customer_ids, choice)` through the service, whose answer or refusal
        is the message shown on the list."""
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: BULK_ACTION_LIMIT + 1])
        if len(ids) > BULK_ACTION_LIMIT:
            self.message_user(
                request,
                _("Select at most %(limit)d customers, or use a segment for more.")
                % {"limit": BULK_ACTION_LIMIT},
                messages.ERROR,
            )
            return None
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                message = apply(ids, next(iter(form.cleaned_data.values())))
            except DomainError as refusal:
                self.message_user(request, refusal.message, messages.ERROR)
            else:
                self.message_user(request, message, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "form": form,
            "count": len(ids),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "submit_label": submit_label,
        }
        return TemplateResponse(request, "admin/console/customer_bulk_action.html", context)

    # Actions that write offered only to who may make the write (Django offers an action
    # without permissions to every viewer of the list: 数据分析 and 审计 read only).
    def has_tag_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.add_customertag")

    def has_untag_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.delete_customertag")

    def has_add_to_segment_permission(self, request: HttpRequest) -> bool:
        # A segment's size counts every customer: not for a user scoped to their own.
        return request.user.has_perm("segments.change_segment") and sees_all_customers(request)

    @admin.action(description=_("Tag the selected customers"), permissions=["tag"])
    def tag_customers(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        actor = f"user:{request.user.pk}"

        def apply(ids: list[int], tag: Tag) -> str:
            tags_assign(customer_ids=ids, tags=[tag], source=TagSource.MANUAL, actor=actor)
            return ngettext(
                "%(count)d customer tagged %(tag)s.",
                "%(count)d customers tagged %(tag)s.",
                len(ids),
            ) % {"count": len(ids), "tag": tag}

        return self._bulk(
            request,
            queryset,
            action="tag_customers",
            title=_("Tag customers"),
            submit_label=_("Tag them"),
            form_class=TagChoiceForm,
            apply=apply,
        )

    @admin.action(description=_("Remove a tag from the selected customers"), permissions=["untag"])
    def untag_customers(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        actor = f"user:{request.user.pk}"

        def apply(ids: list[int], tag: Tag) -> str:
            removed = tags_remove(customer_ids=ids, tags=[tag], actor=actor)
            return ngettext(
                "Tag %(tag)s removed from %(count)d customer.",
                "Tag %(tag)s removed from %(count)d customers.",
                removed,
            ) % {"count": removed, "tag": tag}

        return self._bulk(
            request,
            queryset,
            action="untag_customers",
            title=_("Remove a tag"),
            submit_label=_("Remove it"),
            form_class=TagChoiceForm,
            apply=apply,
        )

    @admin.action(
        description=_("Add the selected customers to a static segment"),
        permissions=["add_to_segment"],
    )
    def add_to_segment(
        self, request: HttpRequest, queryset: QuerySet[Customer]
    ) -> TemplateResponse | None:
        actor = f"user:{request.user.pk}"

        def apply(ids: list[int], segment: Segment) -> str:
            outcome = segment_members_change(segment_id=segment.pk, add=ids, actor=actor)
            return ngettext(
                "%(count)d customer added to %(segment)s, which now has %(size)d.",
                "%(count)d customers added to %(segment)s, which now has %(size)d.",
                outcome.entered,
            ) % {"count": outcome.entered, "segment": segment.name, "size": outcome.size}

        return self._bulk(
            request,
            queryset,
            action="add_to_segment",
            title=_("Add to a static segment"),
            submit_label=_("Add them"),
            form_class=StaticSegmentChoiceForm,
            apply=apply,
        )


def _filters_description(changelist: ChangeList) -> str:
    """The list's filters and search as the operator read them: "生命周期状态：沉睡；搜索：王"."""
    parts = []
    for spec in changelist.filter_specs:
        if not spec.used_parameters:  # type: ignore[attr-defined]
            continue
        chosen = [str(c["display"]) for c in spec.choices(changelist) if c["selected"]]
        parts.append(
            gettext("%(filter)s: %(chosen)s")
            % {"filter": spec.title, "chosen": pgettext("list separator", ", ").join(chosen)}
        )
    if changelist.query:
        parts.append(gettext("search: %(term)s") % {"term": changelist.query})
    return pgettext("filters separator", "; ").join(parts)


@admin.register(CustomerExport)
class CustomerExportAdmin(ActorLabelsAdmin, ReadOnlyAdmin):
    """Who exported which customer list: append-only, so not even deleted here."""

    list_display = [
        "exported_at",
        "actor_label",
        "file_format",
        "row_count",
        "is_unmasked",
        "filters",
    ]
    list_filter = ["file_format", "is_unmasked"]
    actor_fields = ("actor",)
    actor_label = actor_column("actor", _("exported by"))
    date_hierarchy = "exported_at"
    fields = readonly_fields = (
        "exported_at",
        "actor_label",
        "file_format",
        "row_count",
        "is_unmasked",
        "filters",
        "query_string",
    )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PrivacyRequest)
class PrivacyRequestAdmin(ActorLabelsAdmin, ReadOnlyAdmin):
    """The requests of people under PIPL answered here (exports and erasures): append-only,
    so not even deleted here."""

    list_display = [
        "requested_at_label",
        "kind",
        "customer_id",
        "requested_by_label",
        "completed_at_label",
        "reason",
    ]
    list_filter = ["kind", "requested_at"]
    search_fields = ["=customer_id"]
    search_help_text = _("A customer id.")
    actor_fields = ("requested_by",)
    requested_by_label = actor_column("requested_by", _("requested by"))
    date_hierarchy = "requested_at"
    fields = readonly_fields = (
        "kind",
        "customer_id",
        "requested_by_label",
        "requested_at_label",
        "completed_at_label",
        "reason",
        "outcome_counts",
    )

    @admin.display(description=_("requested at"), ordering="requested_at")
    def requested_at_label(self, record: PrivacyRequest) -> str:
        return business_time_label(record.requested_at)

    @admin.display(description=_("completed at"), ordering="completed_at")
    def completed_at_label(self, record: PrivacyRequest) -> str:
        return business_time_label(record.completed_at)

    @admin.display(description=_("outcome"))
    def outcome_counts(self, record: PrivacyRequest) -> str:
        """What was exported, or erased, kept and cleaned, in the audit trail's words."""
        if not record.outcome:
            return "-"
        action = (
            AuditAction.ERASE
            if record.kind == PrivacyRequestKind.ERASE
            else AuditAction.PERSONAL_EXPORT
        )
        return joined(privacy_count_lines(action, record.outcome), "<br>")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Segments ------------------------------------------------------------------------------

ERROR_INVALID_JSON = "invalid_json"


def _after(names: list[Any], anchor: str, name: str) -> list[Any]:
    """`names` with `name` right after `anchor`."""
    position = names.index(anchor) + 1
    return [*names[:position], name, *names[position:]]


@admin.register(Segment)
class SegmentPageAdmin(SegmentAdmin):
    """Segmentation's segment pages, with a link to each segment's portrait (人群画像) in its
    list row and on its page; the portrait page; and the portrait of a rule as JSON, for the
    builder (`POST portrait/` with `{"rule": ...}`), which draws it under its live preview."""

    change_form_template = "admin/console/segment_change_form.html"
    list_display = _after(SegmentAdmin.list_display, "members_link", "portrait_link")
    readonly_fields = _after(SegmentAdmin.readonly_fields, "members_link", "portrait_link")

    @admin.display(description=_("segment portrait"))
    def portrait_link(self, segment: Segment) -> str:
        if segment.pk is None:
            return "-"
        url = reverse("admin:segments_segment_portrait", args=[segment.pk])
        return format_html('<a href="{}">{}</a>', url, _("View portrait"))

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path(
                "portrait/",
                wrap(require_POST(self.rule_portrait_view)),
                name="segments_segment_rule_portrait",
            ),
            path(
                "<int:segment_id>/portrait/",
                wrap(self.portrait_view),
                name="segments_segment_portrait",
            ),
            *super().get_urls(),
        ]

    def portrait_view(self, request: HttpRequest, segment_id: int) -> TemplateResponse:
        segment = self.get_object(request, str(segment_id))
        if segment is None:
            raise Http404
        if not self.has_view_permission(request, segment):
            raise PermissionDenied
        portrait = portrait_context(segment_portrait(segment_id=segment.pk))
        refreshed = (
            gettext("Members as of %(time)s (%(zone)s)")
            % {
                "time": format_date(timezone.localtime(segment.refreshed_at), "Y-m-d H:i"),
                "zone": zone_label(),
            }
            if segment.refreshed_at
            else None
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Portrait of %(segment)s") % {"segment": segment.name},
            "segment": segment,
            "refreshed": refreshed,
            "portrait": portrait,
        }
        return TemplateResponse(request, "admin/console/segment_portrait.html", context)

    def rule_portrait_view(self, request: HttpRequest) -> JsonResponse:
        """The portrait of a rule (`{"rule": ...}`), as the page's data; a wrong body or rule
        answers 400 in the API's error shape."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            body = json.loads(request.body)
        except ValueError:
            return JsonResponse(
                error_body(ERROR_INVALID_JSON, gettext("The body is not JSON.")), status=400
            )
        if not isinstance(body, dict) or "rule" not in body:
            return JsonResponse(
                error_body(
                    ERROR_INVALID_JSON,
                    gettext("Send an object with the rule."),
                    {"rule": [gettext("This field is required.")]},
                ),
                status=400,
            )
        if found := json_error(body["rule"], max_bytes=None):
            where, message = found
            return JsonResponse(
                error_body(ERROR_INVALID_TEXT, message, {"rule": [f"{where}: {message}"]}),
                status=400,
            )
        try:
            portrait = rule_portrait(rule=body["rule"])
        except DomainError as refusal:
            return JsonResponse(
                error_body(refusal.code, refusal.message, refusal.detail),
                status=refusal.status_code,
            )
        return JsonResponse(portrait_context(portrait))
