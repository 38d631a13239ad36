"""Operator admin of the CRM. Reads use selectors, every write goes through a service; personal
data is shown masked unless the operator holds `crm.view_personal_data`. Lists select or
prefetch what they show, so a page costs the same queries whatever its length."""

import math
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import (
    EXACT_COUNT_LIMIT,
    ActorLabelsAdmin,
    CommonValuesListFilter,
    NeverEditedAdmin,
    ReadOnlyAdmin,
    ReadOnlyInline,
    ServiceAdmin,
    actor_column,
    estimated_count,
)
from core.api.throttling import SCOPE_SEARCH, rate_limit_consume
from core.services.audit import personal_data_view_record
from core.validators import validate_birthday
from crm import admin_wecom_events  # noqa: F401 - registers WeCom's callback events
from crm.admin_scoping import CustomerScopedAdmin, sees_all_customers
from crm.admin_wecom import WeComFollowInline
from crm.models import (
    Consent,
    ConsentChannel,
    ConsentEvent,
    ConsentStatus,
    Customer,
    CustomerMerge,
    CustomerTag,
    Group,
    GroupMembership,
    Identity,
    IdentityProvider,
    Interaction,
    Order,
    OrderItem,
    StaffMember,
    Tag,
    TagGroup,
    TagSource,
    WeComTagPush,
    source_label,
)
from crm.personal_data import display_value, mask_birthday
from crm.selectors.customers import customer_search_condition
from crm.selectors.tags import tag_group_list, tag_holder_estimates, tag_list
from crm.services.customers import customer_create, customer_update, customers_delete
from crm.services.groups import group_create, group_delete, group_update
from crm.services.marks import customers_mark_dirty
from crm.services.merges import customers_merge
from crm.services.staff_members import (
    staff_member_create,
    staff_member_delete,
    staff_member_update,
)
from crm.services.tags import (
    tag_create,
    tag_delete,
    tag_group_create,
    tag_group_delete,
    tag_group_update,
    tag_update,
    tags_assign,
    tags_remove,
)
from crm.wecom.tag_push import push_error_label

PERSONAL_DATA_PERMISSION = "crm.view_personal_data"
# The customer form's birthday for whoever may not see personal data: masked, read-only.
BIRTHDAY_MASKED = "birthday_masked"


# Whether whoever the current request serves may see personal data. Set around each customer
# page (a context variable, so concurrent requests never see each other's), read by the
# columns that show identity values.
_may_see_personal_data: ContextVar[bool] = ContextVar("may_see_personal_data", default=False)


# The customers whose sensitive data the current request's page showed unmasked, with the
# fields shown: filled while the page renders, written as one audit event after it (see
# CustomerAdmin._render_audited).
_shown_personal_data: ContextVar[dict[int, set[str]] | None] = ContextVar(
    "shown_personal_data", default=None
)


def _personal_data_shown(customer_id: int, field: str) -> None:
    shown = _shown_personal_data.get()
    if shown is not None:
        shown.setdefault(customer_id, set()).add(field)


def _identity_display(identity: Identity) -> str:
    if _may_see_personal_data.get():
        _personal_data_shown(identity.customer_id, "identities")
    return display_value(
        provider=identity.provider,
        value_masked=identity.value_masked,
        value_encrypted=identity.value_encrypted,
        may_see_personal_data=_may_see_personal_data.get(),
    )


def _source_column(field: str, description: Any) -> Any:
    """A column showing the source or channel code in `field` by its label (see KNOWN_SOURCES)."""

    @admin.display(description=description, ordering=field)
    def column(model_admin: Any, obj: Any) -> str:
        return source_label(getattr(obj, field))

    return column


class SourceListFilter(CommonValuesListFilter):
    """The common values of a source or channel column, each by its label."""

    def choices(self, changelist: Any) -> Any:
        for choice in super().choices(changelist):
            if isinstance(choice["display"], str):
                choice["display"] = source_label(choice["display"])
            yield choice


def _rendered(response: Any) -> Any:
    """Render a template response now, while the context variable above is set."""
    if hasattr(response, "render"):
        response.render()
    return response


class IdentityInline(ReadOnlyInline):
    model = Identity
    readonly_fields = ("provider", "value", "is_sensitive", "created_at")
    fields = readonly_fields

    @admin.display(description=_("value"))
    def value(self, identity: Identity) -> str:
        return _identity_display(identity)


class CustomerTagFormSet(BaseInlineFormSet):
    """Tags added or removed in the customer form go through the tag services (an exclusive
    group's other tag gives way), not straight to the table."""

    request_user_id: int | None = None

    def save(self, commit: bool = True) -> list[Any]:
        self.new_objects, self.changed_objects, self.deleted_objects = [], [], []
        customer = self.instance
        actor = f"user:{self.request_user_id}"
        added = [
            form.cleaned_data["tag"]
            for form in self.extra_forms
            if form.has_changed() and form.cleaned_data.get("tag")
        ]
        removed = [form.instance.tag for form in self.deleted_forms if form.instance.pk]
        if removed:
            tags_remove(customer_ids=[customer.pk], tags=removed, actor=actor)
        for tag in added:  # one at a time: two of one exclusive group replace each other
            tags_assign(
                customer_ids=[customer.pk], tags=[tag], source=TagSource.MANUAL, actor=actor
            )
        return []


class CustomerTagInline(admin.TabularInline):
    model = CustomerTag
    formset = CustomerTagFormSet
    fk_name = "customer"
    extra = 0
    fields = ["tag", "source", "tagged_at"]
    readonly_fields = ["source", "tagged_at"]
    autocomplete_fields = ["tag"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CustomerTag]:
        return super().get_queryset(request).select_related("tag__group")

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        return type(formset.__name__, (formset,), {"request_user_id": request.user.pk})


class GroupMembershipInline(ReadOnlyInline):
    model = GroupMembership
    readonly_fields = (
        "group",
        "joined_at",
        "left_at",
    )
    fields = readonly_fields
    ordering = ["-joined_at"]
    verbose_name_plural = _("group memberships (past stays included)")

    def get_queryset(self, request: HttpRequest) -> QuerySet[GroupMembership]:
        return super().get_queryset(request).select_related("group")


class ConsentInline(ReadOnlyInline):
    model = Consent
    readonly_fields = (
        "channel",
        "status",
        "source_name",
        "changed_at",
    )
    fields = readonly_fields
    source_name = _source_column("source", _("source"))


class ConsentEventInline(ReadOnlyInline):
    model = ConsentEvent
    readonly_fields = (
        "channel",
        "status",
        "source_name",
        "occurred_at",
        "recorded_at",
    )
    fields = readonly_fields
    source_name = _source_column("source", _("source"))
    verbose_name_plural = _("consent history")


class OrderInline(ReadOnlyInline):
    model = Order
    readonly_fields = (
        "order_link",
        "status",
        "total_amount",
        "refunded_amount",
        "currency",
        "paid_at",
    )
    fields = readonly_fields
    ordering = ["-paid_at"]

    @admin.display(description=_("order"))
    def order_link(self, order: Order) -> str:
        url = reverse("admin:crm_order_change", args=[order.pk])
        return format_html('<a href="{}">{}</a>', url, order)


class TagListFilter(admin.SimpleListFilter):
    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(tag.pk), str(tag)) for tag in Tag.objects.select_related("group")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        # Served by the index customer_tag_by_tag (tag, customer).
        holders = CustomerTag.objects.filter(tag_id=value).values("customer_id")
        return queryset.filter(pk__in=holders)


class GroupListFilter(admin.SimpleListFilter):
    title = _("group (current member)")
    parameter_name = "group"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Group.objects.values_list("pk", "name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        members = GroupMembership.objects.filter(group_id=value, left_at__isnull=True).values(
            "customer_id"
        )
        return queryset.filter(pk__in=members)


class ConsentListFilter(admin.SimpleListFilter):
    title = _("consent")
    parameter_name = "consent"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            (f"{channel.value}:{status.value}", f"{channel.label}: {status.label}")
            for channel in ConsentChannel
            for status in ConsentStatus
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or ":" not in value:
            return queryset
        channel, status = value.split(":", 1)
        holders = Consent.objects.filter(channel=channel, status=status).values("customer_id")
        return queryset.filter(pk__in=holders)


class CustomerAdmin(CustomerScopedAdmin, ServiceAdmin):
    """The CRM's customer page. console.admin registers it, composed with the other apps'
    sections. Deleting goes through customers_delete, all selected customers at once. A 导购
    sees their own customers only (crm.admin_scoping), and may not give one away; the
    birthday, 敏感个人信息, is shown masked to whoever may not see personal data."""

    customer_field = ""

    list_display = [
        "id",
        "display_name",
        "phone",
        "source_channel",
        "owner",
        "member_level",
        "updated_at",
    ]
    list_filter = [
        TagListFilter,
        GroupListFilter,
        "source_channel",
        ConsentListFilter,
        ("member_level", CommonValuesListFilter),
        "owner",
    ]
    search_fields = ["display_name"]
    search_help_text = _("Name, or a full phone number, unionid or other identity.")
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    # The profile version is the source system's, written only by its bulk rows.
    readonly_fields = ["first_seen_at", "profile_source_updated_at", "created_at", "updated_at"]
    inlines = [
        IdentityInline,
        WeComFollowInline,
        CustomerTagInline,
        GroupMembershipInline,
        ConsentInline,
        ConsentEventInline,
        OrderInline,
    ]
    actions = ["merge_customers", "mark_for_recomputation"]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if sees_all_customers(request):
            return filters
        # Scoped to one owner: the other staff members are no choice.
        return [spec for spec in filters if spec != "owner"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(super().get_fields(request, obj))
        if request.user.has_perm(PERSONAL_DATA_PERMISSION):
            return fields
        # In the birthday's place; Django also lists every read-only field after the form's
        # (the masked birthday among them): shown once, where the birthday stands.
        masked = [BIRTHDAY_MASKED if name == "birthday" else name for name in fields]
        return list(dict.fromkeys(masked))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if not request.user.has_perm(PERSONAL_DATA_PERMISSION):
            readonly.append(BIRTHDAY_MASKED)
        if not sees_all_customers(request):
            readonly.append("owner")
        return readonly

    @admin.display(description=_("birthday"))
    def birthday_masked(self, customer: Customer) -> str:
        return mask_birthday(customer.birthday) or "-"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        phones = Identity.objects.filter(provider=IdentityProvider.PHONE).order_by("id")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(Prefetch("identities", queryset=phones, to_attr="phones"))
        )

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        formfield = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "birthday" and formfield is not None:
            formfield.validators.append(validate_birthday)
        return formfield

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        if not request.user.has_perm(PERSONAL_DATA_PERMISSION):
            # A search answers whether a guessed phone number exists: limited as the API's.
            wait = rate_limit_consume(scopes=[SCOPE_SEARCH], ident=f"user:{request.user.pk}")
            if wait is not None:
                messages.error(
                    request,
                    _("Too many searches; retry in %(seconds)d seconds.")
                    % {"seconds": max(math.ceil(wait), 1)},
                )
                return queryset.none(), False
        return queryset.filter(customer_search_condition(term)), False

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        return self._render_audited(
            request, lambda: super(CustomerAdmin, self).changelist_view(request, extra_context)
        )

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> Any:
        def render() -> Any:
            response = super(CustomerAdmin, self).changeform_view(
                request, object_id, form_url, extra_context
            )
            # A customer's own page shows the birthday in its form.
            if object_id is not None and object_id.isdigit() and response.status_code == 200:
                _personal_data_shown(int(object_id), "birthday")
            return response

        return self._render_audited(request, render)

    def _render_audited(self, request: HttpRequest, render: Callable[[], Any]) -> Any:
        """Render a customer page (the list or one customer) with personal data unmasked for
        a user who holds crm.view_personal_data, and audit what it showed unmasked: one
        `view_personal_data` event per page, naming the customers and the fields."""
        may_see = request.user.has_perm(PERSONAL_DATA_PERMISSION)
        token = _may_see_personal_data.set(may_see)
        shown: dict[int, set[str]] = {}
        shown_token = _shown_personal_data.set(shown if may_see else None)
        try:
            response = _rendered(render())
        finally:
            _shown_personal_data.reset(shown_token)
            _may_see_personal_data.reset(token)
        if shown:
            personal_data_view_record(
                actor=f"user:{request.user.pk}",
                customer_ids=list(shown),
                fields=set().union(*shown.values()),
            )
        return response

    @admin.display(description=_("phone"))
    def phone(self, customer: Customer) -> str:
        phones = getattr(customer, "phones", [])
        return _identity_display(phones[0]) if phones else "-"

    def save_model(self, request: HttpRequest, obj: Customer, form: Any, change: bool) -> None:
        names = form.changed_data if change else list(form.cleaned_data)
        profile = {name: form.cleaned_data[name] for name in names}
        if "owner" in profile:
            profile["owner"] = profile["owner"].wecom_userid if profile["owner"] else None
        actor = f"user:{request.user.pk}"
        if change:
            customer_update(customer_id=obj.pk, profile=profile, actor=actor)
            return
        customer = customer_create(profile=profile, actor=actor)
        obj.pk = customer.pk  # the inlines and the change message follow the new customer

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        customers_delete(customer_ids=[obj.pk], actor=f"user:{request.user.pk}")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        customers_delete(customer_ids=ids, actor=f"user:{request.user.pk}")

    # A merge deletes the customers it absorbs: the right to delete customers, which neither a
    # 导购 nor 运营 holds.
    @admin.action(description=_("Merge the selected customers into one"), permissions=["delete"])
    def merge_customers(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        if len(ids) < 2:
            self.message_user(request, _("Select at least two customers."), messages.ERROR)
            return
        # Synchronous: a handful of customers merge in milliseconds, and the operator sees
        # the survivor at once.
        survivor = customers_merge(
            customer_ids=ids, actor=f"user:{request.user.pk}", reason="merged in admin"
        )
        self.message_user(
            request,
            _("Merged %(count)d customers into customer %(survivor)d.")
            % {"count": len(ids), "survivor": survivor},
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Recompute scores of the selected customers"), permissions=["change"]
    )
    def mark_for_recomputation(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        customers_mark_dirty(ids)
        self.message_user(
            request,
            ngettext(
                "%(count)d customer marked for recomputation.",
                "%(count)d customers marked for recomputation.",
                len(ids),
            )
            % {"count": len(ids)},
        )


@admin.register(StaffMember)
class StaffMemberAdmin(ServiceAdmin):
    """Staff members, each optionally bound to the admin login (`user`) that sees its
    customers (a 导购 without `crm.view_all_customers`, see crm.admin_scoping)."""

    list_display = ["wecom_userid", "name", "user", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["wecom_userid", "name"]
    list_select_related = ["user"]
    fields = ["wecom_userid", "name", "user", "is_active", "created_at"]
    readonly_fields = ["created_at"]

    def save_model(self, request: HttpRequest, obj: StaffMember, form: Any, change: bool) -> None:
        data = dict(form.cleaned_data)
        user = data.pop("user", None)
        data["user_id"] = user.pk if user is not None else None
        actor = f"user:{request.user.pk}"
        if change:
            staff_member_update(staff_member_id=obj.pk, actor=actor, **data)
        else:
            obj.pk = staff_member_create(actor=actor, **data).pk

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        staff_member_delete(staff_member_id=object_id, actor=f"user:{request.user.pk}")


class BoundStaffMemberInline(ReadOnlyInline):
    """On an admin user's page: the staff member bound to the login, whose customers a user
    without `crm.view_all_customers` sees. Bound from the staff member's page."""

    model = StaffMember
    fk_name = "user"
    fields = readonly_fields = ("wecom_userid", "name", "is_active")
    verbose_name = verbose_name_plural = _("bound staff member")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class UserWithStaffMemberAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, BoundStaffMemberInline]


admin.site.unregister(User)
admin.site.register(User, UserWithStaffMemberAdmin)


@admin.register(TagGroup)
class TagGroupAdmin(ServiceAdmin):
    list_display = ["name", "is_exclusive", "is_wecom_mirrored", "tag_count", "description"]
    list_filter = ["is_exclusive", "is_wecom_mirrored"]
    search_fields = ["name"]
    fields = ["name", "is_exclusive", "is_wecom_mirrored", "description", "wecom_group_id"]
    # Set by the mirror of WeCom's corp tags (crm.wecom.tags), never by hand.
    readonly_fields = ["wecom_group_id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TagGroup]:
        return tag_group_list()

    @admin.display(description=_("tags"), ordering="tag_count")
    def tag_count(self, group: TagGroup) -> int:
        return group.tag_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: TagGroup, form: Any, change: bool) -> None:
        data = form.cleaned_data
        if change:
            tag_group_update(group_id=obj.pk, **data)
        else:
            obj.pk = tag_group_create(**data).pk

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        tag_group_delete(group_id=object_id)


@admin.register(Tag)
class TagAdmin(ServiceAdmin):
    list_display = ["name", "group", "customer_count", "created_at"]
    list_filter = ["group"]
    search_fields = ["name", "group__name"]
    list_select_related = ["group"]
    fields = ["group", "name", "description", "wecom_tag_id", "created_at"]
    readonly_fields = ["wecom_tag_id", "created_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tag]:
        return tag_list(count_limit=EXACT_COUNT_LIMIT)

    def get_list_display(self, request: HttpRequest) -> Any:
        # The count is of every customer: not for a user who sees only their own.
        columns = super().get_list_display(request)
        return (
            columns
            if sees_all_customers(request)
            else [c for c in columns if c != "customer_count"]
        )

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        """Tags held by more customers than EXACT_COUNT_LIMIT show the statistics' estimate
        (约), read once for the page."""
        changelist = super().get_changelist_instance(request)
        rows = list(changelist.result_list)  # evaluates the page's queryset once, as cached
        if any(tag.customer_count > EXACT_COUNT_LIMIT for tag in rows):
            estimates = tag_holder_estimates()
            for tag in rows:
                if tag.customer_count > EXACT_COUNT_LIMIT:
                    tag.customer_count = estimated_count(estimates.get(tag.pk, 0))
        return changelist

    @admin.display(description=_("customer count"), ordering="customer_count")
    def customer_count(self, tag: Tag) -> int:
        return tag.customer_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Tag, form: Any, change: bool) -> None:
        data = form.cleaned_data
        values = {"name": data["name"], "description": data["description"]}
        if change:
            tag_update(tag_id=obj.pk, group_id=data["group"].pk, **values)
        else:
            obj.pk = tag_create(group_id=data["group"].pk, **values).pk

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        tag_delete(tag_id=object_id)


class GroupDismissedListFilter(admin.SimpleListFilter):
    """Group chats dismissed (解散) in WeCom or not, rather than the empty/not empty of a date."""

    title = _("chat status")
    parameter_name = "dismissed"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("yes", _("Dismissed")), ("no", _("Not dismissed"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() in ("yes", "no"):
            return queryset.filter(dismissed_at__isnull=self.value() == "no")
        return queryset


@admin.register(Group)
class GroupAdmin(ServiceAdmin):
    list_display = [
        "name",
        "kind",
        "external_id",
        "owner",
        "member_count",
        "created_at",
        "dismissed_at",
    ]
    list_filter = ["kind", GroupDismissedListFilter]
    search_fields = ["name", "external_id"]
    list_select_related = ["owner"]
    autocomplete_fields = ["owner"]
    fields = [
        "kind",
        "external_id",
        "name",
        "owner",
        "created_at",
        "members_observed_at",
        "dismissed_at",
    ]
    # Written by the services only: created_at with the group, members_observed_at by the
    # member list sync, dismissed_at by WeCom's dismissal (its callback or the nightly sync).
    readonly_fields = ["created_at", "members_observed_at", "dismissed_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Group]:
        # Counted for the page's groups only (a subquery per row, not a join over every
        # membership), from the index group_membership_one_open.
        members = (
            GroupMembership.objects.filter(group_id=OuterRef("pk"), left_at__isnull=True)
            .order_by()
            .values("group_id")
            .annotate(n=Count("*"))
            .values("n")
        )
        return super().get_queryset(request).annotate(member_count=Coalesce(Subquery(members), 0))

    def get_list_display(self, request: HttpRequest) -> Any:
        # The count is of every customer: not for a user who sees only their own.
        columns = super().get_list_display(request)
        return (
            columns if sees_all_customers(request) else [c for c in columns if c != "member_count"]
        )

    @admin.display(description=_("current members"), ordering="member_count")
    def member_count(self, group: Group) -> int:
        return group.member_count  # type: ignore[attr-defined]

    def save_model(self, request: HttpRequest, obj: Group, form: Any, change: bool) -> None:
        data = form.cleaned_data
        owner = data["owner"].wecom_userid if data["owner"] else ""
        values = {"kind": data["kind"], "external_id": data["external_id"], "name": data["name"]}
        if change:
            group_update(group_id=obj.pk, owner=owner, **values)
        else:
            obj.pk = group_create(owner=owner, **values).pk

    def delete_through_service(self, request: HttpRequest, object_id: int) -> None:
        group_delete(group_id=object_id)


class OrderItemInline(ReadOnlyInline):
    model = OrderItem
    readonly_fields = (
        "line_no",
        "sku",
        "name",
        "category",
        "quantity",
        "unit_price",
    )
    fields = readonly_fields
    ordering = ["line_no"]


@admin.register(Order)
class OrderAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = [
        "external_id",
        "source_name",
        "customer",
        "status",
        "total_amount",
        "refunded_amount",
        "currency",
        "paid_at",
        "channel_name",
    ]
    source_name = _source_column("source", _("source"))
    channel_name = _source_column("channel", _("channel"))
    # No date hierarchy: its year links read the distinct years of every order (seconds at
    # ten million); the date filter's links are fixed.
    list_filter = [
        "status",
        ("source", SourceListFilter),
        ("channel", SourceListFilter),
        ("paid_at", admin.DateFieldListFilter),
    ]
    # The order number exactly, as operators paste it (index order_by_external_id).
    search_fields = ["external_id__exact"]
    search_help_text = _("The whole order number.")
    list_select_related = ["customer"]
    inlines = [OrderItemInline]


@admin.register(GroupMembership)
class GroupMembershipAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = ["group", "customer", "joined_at", "left_at"]
    list_filter = ["group__kind", ("left_at", admin.EmptyFieldListFilter)]
    search_fields = ["group__name"]
    list_select_related = ["group", "customer"]


@admin.register(Interaction)
class InteractionAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = ["kind", "customer", "occurred_at", "source_name"]
    source_name = _source_column("source", _("source"))
    # A date filter rather than a date hierarchy, as on orders.
    list_filter = [
        "kind",
        ("source", SourceListFilter),
        ("occurred_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["customer"]


@admin.register(Consent)
class ConsentAdmin(CustomerScopedAdmin, ReadOnlyAdmin):
    list_display = ["customer", "channel", "status", "source_name", "changed_at"]
    source_name = _source_column("source", _("source"))
    list_filter = ["channel", "status"]
    list_select_related = ["customer"]


@admin.register(CustomerMerge)
class CustomerMergeAdmin(CustomerScopedAdmin, ActorLabelsAdmin, ReadOnlyAdmin):
    customer_field = "survivor_id"
    list_display = ["merged_customer_id", "survivor", "actor_label", "reason", "merged_at"]
    actor_fields = ("actor",)
    actor_label = actor_column("actor", _("actor"))
    number_search_fields = ("merged_customer_id", "survivor_id")
    list_select_related = ["survivor"]
    fields = ["survivor", "merged_customer_id", "actor_label", "reason", "moved", "merged_at"]
    readonly_fields = ["actor_label"]


@admin.register(WeComTagPush)
class WeComTagPushAdmin(NeverEditedAdmin, CustomerScopedAdmin, ReadOnlyAdmin):
    """标签同步记录: each tag given or taken here that was pushed (or waits to be pushed) to
    WeCom, with its outcome; written by crm.services.tags and crm.wecom.tag_push only."""

    list_display = [
        "customer",
        "tag",
        "action",
        "status",
        "error_label",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "action"]
    search_fields = ["tag__name", "tag__group__name"]
    list_select_related = ["customer", "tag__group"]
    fields = [
        "customer",
        "tag",
        "action",
        "status",
        "error_label",
        "attempts",
        "created_at",
        "finished_at",
    ]
    readonly_fields = ["error_label"]
    ordering = ["-created_at"]

    @admin.display(description=_("reason"))
    def error_label(self, push: WeComTagPush) -> str:
        return push_error_label(push.error_code)


# Channel QR codes (渠道活码) have their own module; importing it registers their admin.
import crm.admin_contact_ways  # noqa: E402, F401
