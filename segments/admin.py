"""Operator admin of segmentation: policy editors (each save is a new version), recomputation
runs (with "recompute now"), metrics and transitions, and the customer page's scores. Every
write goes through a service."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm.admin import CustomerAdmin, ReadOnlyAdmin, ReadOnlyInline
from crm.errors import DomainError
from crm.models import Customer
from segments.models import (
    CustomerMetrics,
    LifecyclePolicy,
    LifecycleTransition,
    PolicyBase,
    RecomputeRun,
    RfmPolicy,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentSizeSnapshot,
)
from segments.rules import InvalidRule, rule_check
from segments.services.policies import (
    LIFECYCLE_FIELDS,
    RFM_FIELDS,
    lifecycle_policy_active,
    lifecycle_policy_update,
    rfm_policy_active,
    rfm_policy_update,
)
from segments.services.recompute import recompute_enqueue
from segments.services.segments import (
    segment_create,
    segment_delete,
    segment_preview,
    segment_refresh_enqueue,
    segment_update,
)


class PolicyAdmin(admin.ModelAdmin):
    """Versions are never edited: "add" starts from the active version's values and saves a
    new active version; old versions stay readable for the runs that used them."""

    policy_fields: tuple[str, ...] = ()
    active: Callable[[], PolicyBase]
    update: Callable[..., PolicyBase]  # (changes=, actor=) -> the active version
    list_display = ["version", "is_active", "created_at", "created_by"]
    ordering = ["-version"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        meta = ["version", "is_active", "created_at", "created_by"]
        return [*self.policy_fields, *(meta if obj is not None else [])]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [*self.policy_fields, "version", "is_active", "created_at", "created_by"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        active = type(self).active()
        return {field: getattr(active, field) for field in self.policy_fields}

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        changes = {field: form.cleaned_data[field] for field in self.policy_fields}
        before = type(self).active().version
        policy = type(self).update(changes=changes, actor=f"user:{request.user.pk}")
        obj.pk = policy.pk  # the response redirects to the version written
        if policy.version != before:
            self.message_user(
                request,
                _("Version %(version)d is active; a full recomputation is queued.")
                % {"version": policy.version},
                messages.SUCCESS,
            )

    def add_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().add_view(request, *args, **kwargs)
        except DomainError as error:
            details = "; ".join(
                f"{field}: {' '.join(map(str, problems))}"
                for field, problems in error.detail.items()
            )
            self.message_user(request, f"{error.message} {details}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


@admin.register(RfmPolicy)
class RfmPolicyAdmin(PolicyAdmin):
    policy_fields = RFM_FIELDS
    list_display = [
        "version",
        "is_active",
        "lookback_days",
        "scoring_method",
        "high_score_threshold",
        "created_at",
        "created_by",
    ]
    active = staticmethod(rfm_policy_active)
    update = staticmethod(rfm_policy_update)


@admin.register(LifecyclePolicy)
class LifecyclePolicyAdmin(PolicyAdmin):
    policy_fields = LIFECYCLE_FIELDS
    list_display = [
        "version",
        "is_active",
        "new_days",
        "active_days",
        "sleeping_days",
        "reactivated_days",
        "created_at",
        "created_by",
    ]
    active = staticmethod(lifecycle_policy_active)
    update = staticmethod(lifecycle_policy_update)


@admin.register(RecomputeRun)
class RecomputeRunAdmin(ReadOnlyAdmin):
    change_list_template = "admin/segments/recomputerun/change_list.html"
    list_display = [
        "id",
        "kind",
        "trigger",
        "as_of",
        "status",
        "started_at",
        "duration",
        "customers_processed",
        "rows_changed",
        "transitions_written",
        "error",
    ]
    list_filter = ["kind", "status", "trigger"]
    list_select_related = ["rfm_policy", "lifecycle_policy"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what ran; sweeps take their breakpoints from it

    @admin.display(description=_("duration (s)"))
    def duration(self, run: RecomputeRun) -> str:
        seconds = run.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    def get_urls(self) -> list[Any]:
        return [
            path(
                "recompute-now/",
                self.admin_site.admin_view(self.recompute_now),
                name="segments_recomputerun_recompute_now",
            ),
            *super().get_urls(),
        ]

    def recompute_now(self, request: HttpRequest) -> HttpResponse:
        changelist = reverse("admin:segments_recomputerun_changelist")
        if request.method != "POST" or not request.user.has_perm("segments.request_recompute"):
            return HttpResponseRedirect(changelist)
        recompute_enqueue(trigger=f"admin:user:{request.user.pk}")
        self.message_user(request, _("A full recomputation is queued."), messages.SUCCESS)
        return HttpResponseRedirect(changelist)


@admin.register(CustomerMetrics)
class CustomerMetricsAdmin(ReadOnlyAdmin):
    list_display = [
        "customer",
        "lifecycle_state",
        "lifecycle_since",
        "rfm_tier",
        "r_score",
        "f_score",
        "m_score",
        "last_paid_at",
        "lifetime_orders",
        "lifetime_net_spend",
    ]
    list_filter = ["lifecycle_state", "rfm_tier", "r_score", "f_score", "m_score"]
    list_select_related = ["customer"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id.")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LifecycleTransition)
class LifecycleTransitionAdmin(ReadOnlyAdmin):
    list_display = ["id", "customer", "from_state", "to_state", "at", "recorded_at", "run_id"]
    list_filter = ["to_state", "from_state"]
    list_select_related = ["customer"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id.")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CustomerMetricsInline(ReadOnlyInline):
    model = CustomerMetrics
    verbose_name = verbose_name_plural = _("scores and lifecycle")
    fields = readonly_fields = (
        "lifecycle_state",
        "lifecycle_since",
        "previous_lifecycle_state",
        "rfm_tier",
        "r_score",
        "f_score",
        "m_score",
        "orders_in_window",
        "net_spend_in_window",
        "lifetime_orders",
        "lifetime_net_spend",
        "avg_order_value",
        "avg_days_between_orders",
        "first_paid_at",
        "last_paid_at",
        "changed_at",
    )


class LifecycleTransitionInline(ReadOnlyInline):
    model = LifecycleTransition
    fields = readonly_fields = ("from_state", "to_state", "at", "recorded_at")
    ordering = ["-at", "-id"]


class CustomerSegmentInline(ReadOnlyInline):
    model = SegmentMembership
    verbose_name_plural = _("segments")
    fields = readonly_fields = ("segment", "rule_version", "entered_at")

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("segment")


class CustomerWithScoresAdmin(CustomerAdmin):
    """The CRM's customer page with the scores, lifecycle, transitions and segments of this
    app."""

    inlines = [
        CustomerMetricsInline,
        LifecycleTransitionInline,
        CustomerSegmentInline,
        *CustomerAdmin.inlines,
    ]


admin.site.unregister(Customer)
admin.site.register(Customer, CustomerWithScoresAdmin)


class SegmentForm(forms.ModelForm):
    """The rule is checked (with its path in the tree) before anything is saved."""

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "rule"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("kind") == SegmentKind.DYNAMIC:
            rule = cleaned.get("rule")
            if rule is None:
                self.add_error("rule", _("A dynamic segment needs a rule."))
            else:
                try:
                    rule_check(rule, segment_id=self.instance.pk)
                except InvalidRule as error:
                    for problem in error.problems:
                        self.add_error("rule", f"{problem.path}: {problem.message}")
        return cleaned


class SizeSnapshotInline(ReadOnlyInline):
    model = SegmentSizeSnapshot
    fields = readonly_fields = ("at", "size", "entered", "exited", "rule_version")
    ordering = ["-at", "-id"]
    max_num = 30


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    list_display = [
        "name",
        "kind",
        "member_count",
        "rule_version",
        "refreshed_at",
        "members_link",
        "refresh_error",
    ]
    list_filter = ["kind"]
    search_fields = ["name"]
    readonly_fields = [
        "preview_size",
        "member_count",
        "rule_version",
        "refreshed_at",
        "members_link",
        "refresh_error",
        "created_by",
        "created_at",
    ]
    inlines = [SizeSnapshotInline]
    actions = ["refresh_now"]

    @admin.display(description=_("size if refreshed now"))
    def preview_size(self, segment: Segment) -> str:
        if segment.pk is None or segment.kind != SegmentKind.DYNAMIC or segment.rule is None:
            return "-"
        try:
            return str(segment_preview(rule=segment.rule).size)
        except DomainError as error:
            return error.message

    @admin.display(description=_("members"))
    def members_link(self, segment: Segment) -> str:
        if segment.pk is None:
            return "-"
        url = reverse("admin:segments_segmentmembership_changelist")
        return format_html(
            '<a href="{}?segment__id__exact={}">{}</a>', url, segment.pk, _("member list")
        )

    def save_model(self, request: HttpRequest, obj: Segment, form: Any, change: bool) -> None:
        actor = f"user:{request.user.pk}"
        data = form.cleaned_data
        if change:
            saved = segment_update(
                segment_id=obj.pk,
                name=data["name"],
                description=data["description"],
                rule=data["rule"] if obj.kind == SegmentKind.DYNAMIC else None,
                actor=actor,
            )
        else:
            saved = segment_create(
                name=data["name"],
                kind=data["kind"],
                rule=data["rule"],
                description=data["description"],
                actor=actor,
            )
        obj.pk = saved.pk

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*self.readonly_fields, "kind"] if obj is not None else self.readonly_fields

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        self.delete_queryset(request, Segment.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        """Through the service, which refuses a segment another rule names."""
        for segment_id in queryset.values_list("pk", flat=True):
            try:
                segment_delete(segment_id=segment_id, actor=f"user:{request.user.pk}")
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)

    @admin.action(description=_("Refresh the selected segments now"))
    def refresh_now(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        segment_refresh_enqueue(ids)
        self.message_user(request, _("Refresh queued."), messages.SUCCESS)


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(ReadOnlyAdmin):
    list_display = ["segment", "customer", "rule_version", "entered_at"]
    list_filter = ["segment"]
    list_select_related = ["segment", "customer"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id.")
    show_full_result_count = False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
