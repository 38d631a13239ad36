"""Operator admin of segmentation: policy editors (each save is a new version), recomputation
runs (with "recompute now"), metrics and transitions, predictive model fits (quality, a
calibration chart, the cluster table, "fit now"), and the inlines the customer page (composed
in console.admin) shows of scores, lifecycle, predictions and segments. Every write goes
through a service."""

import json
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import RequestDataTooBig
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    JsonResponse,
)
from django.urls import path, reverse
from django.utils.dateparse import parse_date
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from core.admin import (
    ActorLabelsAdmin,
    CommonValuesListFilter,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    actor_column,
    actor_list_filter,
)
from core.api.errors import ERROR_NOT_FOUND, ERROR_PERMISSION_DENIED, error_body
from core.api.parsers import body_too_large_error
from core.errors import DomainError, NotFound, ValidationFailed
from core.json_body import json_decode
from core.validators import ERROR_INVALID_TEXT, json_error, text_error, validate_json_text
from crm.admin_scoping import AllCustomersAdmin, CustomerScopedAdmin
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
from segments.presenters.builder import builder_page_data, preview_body
from segments.presenters.lifecycle_moves import LIFECYCLE_MOVE_PARAMETER, lifecycle_move_parse
from segments.presenters.model_fits import fit_quality
from segments.rules import InvalidRule, RuleProblem, rule_check
from segments.rules.values import start_of_day
from segments.selectors import (
    RULE_REFERENCE_KINDS,
    cluster_descriptions,
    customers_moved,
    model_fit_in_use,
    rule_reference_options,
)
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
    segments_pin,
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
class RecomputeRunAdmin(AllCustomersAdmin, ActorLabelsAdmin, ServiceAdmin, ReadOnlyAdmin):
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
    list_filter = ["kind", "status", actor_list_filter("trigger", _("trigger"))]
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
class CustomerMetricsAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
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
    list_filter = [
        "lifecycle_state",
        "rfm_tier",
        ("r_score", CommonValuesListFilter),
        ("f_score", CommonValuesListFilter),
        ("m_score", CommonValuesListFilter),
    ]
    list_select_related = ["customer"]
    number_search_fields = ("customer_id",)
    search_help_text = _("Customer id.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(LifecycleTransition)
class LifecycleTransitionAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = ["id", "customer", "from_state", "to_state", "at", "recorded_at", "run_number"]
    list_filter = ["to_state", "from_state"]
    list_select_related = ["customer"]
    number_search_fields = ("customer_id",)
    search_help_text = _("Customer id.")

    @admin.display(description=_("recomputation run"), ordering="run_id")
    def run_number(self, transition: LifecycleTransition) -> str:
        # The run's number alone: naming the run would read one row per transition.
        return f"#{transition.run_id}" if transition.run_id else "—"

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LifecycleMoveListFilter(admin.SimpleListFilter):
    """For a customers list: the customers who moved from one lifecycle state to another
    since a business day (the overview's flow links here; the value's format is in
    segments.presenters.lifecycle_moves). A value that names no move is refused as the admin
    refuses any bad filter (back to the list with an error), never ignored."""

    title = _("lifecycle move")
    parameter_name = LIFECYCLE_MOVE_PARAMETER

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if not value:
            return []
        move = lifecycle_move_parse(value)
        if move is None:
            return [(value, gettext("Unknown move"))]
        label = gettext("%(from)s → %(to)s since %(day)s") % {
            "from": LifecycleState(move.from_state).label,
            "to": LifecycleState(move.to_state).label,
            "day": move.since.isoformat(),
        }
        return [(value, label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        move = lifecycle_move_parse(value)
        if move is None:
            raise IncorrectLookupParameters(value)
        moved = customers_moved(
            from_state=move.from_state, to_state=move.to_state, since=start_of_day(move.since)
        )
        return queryset.filter(pk__in=moved)


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
    """The rule is checked (with its path in the tree) before anything is saved; the builder
    marks each problem's place in the tree (`rule_problems`)."""

    class Meta:
        model = Segment
        fields = ["name", "description", "kind", "rule", "pinned"]
        widgets = {"rule": forms.Textarea(attrs={"rows": 14, "class": "segment-rule-json"})}
        labels = {"rule": _("targeting conditions"), "pinned": _("Pin to the overview")}
        help_texts = {
            "pinned": _(
                "A pinned segment's size over time is drawn on the overview; untick to unpin it."
            )
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule_problems: list[RuleProblem] = []

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
                    self.rule_problems = list(error.problems)
                    for problem in error.problems:
                        self.add_error("rule", f"{problem.path}: {problem.message}")
        return cleaned


class SizeSnapshotInline(ReadOnlyInline):
    model = SegmentSizeSnapshot
    fields = readonly_fields = ("at", "size", "entered", "exited", "rule_version")
    ordering = ["-at", "-id"]
    max_num = 30


# The builder's requests: a search is at most this long, a label lookup names at most as many
# rows as a rule's list may hold.
MAX_OPTION_SEARCH = 64
MAX_OPTION_IDS = 1000
ERROR_INVALID_REQUEST = "invalid_request"


def _refusal(error: DomainError) -> JsonResponse:
    body = error_body(error.code, error.message, error.detail)
    return JsonResponse(body, status=error.status_code)


class SegmentAdmin(AllCustomersAdmin, ServiceAdmin):
    """The segment form carries the builder (segments/static/segments/builder.js): the rule is
    picked from lists, previewed live through `builder_preview` (the service the API's preview
    uses), and submitted in the rule's textarea, which stays the builder's JSON view.
    Registered by the console (console.admin), which adds the portrait page."""

    form = SegmentForm
    change_form_template = "admin/segments/segment/change_form.html"
    created_by_label = actor_column("created_by", _("created by"))
    list_display = [
        "name",
        "kind",
        "member_count",
        "rule_version",
        "refreshed_at",
        "members_link",
        "refresh_error",
        "pinned",
    ]
    list_filter = ["kind", "pinned"]
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
    actions = ["refresh_now", "pin", "unpin"]

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
                pinned=data["pinned"] if "pinned" in form.changed_data else None,
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

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> Any:
        """A segment is pinned from its own page once it exists."""
        return ["pinned"] if obj is None else []

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> Any:
        form = context["adminform"].form
        context["builder"] = builder_page_data(
            segment_id=obj.pk if obj is not None else None,
            problems=getattr(form, "rule_problems", []),
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[Any]:
        return [
            path(
                "builder/preview/",
                self.admin_site.admin_view(self.builder_preview),
                name="segments_segment_builder_preview",
            ),
            path(
                "builder/options/<str:kind>/",
                self.admin_site.admin_view(self.builder_options),
                name="segments_segment_builder_options",
            ),
            *super().get_urls(),
        ]

    def may_build(self, request: HttpRequest) -> bool:
        """Whoever may write a segment's rule: add one, or change one."""
        return self.has_add_permission(request) or self.has_change_permission(request)

    def builder_preview(self, request: HttpRequest) -> HttpResponse:
        """POST `{"rule": ..., "segment": id or null}`: the rule's size, each top-level
        condition's count and sample customers, or 400 with the problems' paths."""
        if not self.may_build(request):
            return _refusal(PermissionRefused())
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            try:
                body = json_decode(request.body)
            except RequestDataTooBig:
                raise body_too_large_error() from None
            rule, segment_id = _preview_request(body)
            preview = segment_preview(rule=rule, segment_id=segment_id)
        except DomainError as error:
            return _refusal(error)
        return JsonResponse(preview_body(preview))

    def builder_options(self, request: HttpRequest, kind: str) -> HttpResponse:
        """GET `?q=<name>` or `?ids=1,2`: tags, tag groups, group chats, segments or staff
        members (by WeCom userid) to pick."""
        if not self.may_build(request):
            return _refusal(PermissionRefused())
        if kind not in RULE_REFERENCE_KINDS:
            return _refusal(NotFound(ERROR_NOT_FOUND, gettext("No such list.")))
        try:
            search, ids = _options_request(request.GET, keyed_by_text=kind == "staff")
        except DomainError as error:
            return _refusal(error)
        return JsonResponse({"results": rule_reference_options(kind, search=search, ids=ids)})

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        """The service refuses a segment another rule names."""
        segment_delete(segment_id=object_id, actor=f"user:{request.user.pk}")

    @admin.action(description=_("Refresh the selected segments now"), permissions=["change"])
    def refresh_now(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        segment_refresh_enqueue(ids)
        self.message_user(request, _("Refresh queued."), messages.SUCCESS)

    @admin.action(description=_("Pin to the overview"), permissions=["change"])
    def pin(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        segments_pin(segment_ids=ids, pinned=True, actor=f"user:{request.user.pk}")
        message = ngettext(
            "%(count)d segment pinned: the overview draws its size over time.",
            "%(count)d segments pinned: the overview draws their size over time.",
            len(ids),
        )
        self.message_user(request, message % {"count": len(ids)}, messages.SUCCESS)

    @admin.action(description=_("Unpin from the overview"), permissions=["change"])
    def unpin(self, request: HttpRequest, queryset: Any) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        segments_pin(segment_ids=ids, pinned=False, actor=f"user:{request.user.pk}")
        message = ngettext(
            "%(count)d segment unpinned from the overview.",
            "%(count)d segments unpinned from the overview.",
            len(ids),
        )
        self.message_user(request, message % {"count": len(ids)}, messages.SUCCESS)


class PermissionRefused(DomainError):
    status_code = 403

    def __init__(self) -> None:
        super().__init__(
            ERROR_PERMISSION_DENIED, gettext("Only those who may edit segments may do this.")
        )


def _preview_request(body: Any) -> tuple[Any, int | None]:
    """The rule and the segment it is written for, from the builder's preview request."""
    if not isinstance(body, dict) or "rule" not in body:
        raise ValidationFailed(
            ERROR_INVALID_REQUEST,
            gettext('Expected {"rule": ..., "segment": ...}.'),
            detail={"rule": [gettext("This field is required.")]},
        )
    segment_id = body.get("segment")
    if segment_id is not None and (
        isinstance(segment_id, bool) or not isinstance(segment_id, int) or segment_id < 1
    ):
        raise ValidationFailed(
            ERROR_INVALID_REQUEST,
            gettext("The segment must be an id."),
            detail={"segment": [gettext("Expected an id (a positive whole number).")]},
        )
    rule = body["rule"]
    # Before the rule meets the compiler or PostgreSQL, as the form's check does.
    found = json_error(rule, max_bytes=None)
    if found is not None:
        _where, message = found
        raise ValidationFailed(ERROR_INVALID_TEXT, message, detail={"rule": [message]})
    return rule, segment_id


def _is_id(part: str, *, keyed_by_text: bool) -> bool:
    if keyed_by_text:
        return len(part) <= MAX_OPTION_SEARCH and text_error(part) is None
    return part.isascii() and part.isdigit() and len(part) < 19  # within a bigint


def _options_request(query: Any, *, keyed_by_text: bool) -> tuple[str, list[int | str]]:
    """The search and the ids (texts for rows keyed by text: staff members' userids)."""
    search = str(query.get("q", "")).strip()
    if len(search) > MAX_OPTION_SEARCH or text_error(search):
        raise ValidationFailed(
            ERROR_INVALID_REQUEST,
            gettext("Search with at most %(maximum)s characters of text.")
            % {"maximum": MAX_OPTION_SEARCH},
            detail={"q": [gettext("Too long or not text.")]},
        )
    raw_ids = [part for part in str(query.get("ids", "")).split(",") if part]
    if len(raw_ids) > MAX_OPTION_IDS or not all(
        _is_id(part, keyed_by_text=keyed_by_text) for part in raw_ids
    ):
        raise ValidationFailed(
            ERROR_INVALID_REQUEST,
            gettext("Give the ids separated by commas."),
            detail={"ids": [gettext("Expected ids separated by commas.")]},
        )
    return search, [part if keyed_by_text else int(part) for part in raw_ids]


@admin.register(SegmentMembership)
class SegmentMembershipAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = ["segment", "customer", "rule_version", "entered_at"]
    list_filter = ["segment"]
    list_select_related = ["segment", "customer"]
    number_search_fields = ("customer_id",)
    search_help_text = _("Customer id.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --- Predictive models ---------------------------------------------------------------------


@admin.register(ModelFit)
class ModelFitAdmin(AllCustomersAdmin, ActorLabelsAdmin, ServiceAdmin, ReadOnlyAdmin):
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
    list_filter = ["name", "status", actor_list_filter("trigger", _("trigger"))]
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
        "seed",
        "started_at",
        "finished_at",
        "scored_at",
        "scored_customers",
        "technical_details",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("artifact")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of what customers were scored with

    @admin.display(description=_("duration (s)"))
    def duration(self, fit: ModelFit) -> str:
        seconds = fit.duration_seconds
        return "-" if seconds is None else f"{seconds:.1f}"

    @admin.display(description=_("technical details"))
    def technical_details(self, fit: ModelFit) -> str:
        """The features and fitted parameters as recorded, folded away: the page's tables and
        charts say the same for operators."""
        recorded = {"features": fit.features, "parameters": fit.parameters}
        return format_html(
            "<details><summary>{}</summary><pre>{}</pre></details>",
            gettext("Show the recorded features and parameters (JSON)"),
            json.dumps(recorded, ensure_ascii=False, indent=2),
        )

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
