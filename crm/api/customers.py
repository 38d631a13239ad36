"""Customer endpoints of the CRM: list and bulk upsert; the profile and identity input the
lookup and upsert by identity read, and the serializers of the CRM's parts of the customer
lookup (that view, which shows other apps' parts too, is composed in `console.api`)."""

from typing import Any

import django_filters
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of, may_see_personal_data
from core.api.filters import IntegerInFilter, SelectorFilterSet
from core.api.throttling import SCOPE_BULK, SCOPE_SEARCH
from core.errors import NotFound
from core.services.audit import personal_data_view_record
from core.validators import validate_birthday, validate_event_time
from crm.api.bulk import BulkOutSerializer, rows_decode
from crm.api.identities import IdentityListField
from crm.api.scoping import (
    ERROR_OWNER_OUT_OF_SCOPE,
    OwnerScopedMixin,
    request_customer_scope,
    row_out_of_scope,
    rows_outside_scope,
    scope_owner_userid,
)
from crm.inputs import CustomerIn
from crm.models import Customer, CustomerMerge, Gender, Identity, SourceChannel
from crm.personal_data import display_value, mask_birthday
from crm.selectors.customers import customer_list
from crm.services.customers import (
    ERROR_CUSTOMER_NOT_FOUND,
    CustomerInput,
    customers_bulk_upsert,
)

ERROR_CUSTOMER_MERGED = "customer_merged"


class IdentityOutSerializer(serializers.ModelSerializer):
    value = serializers.SerializerMethodField(method_name="display")

    class Meta:
        model = Identity
        fields = ["provider", "namespace", "value", "is_sensitive"]

    def display(self, identity: Identity) -> str:
        return display_value(
            provider=identity.provider,
            value_masked=identity.value_masked,
            value_encrypted=identity.value_encrypted,
            may_see_personal_data=self.context.get("may_see_personal_data", False),
        )


class CustomerOutSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(
        source="owner.wecom_userid", default=None, allow_null=True, read_only=True
    )
    identities = IdentityOutSerializer(many=True, read_only=True)
    birthday = serializers.SerializerMethodField(
        help_text=_("YYYY-MM-DD; masked (****-**-**) without the personal_data:read scope.")
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            "display_name",
            "gender",
            "birthday",
            "province",
            "city",
            "source_channel",
            "first_seen_at",
            "owner",
            "member_level",
            "member_points",
            "created_at",
            "updated_at",
            "identities",
        ]

    def get_birthday(self, customer: Customer) -> str | None:
        """The birthday is 敏感个人信息: shown only to who may see personal data."""
        if customer.birthday is None:
            return None
        if self.context.get("may_see_personal_data", False):
            return customer.birthday.isoformat()
        return mask_birthday(customer.birthday)


class ProfileInSerializer(serializers.Serializer):
    """Profile fields an integration may set; absent fields are left as they are."""

    display_name = serializers.CharField(max_length=128, required=False, allow_blank=True)
    gender = serializers.ChoiceField(choices=Gender.choices, required=False)
    birthday = serializers.DateField(
        required=False, allow_null=True, validators=[validate_birthday]
    )
    province = serializers.CharField(max_length=32, required=False, allow_blank=True)
    city = serializers.CharField(max_length=32, required=False, allow_blank=True)
    source_channel = serializers.ChoiceField(
        choices=SourceChannel.choices, required=False, allow_blank=True
    )
    first_seen_at = serializers.DateTimeField(required=False, validators=[validate_event_time])
    owner = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("WeCom userid of the staff member who owns the customer."),
    )
    member_level = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    member_points = serializers.IntegerField(
        min_value=-(2**31), max_value=2**31 - 1, required=False
    )


class CustomerUpsertInSerializer(ProfileInSerializer):
    identities = IdentityListField(
        required=False, help_text=_("More identities of the same customer.")
    )


class CustomerFilter(SelectorFilterSet):
    tag = IntegerInFilter(
        method="noop", help_text=_("Tag ids, comma-separated; customers holding all of them.")
    )
    group = django_filters.NumberFilter(method="noop", help_text=_("Current member of group id."))
    source_channel = django_filters.ChoiceFilter(choices=SourceChannel.choices, method="noop")
    owner = django_filters.CharFilter(method="noop", help_text=_("Owner's WeCom userid."))
    member_level = django_filters.NumberFilter(method="noop")
    updated_since = django_filters.IsoDateTimeFilter(method="noop")
    search = django_filters.CharFilter(
        method="noop", help_text=_("Name contains, or an identity value equals.")
    )

    class Meta:
        model = Customer
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return customer_list(
            tag_ids=[int(t) for t in data.get("tag") or []],
            group_id=int(data["group"]) if data.get("group") is not None else None,
            source_channel=data.get("source_channel") or None,
            owner=data.get("owner") or None,
            member_level=int(data["member_level"])
            if data.get("member_level") is not None
            else None,
            updated_since=data.get("updated_since"),
            search=data.get("search") or None,
        )


class PersonalDataContextMixin:
    """Views that answer customers (CustomerOutSerializer): identities and birthdays unmasked
    for a caller that may see personal data, and then each answer audited as one
    `view_personal_data` event naming the customers it showed (one INSERT per request)."""

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()  # type: ignore[misc]
        context["may_see_personal_data"] = may_see_personal_data(self.request)  # type: ignore[attr-defined]
        return context

    def get_serializer(self, *args: Any, **kwargs: Any) -> Any:
        serializer = super().get_serializer(*args, **kwargs)  # type: ignore[misc]
        shown = args[0] if args else kwargs.get("instance")
        if shown is not None and serializer.context["may_see_personal_data"]:
            customers = [shown] if isinstance(shown, Customer) else shown
            self._shown_customer_ids = [customer.pk for customer in customers]
        return serializer

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        shown = getattr(self, "_shown_customer_ids", None)
        if shown and status.is_success(response.status_code):
            personal_data_view_record(actor=actor_of(request), customer_ids=shown)
        return response


class CustomerListView(PersonalDataContextMixin, OwnerScopedMixin, generics.ListAPIView):
    scope_resource = "customers"
    customer_field = ""
    serializer_class = CustomerOutSerializer
    filterset_class = CustomerFilter
    queryset = Customer.objects.all()

    def probe_rate_limit_scope(self, request: Request) -> str | None:
        """A search answers whether a guessed phone number or name exists."""
        return SCOPE_SEARCH if request.query_params.get("search") else None


def customer_or_404(customer_id: int, request: Request | None = None) -> Customer:
    """The customer with this id (its owner joined), or a 404: `customer_merged` naming the
    survivor when a merge removed it, else `customer_not_found`. With `request`, a customer
    the caller may not see (crm.api.scoping) is unknown to it, a merged one too."""
    scope = request_customer_scope(request) if request is not None else None
    customers = Customer.objects.select_related("owner").filter(pk=customer_id)
    if scope is not None and not scope.sees_all:
        customers = customers.filter(owner_id=scope.owner_id)
    customer = customers.first()
    if customer is not None:
        return customer
    merge = None
    if scope is None or scope.sees_all:
        merge = CustomerMerge.objects.filter(merged_customer_id=customer_id).first()
    if merge is not None:
        raise NotFound(
            ERROR_CUSTOMER_MERGED,
            gettext("Customer %(id)d was merged into %(survivor)d.")
            % {"id": customer_id, "survivor": merge.survivor_id},
            detail={"survivor_id": merge.survivor_id},
        )
    raise NotFound(ERROR_CUSTOMER_NOT_FOUND, gettext("No such customer."))


# The CRM's parts of the customer lookup, which `console.api.customers` composes with the
# other apps' parts.


@extend_schema_serializer(component_name="CustomerTagOut")
class TagOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tag.id")
    name = serializers.CharField(source="tag.name")
    group = serializers.CharField(source="tag.group.name")
    source = serializers.CharField()  # type: ignore[assignment]
    tagged_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="CustomerGroupOut")
class GroupOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="group.id")
    kind = serializers.CharField(source="group.kind")
    name = serializers.CharField(source="group.name")
    joined_at = serializers.DateTimeField()


class OrderSummarySerializer(serializers.Serializer):
    paid_order_count = serializers.IntegerField()
    refunded_order_count = serializers.IntegerField()
    net_spend = serializers.DecimalField(max_digits=14, decimal_places=2)
    first_paid_at = serializers.DateTimeField(allow_null=True)
    last_paid_at = serializers.DateTimeField(allow_null=True)


class RecentOrderSerializer(serializers.Serializer):
    source = serializers.CharField()  # type: ignore[assignment]
    external_id = serializers.CharField()
    status = serializers.CharField()
    total_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded_amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    paid_at = serializers.DateTimeField(allow_null=True)


@extend_schema_serializer(component_name="CustomerConsentOut")
class ConsentOutSerializer(serializers.Serializer):
    channel = serializers.CharField()
    status = serializers.CharField()
    changed_at = serializers.DateTimeField()


_CUSTOMERS_BULK_REQUEST = inline_serializer(
    "CustomersBulkIn",
    fields={
        "customers": serializers.ListField(
            child=serializers.DictField(),
            help_text=_(
                "Up to API_BULK_MAX_ROWS customers: identities, and any profile fields to set."
            ),
        )
    },
)


class CustomerBulkView(APIView):
    """Create or update up to API_BULK_MAX_ROWS customers named by identities. Rows naming the
    same person are applied in order; customers named together are merged. A row whose
    `source_updated_at` is older than the profile version applied sets nothing (counted in
    `stale`). Counts are of customers."""

    scope_resource = "customers"
    rate_limit_scope = SCOPE_BULK
    customer_scope = "owner"

    @extend_schema(request=_CUSTOMERS_BULK_REQUEST, responses=BulkOutSerializer)
    def post(self, request: Request) -> Response:
        valid, rejected = rows_decode(request, CustomerIn, field="customers")
        valid, rejected = _rows_in_scope(request, valid, rejected)
        counts = {"created": 0, "updated": 0, "unchanged": 0, "stale": 0}
        owner = scope_owner_userid(request)
        if valid:
            outcome = customers_bulk_upsert(
                rows=[
                    CustomerInput(
                        identities=row.keys,
                        # A bound key's customers are its owner's, new ones included.
                        profile=row.profile if owner is None else {**row.profile, "owner": owner},
                        source_updated_at=row.source_updated_at,
                    )
                    for _, row in valid
                ],
                actor=actor_of(request),
            )
            counts = {
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "stale": outcome.stale,
            }
        return Response({**counts, "rejected": rejected})


def _rows_in_scope(
    request: Request,
    valid: list[tuple[int, CustomerIn]],
    rejected: list[dict[str, Any]],
) -> tuple[list[tuple[int, CustomerIn]], list[dict[str, Any]]]:
    """For a caller scoped to one owner: each row naming another owner's customer, or giving
    a customer to another owner, rejected on its own."""
    scope = request_customer_scope(request)
    if scope.sees_all:
        return valid, rejected
    owner = scope_owner_userid(request)
    outside = rows_outside_scope(request, [row.keys for _, row in valid])
    kept: list[tuple[int, CustomerIn]] = []
    refused: list[dict[str, Any]] = []
    for position, (index, row) in enumerate(valid):
        if position in outside:
            refused.append(row_out_of_scope(index))
        elif "owner" in row.profile and row.profile["owner"] != owner:
            refused.append(
                {
                    "index": index,
                    "code": ERROR_OWNER_OUT_OF_SCOPE,
                    "errors": {"owner": [gettext("This key may not give customers to others.")]},
                }
            )
        else:
            kept.append((index, row))
    return kept, sorted([*rejected, *refused], key=lambda row: row["index"])
