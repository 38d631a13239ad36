"""The customer lookup of the integration API: a customer by id (read, partial update) or by
one identity (read, upsert), answered with the 360° view that composes the CRM's profile,
tags, groups, orders and consents with the segmentation app's metrics, predictions and
segments.

An identity travels in the request body (`POST customers/lookup`, `POST customers/by-identity`)
so that no phone number or WeCom id lands in an access log; the routes that carry it in the
path (`GET`/`PUT customers/by-identity/<provider>/<value>`) stay for compatibility, deprecated.
Both forms of a lookup, and both forms of an upsert, run through one function each
(`identity_lookup_response`, `identity_upsert_response`)."""

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of, may_see_personal_data
from core.api.throttling import SCOPE_IDENTITY_LOOKUP
from core.errors import NotFound, ValidationFailed
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
from crm.api.scoping import (
    ERROR_OWNER_OUT_OF_SCOPE,
    customer_visible,
    refs_in_scope_or_404,
    scope_owner_userid,
)
from crm.models import Customer
from crm.personal_data import IdentityKey
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
    customer_scope = "owner"

    @extend_schema(responses=CustomerDetailSerializer)
    def get(self, request: Request, customer_id: int) -> Response:
        return Response(_detail_payload(request, customer_or_404(customer_id, request)))

    @extend_schema(request=ProfileInSerializer, responses=CustomerDetailSerializer)
    def patch(self, request: Request, customer_id: int) -> Response:
        serializer = ProfileInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        customer_or_404(customer_id, request)
        profile = _profile_in_scope(request, serializer.validated_data)
        customer_update(customer_id=customer_id, profile=profile, actor=actor_of(request))
        return Response(_detail_payload(request, customer_or_404(customer_id, request)))


_NAMESPACE_PARAMETER = OpenApiParameter(
    "namespace", str, description="Corp id (wecom), appid (openid) or source system (external)."
)
LOOKUP_ROUTE = "customer-lookup"
IDENTITY_UPSERT_ROUTE = "customer-identity-upsert"


class IdentityLookupInSerializer(IdentitySerializer):
    """One identity naming the customer looked up or upserted: `{"provider", "namespace",
    "value"}`; `validated_data` is its `IdentityKey`."""

    is_sensitive = None  # type: ignore[assignment]  # a lookup names, it does not classify


class CustomerIdentityUpsertInSerializer(CustomerUpsertInSerializer):
    identity = IdentityLookupInSerializer(help_text=_("The identity naming the customer."))


def identity_probe_scope(provider: Any) -> str | None:
    """A lookup (or an upsert, 200 against 201) answers whether a guessed phone number
    exists; the other providers' values are not guessable from their masks."""
    return SCOPE_IDENTITY_LOOKUP if provider == "phone" else None


def identity_key_of(*, provider: str, value: str, namespace: str) -> IdentityKey:
    serializer = IdentityLookupInSerializer(
        data={"provider": provider, "value": value, "namespace": namespace}
    )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data  # type: ignore[return-value]


def identity_lookup_response(request: Request, key: IdentityKey) -> Response:
    """The lookup by identity, whichever route carried the identity: the one place where a
    scope, a masking or an audit of it is decided."""
    customer = customer_find_by_identity(key)
    if customer is None or not customer_visible(request, customer):
        raise NotFound(ERROR_CUSTOMER_NOT_FOUND, gettext("No customer has this identity."))
    return Response(_detail_payload(request, customer))


def identity_upsert_response(
    request: Request, key: IdentityKey, profile: dict[str, Any]
) -> Response:
    """The upsert by identity, whichever route carried the identity: `profile` holds the
    validated fields of `CustomerUpsertInSerializer` (more identities included)."""
    profile = dict(profile)
    extra_identities = profile.pop("identities", [])
    refs_in_scope_or_404(request, customer_ids=[], identities=[key, *extra_identities])
    profile = _profile_in_scope(request, profile)
    customer, created = customer_upsert(
        identities=[key, *extra_identities], profile=profile, actor=actor_of(request)
    )
    return Response(
        _detail_payload(request, customer),
        status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


def _body_field(request: Request, *path: str) -> Any:
    """A field of the JSON body, or None whatever the body's shape (for the rate limit,
    which runs before the body is validated)."""
    value: Any = request.data
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


_DEPRECATED_PATH = _(
    "Deprecated: the identity in the path lands in every access log on the way (web server, "
    "proxies). Use `POST /api/v1/customers/lookup` and `POST /api/v1/customers/by-identity`, "
    "which carry it in the body. Answers carry `Deprecation: true` and a `Link` to the new route."
)


class CustomerByIdentityView(APIView):
    """`GET` looks a customer up by one identity (what a WeCom sidebar needs in one call);
    `PUT` creates or updates the customer that identity names. Both carry the identity in
    the path: deprecated for the body-carrying routes, which answer the same."""

    scope_resource = "customers"
    customer_scope = "owner"

    def probe_rate_limit_scope(self, request: Request) -> str | None:
        return identity_probe_scope(self.kwargs.get("provider"))

    def _key(self, request: Request, provider: str, value: str) -> IdentityKey:
        return identity_key_of(
            provider=provider, value=value, namespace=request.query_params.get("namespace", "")
        )

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        successor = LOOKUP_ROUTE if request.method in ("GET", "HEAD") else IDENTITY_UPSERT_ROUTE
        response["Deprecation"] = "true"
        response["Link"] = f'<{reverse(successor)}>; rel="successor-version"'
        return response

    @extend_schema(
        parameters=[_NAMESPACE_PARAMETER],
        responses=CustomerDetailSerializer,
        deprecated=True,
        description=_DEPRECATED_PATH,
    )
    def get(self, request: Request, provider: str, value: str) -> Response:
        return identity_lookup_response(request, self._key(request, provider, value))

    @extend_schema(
        parameters=[_NAMESPACE_PARAMETER],
        request=CustomerUpsertInSerializer,
        responses=CustomerDetailSerializer,
        deprecated=True,
        description=_DEPRECATED_PATH,
    )
    def put(self, request: Request, provider: str, value: str) -> Response:
        key = self._key(request, provider, value)
        serializer = CustomerUpsertInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return identity_upsert_response(request, key, serializer.validated_data)


class CustomerLookupView(APIView):
    """`POST {"provider", "namespace", "value"}`: the customer that identity names, answered
    as `GET customers/by-identity/<provider>/<value>` answers, the identity kept out of the
    URL. Read-only: it needs `customers:read`."""

    scope_resource = "customers"
    customer_scope = "owner"
    post_is_read = True

    def probe_rate_limit_scope(self, request: Request) -> str | None:
        return identity_probe_scope(_body_field(request, "provider"))

    @extend_schema(request=IdentityLookupInSerializer, responses=CustomerDetailSerializer)
    def post(self, request: Request) -> Response:
        serializer = IdentityLookupInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return identity_lookup_response(request, serializer.validated_data)  # type: ignore[arg-type]


class CustomerIdentityUpsertView(APIView):
    """`POST {"identity": {...}, profile fields..., "identities": [...]}`: creates (201) or
    updates (200) the customer the identity names, as `PUT customers/by-identity/<provider>/
    <value>` does, the identity kept out of the URL."""

    scope_resource = "customers"
    customer_scope = "owner"

    def probe_rate_limit_scope(self, request: Request) -> str | None:
        return identity_probe_scope(_body_field(request, "identity", "provider"))

    @extend_schema(
        request=CustomerIdentityUpsertInSerializer,
        responses={201: CustomerDetailSerializer, 200: CustomerDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = CustomerIdentityUpsertInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = dict(serializer.validated_data)
        key = profile.pop("identity")
        return identity_upsert_response(request, key, profile)


def _profile_in_scope(request: Request, profile: dict[str, Any]) -> dict[str, Any]:
    """For a key bound to a staff member: its customers stay (or become) that owner's; a
    profile naming another owner is refused."""
    owner = scope_owner_userid(request)
    if owner is None:
        return profile
    if profile.get("owner", owner) != owner:
        raise ValidationFailed(
            ERROR_OWNER_OUT_OF_SCOPE,
            gettext("This key may not give customers to others."),
            detail={"owner": [gettext("This key may not give customers to others.")]},
        )
    return {**profile, "owner": owner}
