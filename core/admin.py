"""Admin pieces every app shares: read-only bases, the site's titles, `ServiceAdmin`, the
one way a service's refusal reaches an operator, and `EstimatedCountPaginator`, which keeps a
change list over millions of rows from counting them all; and the integration API's keys:
created with their secret shown once, revoked, never edited."""

import json
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast

from axes.admin import AccessAttemptAdmin
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import NON_FIELD_ERRORS, ImproperlyConfigured
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _

from core import (
    beat_admin,  # noqa: F401 - replaces django-celery-beat's admins
    otp_admin,  # noqa: F401 - replaces django-otp's TOTP devices' admin
)
from core.actors import actor_label, actor_labels
from core.api_key_owners import owner_choices, owner_names
from core.audit_display import audit_detail_lines, field_label, joined, staff_member_ids
from core.business_time import business_time_label
from core.errors import DomainError
from core.models import ApiKey, ApiKeyUsage, AuditAction, AuditEvent
from core.services.api_keys import SCOPES, api_key_create, api_key_revoke, scope_label

# django-axes' lockout column (登录失败记录) has no label of its own: Django would show "Status".
AccessAttemptAdmin.status.short_description = _("status")  # type: ignore[attr-defined]

admin.site.site_header = _("Private-domain CRM")
admin.site.site_title = _("Private-domain CRM")
admin.site.index_title = _("Operations")
# The admin is the site: no "view site" link (the root redirects here).
admin.site.site_url = None


# Up to this many rows a change list counts exactly: reading them costs a few milliseconds.
EXACT_COUNT_LIMIT = 10_000
LARGEST_ID = 2**63 - 1  # bigint


class EstimatedCount(int):
    """A row count the planner estimated: an int for the paginator's arithmetic, shown to the
    operator as approximate (约 1,230,000) wherever the admin prints it."""

    def __str__(self) -> str:
        return gettext("about %(count)s") % {"count": number_format(int(self), force_grouping=True)}


def _significant(value: int, digits: int = 3) -> int:
    """`value` rounded to `digits` significant digits: an estimate should not look exact."""
    return int(float(f"{value:.{digits - 1}e}"))


def estimated_count(rows: int) -> EstimatedCount:
    """An estimate of a count known to exceed EXACT_COUNT_LIMIT, as shown."""
    return EstimatedCount(_significant(max(rows, EXACT_COUNT_LIMIT + 1)))


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to EXACT_COUNT_LIMIT rows (a count bounded by a LIMIT, so it never
    reads more), and above that answers PostgreSQL's estimate of the list's rows (EXPLAIN,
    which reads the table's statistics, never its rows) as an EstimatedCount. An exact
    count(*) over ten million orders takes seconds; an operator paging through them needs to
    know "about how many", not the last digit."""

    @cached_property
    def count(self) -> int:
        queryset = cast(QuerySet[Any], self.object_list)  # a change list's, never a list
        bounded = queryset[: EXACT_COUNT_LIMIT + 1].count()
        if bounded <= EXACT_COUNT_LIMIT:
            return bounded
        return estimated_count(_planner_rows(queryset))


def _planner_rows(queryset: QuerySet[Any]) -> int:
    sql, params = queryset.order_by().query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class LargeListAdmin(admin.ModelAdmin):
    """A change list that may hold millions of rows: estimated counts above
    EXACT_COUNT_LIMIT, no second count of the unfiltered table under a search or filter, and
    searches by number that an index serves."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    # Fields searched by number (a customer's id), instead of `search_fields`: compared as
    # integers, so that their index serves them (the admin's `=customer__id` compares texts,
    # UPPER(customer_id::text), and reads every row); a term that is no number finds nothing.
    number_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request: HttpRequest) -> Any:
        return self.number_search_fields or super().get_search_fields(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if not self.number_search_fields:
            return super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return queryset, False
        if not term.isdigit() or int(term) > LARGEST_ID:
            return queryset.none(), False
        condition = Q.create(
            [(name, int(term)) for name in self.number_search_fields], connector=Q.OR
        )
        return queryset.filter(condition), False


class CommonValuesListFilter(admin.AllValuesFieldListFilter):
    """The values of a column without choices (an order's source, a score), listed from the
    table's statistics (its most common values, as of the last ANALYZE) once the table holds
    more than EXACT_COUNT_LIMIT rows: Django's SELECT DISTINCT would read every row of it on
    every page. A value too rare to be among them is not offered (it can still be filtered by
    its link). A smaller table, or one never analysed, is read."""

    def __init__(
        self,
        field: Any,
        request: HttpRequest,
        params: Any,
        model: Any,
        model_admin: Any,
        field_path: str,
    ) -> None:
        super().__init__(field, request, params, model, model_admin, field_path)
        common = _common_values(model._meta.db_table, field.column)
        if common is not None:
            self.lookup_choices = sorted({field.to_python(value) for value in common})  # type: ignore[assignment]


def _common_values(table: str, column: str) -> list[str] | None:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            """
            SELECT s.most_common_vals::text::text[]
            FROM pg_class c
            JOIN pg_stats s ON s.schemaname = current_schema() AND s.tablename = c.relname
            WHERE c.oid = to_regclass(%s) AND s.attname = %s AND c.reltuples > %s
            """,
            [table, column, EXACT_COUNT_LIMIT],
        )
        row = cursor.fetchone()
    return None if row is None else list(row[0] or [])


def actor_column(field: str, description: Any) -> Any:
    """An admin column (or read-only field) showing the actor code in `field` as a name (see
    core.actors): from the labels ActorLabelsAdmin resolved for the page, else on its own."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: admin.ModelAdmin, obj: Any) -> str:
        code = getattr(obj, field) or ""
        labels = getattr(obj, "_actor_labels", None) or {}
        return labels[code] if code in labels else actor_label(code)

    column.__name__ = f"{field}_label"
    return column


def actor_list_filter(field: str, title: Any) -> type[admin.SimpleListFilter]:
    """A list filter on the actor code in `field`, each choice named as `actor_column` shows it
    (codes of the same person, `user:7` and `admin:user:7`, are one choice). Reads the distinct
    codes of the whole table: for the small tables of runs and fits, not for a ledger."""

    class ActorListFilter(admin.SimpleListFilter):
        parameter_name = field

        def __init__(self, request: HttpRequest, params: Any, model: Any, model_admin: Any):
            codes = model._default_manager.order_by().values_list(field, flat=True).distinct()
            self.labels = actor_labels(codes)
            super().__init__(request, params, model, model_admin)

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            return [(label, label) for label in sorted(set(self.labels.values()))]

        def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
            if self.value() is None:
                return queryset
            chosen = [code for code, label in self.labels.items() if label == self.value()]
            return queryset.filter(**{f"{field}__in": chosen})

    ActorListFilter.title = title
    return ActorListFilter


class ActorLabelsAdmin(LargeListAdmin):
    """Resolves the actor codes of a change list's page in one query, so that `actor_column`
    columns cost nothing per row."""

    actor_fields: tuple[str, ...] = ()

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates the page's queryset once, as cached
        labels = actor_labels(
            getattr(row, field) or "" for row in rows for field in self.actor_fields
        )
        for row in rows:
            row._actor_labels = labels
        return changelist


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False
    classes = ["readonly-inline"]

    class Media:
        css = {"all": ["core/readonly_inline.css"]}

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(LargeListAdmin):
    """Data that arrives from other systems: operators look, integrations write. Deleting
    stays with the usual permission, so that erasing a customer (PIPL) can take it along."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class NeverEditedAdmin:
    """A mixin for records nobody adds, changes or deletes in the admin, superusers included,
    and with no actions: the audit trail and the API keys' use it counts."""

    actions: Any = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# What a service refused on the first attempt to save a change form; set around the second
# attempt, which shows the form again with it (see ServiceAdmin.changeform_view). A context
# variable, so concurrent requests never see each other's.
_refusal: ContextVar[DomainError | None] = ContextVar("admin_service_refusal", default=None)


def _problem_text(problem: Any) -> str:
    """One message of a refusal's detail: a text, or a place and its message (as a rule's
    problems are given)."""
    if isinstance(problem, Mapping) and "path" in problem and "message" in problem:
        return f"{problem['path']}: {problem['message']}"
    return str(problem)


def form_add_refusal(
    form: forms.BaseForm, refusal: DomainError, *, field_names: Mapping[str, str] | None = None
) -> None:
    """Show a service's refusal on a form: its message at the top (unless a field says it
    already), then each message of its detail on the field it names. `field_names` maps the
    service's names of fields to the form's; a name the form has no field for (a variant's
    `variants[0].content`) is written before its message, at the top."""
    field_names = field_names or {}
    placed: list[tuple[str | None, str]] = []
    for name, problems in refusal.detail.items():
        field = field_names.get(name, name)
        for problem in problems if isinstance(problems, list | tuple) else [problems]:
            text = _problem_text(problem)
            if field in form.fields:
                placed.append((field, text))
            elif name == NON_FIELD_ERRORS:
                placed.append((None, text))
            else:
                placed.append((None, f"{name}: {text}"))
    if refusal.message not in {text for _field, text in placed}:
        placed.insert(0, (None, refusal.message))
    for place, text in placed:
        form.add_error(place, text)


class ServiceAdmin(LargeListAdmin):
    """An admin whose writes go through services: `save_model` (or `save_related`) calls one,
    and deleting goes row by row through `delete_through_service`.

    A service's refusal (a DomainError) reaches the operator one way: a change form is shown
    again, as entered, with the refusal on its fields (see form_add_refusal); a deletion or an
    action over several rows reports each refusal as a message (see message_refusal) and goes
    ahead with the other rows."""

    # The services' names of the fields the form names otherwise.
    service_field_names: Mapping[str, str] = {}

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:
            if request.method != "POST":
                raise
            # The service refused what the form let through (a rule only it checks, or a
            # concurrent change); the view's transaction rolled back. The second attempt
            # validates the same data with the refusal added, so it saves nothing and shows
            # the form as entered.
            token = _refusal.set(refusal)
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            finally:
                _refusal.reset(token)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form_class = super().get_form(request, obj, change, **kwargs)
        refusal = _refusal.get()
        if refusal is None:
            return form_class
        field_names = self.service_field_names

        def full_clean(form: forms.BaseForm) -> None:
            form_class.full_clean(form)
            if form.is_bound:
                form_add_refusal(form, refusal, field_names=field_names)

        return type(form_class.__name__, (form_class,), {"full_clean": full_clean})

    def message_refusal(
        self, request: HttpRequest, refusal: DomainError, *, about: str = ""
    ) -> None:
        """Report a service's refusal of one row of an action or a deletion; `about` names
        the row when several were asked for."""
        message = f"{about}: {refusal.message}" if about else refusal.message
        self.message_user(request, message, messages.ERROR)

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        """Delete one row through its service: each admin that lets operators delete says how."""
        raise ImproperlyConfigured(f"{type(self).__name__} names no service to delete through.")

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._delete_reporting(request, obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for object_id in queryset.values_list("pk", flat=True):
            self._delete_reporting(request, object_id)

    def _delete_reporting(self, request: HttpRequest, object_id: int) -> None:
        try:
            self.delete_through_service(request, object_id)
        except DomainError as refusal:
            self.message_refusal(request, refusal)


def unused_since() -> datetime:
    """Keys neither used nor created after this moment are flagged unused (长期未使用)."""
    return timezone.now() - timedelta(days=settings.API_KEY_UNUSED_DAYS)


def unused_keys(queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
    """The active keys of `queryset` unused for API_KEY_UNUSED_DAYS: last used before then, or
    never used and created before then."""
    since = unused_since()
    return queryset.filter(revoked_at__isnull=True).filter(
        Q(last_used_at__lt=since) | Q(last_used_at__isnull=True, created_at__lt=since)
    )


def is_unused(api_key: ApiKey) -> bool:
    """Whether an active key is flagged unused (a revoked one no longer needs attention)."""
    if api_key.revoked_at is not None:
        return False
    return (api_key.last_used_at or api_key.created_at) < unused_since()


class UnusedKeyFilter(admin.SimpleListFilter):
    title = _("usage")
    parameter_name = "unused"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Unused for a long time")), ("no", _("Used recently"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "yes":
            return unused_keys(queryset)
        if self.value() == "no":
            return queryset.exclude(pk__in=unused_keys(queryset).values("pk"))
        return queryset


class ExpiredKeyFilter(admin.SimpleListFilter):
    title = _("expiry")
    parameter_name = "expired"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Expired")), ("no", _("Not expired"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        now = timezone.now()
        if self.value() == "yes":
            return queryset.filter(expires_at__lte=now)
        if self.value() == "no":
            return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        return queryset


def scope_with_code(scope: str) -> str:
    """A scope by its label, its code beside it in small type for integrators."""
    return format_html('{} <code class="scope-code">{}</code>', scope_label(scope), scope)


class RevokedKeyFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("Valid")), ("yes", _("revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> QuerySet[ApiKey]:
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


class ApiKeyCreateForm(forms.ModelForm):
    scope_choices = forms.MultipleChoiceField(
        label=_("scopes"),
        widget=forms.CheckboxSelectMultiple,
    )
    expires_at = forms.DateTimeField(
        label=_("expires at"),
        required=False,
        help_text=_("Business time, e.g. 2027-06-30 18:00. Empty: never expires."),
    )
    allowed_ips_text = forms.CharField(
        label=_("allowed IPs"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "Addresses (203.0.113.7) or networks (203.0.113.0/24), one per line or "
            "separated by commas. Empty: anywhere."
        ),
    )
    staff_member = forms.TypedChoiceField(
        label=_("bound to staff member"),
        required=False,
        coerce=int,
        empty_value=None,
        help_text=_(
            "The key answers only for this staff member's customers. Empty: every customer."
        ),
    )

    class Meta:
        model = ApiKey
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["staff_member"].choices = [("", "---------"), *owner_choices()]  # type: ignore[attr-defined]
        self.fields["scope_choices"].choices = [  # type: ignore[attr-defined]
            (scope, scope_with_code(scope)) for scope in SCOPES
        ]

    def allowed_ips(self) -> list[str]:
        text = self.cleaned_data.get("allowed_ips_text") or ""
        return [entry for entry in text.replace(",", "\n").splitlines() if entry.strip()]


@admin.register(ApiKey)
class ApiKeyAdmin(ServiceAdmin):
    list_display = [
        "name",
        "prefix",
        "scope_list",
        "owner",
        "expiry",
        "allowed_ip_list",
        "created",
        "last_used",
        "unused",
        "requests_last_day",
        "status",
    ]
    list_filter = [RevokedKeyFilter, UnusedKeyFilter, ExpiredKeyFilter]
    search_fields = ["name", "=prefix"]
    readonly_fields = [
        "name",
        "prefix",
        "scope_lines",
        "owner",
        "expiry",
        "allowed_ip_list",
        "created",
        "last_used",
        "unused",
        "status",
    ]
    actions = ["revoke"]
    service_field_names = {
        "scopes": "scope_choices",
        "allowed_ips": "allowed_ips_text",
        "staff_member_id": "staff_member",
    }

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None:
            return self.readonly_fields
        return ["name", "scope_choices", "expires_at", "allowed_ips_text", "staff_member"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are created and revoked, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoked, never deleted: the audit trail and the usage counts name them

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # The bound staff members' names for the whole page, in one query.
        rows = list(changelist.result_list)
        names = owner_names({row.staff_member_id for row in rows if row.staff_member_id})
        for row in rows:
            row._owner_names = names
        return changelist

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        api_key, raw_key = api_key_create(
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scope_choices"],
            expires_at=form.cleaned_data.get("expires_at"),
            allowed_ips=form.allowed_ips(),
            staff_member_id=form.cleaned_data.get("staff_member"),
            actor=f"user:{request.user.pk}",
        )
        # The saved key, so that the admin's "added" message names it as its page does.
        obj.pk, obj.prefix, obj.created_at = api_key.pk, api_key.prefix, api_key.created_at
        self.message_user(
            request,
            _("The new key, shown this once only: %(key)s") % {"key": raw_key},
            messages.WARNING,
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        # The hourly counts folded in so far (every few minutes), summed in the page's query.
        since = timezone.now() - timedelta(hours=24)
        day = (
            ApiKeyUsage.objects.filter(api_key=OuterRef("pk"), hour__gte=since)
            .values("api_key")
            .annotate(total=Sum("request_count"))
            .values("total")
        )
        return super().get_queryset(request).annotate(requests_last_day=Subquery(day))

    @admin.display(description=_("requests in the last 24 hours (updated every 5 minutes)"))
    def requests_last_day(self, api_key: ApiKey) -> str:
        count = getattr(api_key, "requests_last_day", None) or 0
        return number_format(count, force_grouping=True)

    @admin.display(description=_("scopes"))
    def scope_list(self, api_key: ApiKey) -> str:
        return pgettext("list separator", ", ").join(scope_label(s) for s in api_key.scopes)

    @admin.display(description=_("scopes"))
    def scope_lines(self, api_key: ApiKey) -> str:
        return format_html_join(
            "", "<div>{}</div>", ((scope_with_code(scope),) for scope in api_key.scopes)
        )

    @admin.display(description=_("status"), ordering="revoked_at")
    def status(self, api_key: ApiKey) -> str:
        if api_key.revoked_at is None:
            return gettext("Valid")
        return gettext("Revoked (%(time)s)") % {"time": business_time_label(api_key.revoked_at)}

    @admin.display(description=_("bound to staff member"))
    def owner(self, api_key: ApiKey) -> str:
        if api_key.staff_member_id is None:
            return gettext("Every customer")
        names = getattr(api_key, "_owner_names", None)
        if names is None:
            names = owner_names([api_key.staff_member_id])
        return names.get(api_key.staff_member_id) or gettext("Deleted staff member #%(id)d") % {
            "id": api_key.staff_member_id
        }

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expiry(self, api_key: ApiKey) -> str:
        if api_key.expires_at is None:
            return gettext("Never")
        label = business_time_label(api_key.expires_at)
        if api_key.expires_at <= timezone.now():
            return gettext("Expired (%(time)s)") % {"time": label}
        return label

    @admin.display(description=_("allowed IPs"))
    def allowed_ip_list(self, api_key: ApiKey) -> str:
        return ", ".join(api_key.allowed_ips) or gettext("Anywhere")

    @admin.display(description=_("created at"), ordering="created_at")
    def created(self, api_key: ApiKey) -> str:
        return business_time_label(api_key.created_at)

    @admin.display(description=_("last used"), ordering="last_used_at")
    def last_used(self, api_key: ApiKey) -> str:
        return business_time_label(api_key.last_used_at, empty=gettext("Never used"))

    @admin.display(description=_("usage"))
    def unused(self, api_key: ApiKey) -> str:
        return gettext("Unused for a long time") if is_unused(api_key) else ""

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        prefixes = list(queryset.values_list("prefix", flat=True))
        for prefix in prefixes:
            api_key_revoke(prefix=prefix, actor=f"user:{request.user.pk}")
        self.message_user(
            request,
            ngettext("%(count)d key revoked.", "%(count)d keys revoked.", len(prefixes))
            % {"count": len(prefixes)},
        )


# --- The audit trail: read-only for everyone, superusers included. ---


class AuditEventActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(AuditAction.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(action=self.value()) if self.value() else queryset


@admin.register(AuditEvent)
class AuditEventAdmin(NeverEditedAdmin, ActorLabelsAdmin):
    """The audit trail, for the 审计 role (view permission on audit events): filters by actor,
    action and time, a search by customer id. Never added to, changed or deleted here, not even
    by a superuser (the table refuses changes in the database too)."""

    list_display = [
        "occurred_at_label",
        "actor_label",
        "action",
        "object_label",
        "customer_id",
        "field_list",
        "detail_summary",
    ]
    list_filter = [actor_list_filter("actor", _("actor")), AuditEventActionFilter]
    date_hierarchy = "occurred_at"
    number_search_fields = ("customer_id",)
    search_help_text = _(
        "A customer's id: the events about that customer, and the pages that showed it."
    )
    actor_fields = ("actor",)
    actor_label = actor_column("actor", _("actor"))
    fields = (
        "occurred_at_label",
        "actor_label",
        "action",
        "object_label",
        "customer_id",
        "field_list",
        "detail_lines",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """A customer's id finds the events about that customer and the list pages that showed
        it among others (detail.customer_ids, a JSON containment its GIN index serves)."""
        term = search_term.strip()
        if not term.isdigit() or int(term) > LARGEST_ID:
            return super().get_search_results(request, queryset, search_term)
        customer_id = int(term)
        condition = Q(customer_id=customer_id) | Q(detail__customer_ids__contains=[customer_id])
        return queryset.filter(condition), False

    @admin.display(description=_("time"), ordering="occurred_at")
    def occurred_at_label(self, event: AuditEvent) -> str:
        return business_time_label(event.occurred_at)

    @admin.display(description=_("object"))
    def object_label(self, event: AuditEvent) -> str:
        return event.object_label

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # The staff members the page's changes name (API keys' bindings), in one query.
        rows = list(changelist.result_list)
        names = owner_names(staff_member_ids(rows))
        for row in rows:
            row._staff_names = names
        return changelist

    def _lines(self, event: AuditEvent) -> list[str]:
        return audit_detail_lines(event, staff_names=getattr(event, "_staff_names", None))

    @admin.display(description=_("fields"))
    def field_list(self, event: AuditEvent) -> str:
        labels = [field_label(event.object_type, name) for name in event.fields]
        return pgettext("list separator", ", ").join(labels) or "-"

    @admin.display(description=_("detail"))
    def detail_summary(self, event: AuditEvent) -> str:
        lines = self._lines(event)
        if not lines:
            return "-"
        summary = joined(lines[:3], pgettext("filter separator", "; "))
        return format_html("{} …", summary) if len(lines) > 3 else summary

    @admin.display(description=_("detail"))
    def detail_lines(self, event: AuditEvent) -> str:
        lines = self._lines(event)
        return format_html_join("", "<div>{}</div>", ((line,) for line in lines)) if lines else "-"


@admin.register(ApiKeyUsage)
class ApiKeyUsageAdmin(NeverEditedAdmin, LargeListAdmin):
    """Each API key's requests per hour (folded in from the cache every few minutes): read
    only, beside the audit trail."""

    list_display = ["hour_label", "api_key", "request_count"]
    list_filter = ["api_key"]
    list_select_related = ["api_key"]
    date_hierarchy = "hour"

    @admin.display(description=_("hour"), ordering="hour")
    def hour_label(self, usage: ApiKeyUsage) -> str:
        return business_time_label(usage.hour)
