"""The customer lookup of the integration API: a customer by id (read, partial update) or by
one identity (read, upsert), answered with the 360° view that composes the CRM's profile,
tags, groups, orders and consents with the segmentation app's metrics, predictions and
segments."""

from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of, may_see_personal_data
from core.api.throttling import SCOPE_IDENTITY_LOOKUP
from core.errors import NotFound
from core.services.audit import personal_data_view_record
from crm.api.customers import (
    ConsentOutSerializer,
    CustomerOutSerializer,
    CustomerUpsertInSerializer,
    GroupOutSerializer,
    OrderSummarySerializer,
    ProfileInSerializer,
    RecentOrderSerializer,
    TagOutSerializer,
    customer_or_404,
)
from crm.api.identities import IdentitySerializer
from crm.models import Customer
from crm.selectors.customers import customer_find_by_identity, customer_profile_for_sidebar
from crm.services.customers import ERROR_CUSTOMER_NOT_FOUND, customer_update, customer_upsert
from segments.api.serializers import (
    CustomerMetricsSerializer,
    CustomerPredictionSerializer,
    CustomerSegmentSerializer,
)
from segments.selectors import customer_scores_for_sidebar


class CustomerDetailSerializer(serializers.Serializer):
    customer = CustomerOutSerializer()
    tags = TagOutSerializer(many=True)
    groups = GroupOutSerializer(many=True)
    order_summary = OrderSummarySerializer()
    recent_orders = RecentOrderSerializer(many=True)
    consents = ConsentOutSerializer(many=True)
    metrics = CustomerMetricsSerializer(
        allow_null=True, help_text=_("Null until the customer's first recomputation.")
    )
    predictions = CustomerPredictionSerializer(
        allow_null=True, help_text=_("Null for a customer never scored (one who never paid).")
    )
    segments = CustomerSegmentSerializer(many=True)


def _detail_payload(request: Request, customer: Customer) -> dict[str, Any]:
    """The 360° answer of every customer endpoint here; with unmasked identities and birthday
    (personal_data:read) audited as one view of the customer's personal data."""
    context = {"may_see_personal_data": may_see_personal_data(request)}
    if context["may_see_personal_data"]:
        personal_data_view_record(actor=actor_of(request), customer_ids=[customer.pk])
    payload = {
        "customer": customer,
        **customer_profile_for_sidebar(customer),
        **customer_scores_for_sidebar(customer.pk),
    }
    return CustomerDetailSerializer(payload, context=context).data


class CustomerDetailView(APIView):
    scope_resource = "customers"

    @extend_schema(responses=CustomerDetailSerializer)
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(_detail_payload(request, customer_or_404(customer_id)))

    @extend_schema(request=ProfileInSerializer, responses=CustomerDetailSerializer)
    def patch(self, request: Request, customer_id: int) -> Response:
        serializer = ProfileInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer_or_404(customer_id)
        customer_update(
            customer_id=customer_id, profile=serializer.validated_data, actor=actor_of(request)
        )
        return Response(_detail_payload(request, customer_or_404(customer_id)))


_NAMESPACE_PARAMETER = OpenApiParameter(
    "namespace", str, description="Corp id (wecom), appid (openid) or source system (external)."
)


class CustomerByIdentityView(APIView):
    """`GET` looks a customer up by one identity (what a WeCom sidebar needs in one call);
    `PUT` creates or updates the customer that identity names."""

    scope_resource = "customers"

    def probe_rate_limit_scope(self, request: Request) -> str | None:
        """A lookup (or an upsert, 200 against 201) answers whether a guessed phone number
        exists; the other providers' values are not guessable from their masks."""
        return SCOPE_IDENTITY_LOOKUP if self.kwargs.get("provider") == "phone" else None

    def _key(self, request: Request, provider: str, value: str) -> Any:
        serializer = IdentitySerializer(
            data={
                "provider": provider,
                "value": value,
                "namespace": request.query_params.get("namespace", ""),
            }
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(parameters=[_NAMESPACE_PARAMETER], responses=CustomerDetailSerializer)
    def get(self, request: Request, provider: str, value: str) -> Response:
        customer = customer_find_by_identity(self._key(request, provider, value))
        if customer is None:
            raise NotFound(ERROR_CUSTOMER_NOT_FOUND, gettext("No customer has this identity."))
        return Response(_detail_payload(request, customer))

    @extend_schema(
        parameters=[_NAMESPACE_PARAMETER],
        request=CustomerUpsertInSerializer,
        responses=CustomerDetailSerializer,
    )
    def put(self, request: Request, provider: str, value: str) -> Response:
        key = self._key(request, provider, value)
        serializer = CustomerUpsertInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = dict(serializer.validated_data)
        extra_identities = profile.pop("identities", [])
        customer, created = customer_upsert(
            identities=[key, *extra_identities], profile=profile, actor=actor_of(request)
        )
        return Response(
            _detail_payload(request, customer),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )
