"""Operator admin of segmentation: policy editors (each save is a new version), recomputation
runs (with "recompute now"), metrics and transitions, predictive model fits (quality, a
calibration chart, the cluster table, "fit now"), and the inlines the customer page (composed
in console.admin) shows of scores, lifecycle, predictions and segments. Every write goes
through a service."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.dateparse import parse_date
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.admin import (
    ActorLabelsAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    actor_column,
)
from core.errors import DomainError, ValidationFailed
from core.validators import validate_json_text
from segments.models import (
    BackfillCount,
    CustomerMetrics,
    CustomerPrediction,
    LifecyclePolicy,
    LifecycleState,
    LifecycleTransition,
    ModelFit,
    ModelFitStatus,
    ModelName,
    PolicyBase,
    RecomputeKind,
    RecomputeRun,
    RfmPolicy,
    RfmTier,
    Segment,
    SegmentKind,
    SegmentMembership,
    SegmentSizeSnapshot,
)
from segments.presenters.model_fits import fit_quality
from segments.rules import InvalidRule, rule_check
from segments.selectors import cluster_descriptions, model_fit_in_use
from segments.services.fits import fit_reason, models_fit_enqueue
from segments.services.policies import (
    LIFECYCLE_FIELDS,
    RFM_FIELDS,
    lifecycle_policy_active,
    lifecycle_policy_update,
    rfm_policy_active,
    rfm_policy_update,
)
from segments.services.recompute import recompute_check, recompute_enqueue
from segments.services.segments import (
    segment_create,
    segment_delete,
    segment_from_cluster,
    segment_preview,
    segment_refresh_enqueue,
    segment_update,
)


class PolicyAdmin(ActorLabelsAdmin, ServiceAdmin):
    """Versions are never edited: "add" starts from the active version's values and saves a
    new active version; old versions stay readable for the runs that used them."""

    policy_fields: tuple[str, ...] = ()
    active: Callable[[], PolicyBase]
    update: Callable[..., PolicyBase]  # (changes=, actor=) -> the active version
    list_display = ["version", "is_active", "created_at", "created_by_label"]
    actor_fields = ("created_by",)
    created_by_label = actor_column("created_by", _("created by"))
    ordering = ["-version"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        meta = ["version", "is_active", "created_at", "created_by_label"]
        return [*self.policy_fields, *(meta if obj is not None else [])]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return []
        return [*self.policy_fields, "version", "is_active", "created_at", "created_by_label"]

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
        "created_by_label",
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
        "created_by_label",
    ]
    active = staticmethod(lifecycle_policy_active)
    update = staticmethod(lifecycle_policy_update)


@admin.register(RecomputeRun)
class RecomputeRunAdmin(ActorLabelsAdmin, ServiceAdmin, ReadOnlyAdmin):
    change_list_template = "admin/segments/recomputerun/change_list.html"
    actor_fields = ("trigger",)
    trigger_label = actor_column("trigger", _("trigger"))
    list_display = [
        "id",
        "kind",
        "trigger_label",
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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [*super().get_readonly_fields(request, obj), "backfill_figures"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what ran; sweeps take their breakpoints from it

    @admin.display(description=_("customers by lifecycle state and RFM tier"))
    def backfill_figures(self, run: RecomputeRun) -> str:
        """A backfill's figures as a table: lifecycle states down, RFM tiers across."""
        if run.kind != RecomputeKind.BACKFILL:
            return gettext("Only a backfill records its figures; see the current ones.")
        cells = {
            (count.lifecycle_state, count.rfm_tier): count.customers
            for count in BackfillCount.objects.filter(run=run)
        }
        tiers: list[tuple[str | None, Any]] = [*RfmTier.choices, (None, _("no tier"))]
        header = format_html_join("", "<th>{}</th>", ((label,) for _tier, label in tiers))
        rows = format_html_join(
            "",
            "<tr><th>{}</th>{}</tr>",
            (
                (
                    label,
                    format_html_join(
                        "", "<td>{}</td>", ((cells.get((state, tier), 0),) for tier, _l in tiers)
                    ),
                )
                for state, label in LifecycleState.choices
            ),
        )
        return format_html(
            '<table class="backfill-figures"><thead><tr><th></th>{}</tr></thead>'
            "<tbody>{}</tbody></table>",
            header,
            rows,
        )

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
        text = str(request.POST.get("as_of") or "").strip()
        try:
            as_of = parse_date(text) if text else None
        except ValueError:  # well formed, but no such day
            as_of = None
        if text and as_of is None:
            self.message_user(request, _("Give the date as YYYY-MM-DD."), messages.ERROR)
            return HttpResponseRedirect(changelist)
        try:
            is_backfill = recompute_check(as_of=as_of, everyone=True)
        except ValidationFailed as refusal:
            self.message_refusal(request, refusal)
            return HttpResponseRedirect(changelist)
        recompute_enqueue(trigger=f"admin:user:{request.user.pk}", as_of=as_of)
        if is_backfill:
            message = gettext(
                "A backfill as of %(date)s is queued: its figures are recorded apart, and the "
                "current scores, lifecycle transitions and segments do not change."
            ) % {"date": as_of}
        else:
            message = gettext("A full recomputation is queued.")
        self.message_user(request, message, messages.SUCCESS)
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
    list_display = ["id", "customer", "from_state", "to_state", "at", "recorded_at", "run_number"]
    list_filter = ["to_state", "from_state"]
    list_select_related = ["customer"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id.")
    show_full_result_count = False

    @admin.display(description=_("recomputation run"), ordering="run_id")
    def run_number(self, transition: LifecycleTransition) -> str:
        # The run's number alone: naming the run would read one row per transition.
        return f"#{transition.run_id}" if transition.run_id else "—"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# The customer page's sections of this app: console.admin composes them with the CRM's page.


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


class CustomerPredictionInline(ReadOnlyInline):
    model = CustomerPrediction
    verbose_name = verbose_name_plural = _("predictions")
    fields = readonly_fields = (
        "predicted_value",
        "expected_purchases",
        "p_alive",
        "churn_risk",
        "cluster",
        "cluster_description",
        "scored_at",
    )

    @admin.display(description=_("cluster description"))
    def cluster_description(self, prediction: CustomerPrediction) -> str:
        if prediction.cluster is None:
            return "-"
        clustering = model_fit_in_use(ModelName.BEHAVIOUR_CLUSTERS)
        return cluster_descriptions(clustering).get(prediction.cluster, "-")


class SegmentForm(forms.ModelForm):
    """The rule is checked (with its path in the tree) before anything is saved."""

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "rule"]

    def clean_rule(self) -> Any:
        rule = self.cleaned_data.get("rule")
        validate_json_text(rule)  # before the rule meets the compiler or PostgreSQL
        return rule

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("kind") == SegmentKind.DYNAMIC and "rule" not in self.errors:
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


class SegmentAdmin(ServiceAdmin):
    """Registered by the console (console.admin), which adds the portrait page."""

    form = SegmentForm
    created_by_label = actor_column("created_by", _("created by"))
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
        "created_by_label",
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

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        """The service refuses a segment another rule names."""
        segment_delete(segment_id=object_id, actor=f"user:{request.user.pk}")

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


# --- Predictive models ---------------------------------------------------------------------


@admin.register(ModelFit)
class ModelFitAdmin(ActorLabelsAdmin, ServiceAdmin, ReadOnlyAdmin):
    actor_fields = ("trigger",)
    trigger_label = actor_column("trigger", _("trigger"))
    change_list_template = "admin/segments/modelfit/change_list.html"
    change_form_template = "admin/segments/modelfit/change_form.html"
    list_display = [
        "name",
        "version",
        "status",
        "as_of",
        "trigger_label",
        "training_rows",
        "quality",
        "started_at",
        "duration",
        "scored_at",
    ]
    list_filter = ["name", "status", "trigger"]
    fields = readonly_fields = (
        "name",
        "version",
        "status",
        "why_not_fitted",
        "trigger_label",
        "as_of",
        "training_start",
        "training_end",
        "training_rows",
        "features",
        "parameters",
        "seed",
        "started_at",
        "finished_at",
        "scored_at",
        "scored_customers",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("artifact")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what customers were scored with

    @admin.display(description=_("duration (s)"))
    def duration(self, fit: ModelFit) -> str:
        seconds = fit.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    @admin.display(description=_("why not fitted"))
    def why_not_fitted(self, fit: ModelFit) -> str:
        return fit_reason(fit) or "-"

    @admin.display(description=_("quality"))
    def quality(self, fit: ModelFit) -> str:
        metrics = fit.metrics
        if fit.name == ModelName.CHURN_RISK and "model" in metrics:
            return _("ROC AUC %(model)s (recency only: %(baseline)s)") % {
                "model": metrics["model"]["roc_auc"],
                "baseline": metrics["recency_baseline"]["roc_auc"],
            }
        if fit.name == ModelName.LIFETIME_VALUE and "holdout" in metrics:
            return _("held out: %(predicted)s purchases expected, %(actual)s made") % {
                "predicted": metrics["holdout"]["predicted_purchases"],
                "actual": metrics["holdout"]["actual_purchases"],
            }
        if fit.name == ModelName.BEHAVIOUR_CLUSTERS and fit.status == ModelFitStatus.FITTED:
            k = fit.parameters.get("k")
            return _("k = %(k)s, silhouette %(silhouette)s") % {
                "k": k,
                "silhouette": metrics.get("silhouette", {}).get(str(k)),
            }
        return "-"

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        fit = self.get_object(request, object_id)
        context = {**(extra_context or {}), **(fit_quality(fit) if fit is not None else {})}
        return super().change_view(request, object_id, form_url, extra_context=context)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "fit-now/",
                self.admin_site.admin_view(self.fit_now),
                name="segments_modelfit_fit_now",
            ),
            path(
                "<int:fit_id>/clusters/<int:number>/segment/",
                self.admin_site.admin_view(self.cluster_segment),
                name="segments_modelfit_cluster_segment",
            ),
            *super().get_urls(),
        ]

    def fit_now(self, request: HttpRequest) -> HttpResponse:
        changelist = reverse("admin:segments_modelfit_changelist")
        if request.method != "POST" or not request.user.has_perm("segments.request_fit"):
            return HttpResponseRedirect(changelist)
        models_fit_enqueue(trigger=f"admin:user:{request.user.pk}")
        self.message_user(
            request,
            _("A fit of every model is queued; customers are scored after it."),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(changelist)

    def cluster_segment(self, request: HttpRequest, fit_id: int, number: int) -> HttpResponse:
        page = reverse("admin:segments_modelfit_change", args=[fit_id])
        if request.method != "POST" or not request.user.has_perm("segments.add_segment"):
            return HttpResponseRedirect(page)
        try:
            segment = segment_from_cluster(
                fit_id=fit_id,
                number=number,
                name=str(request.POST.get("name", "")).strip(),
                actor=f"admin:user:{request.user.pk}",
            )
        except DomainError as refusal:
            self.message_refusal(request, refusal)
            return HttpResponseRedirect(page)
        self.message_user(
            request,
            _("Segment “%(name)s” created with %(size)s customers.")
            % {"name": segment.name, "size": segment.member_count},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:segments_segment_change", args=[segment.pk]))
