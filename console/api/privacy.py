"""The rights of a person under PIPL over the integration API: everything held about one
customer as a JSON file (`GET customers/{id}/export`, scope `personal_data:read`) and its
erasure (`POST customers/{id}/erase`, scope `personal_data:erase`, which no other scope
grants but `*`). Thin: console.services.privacy does the work and records each request."""

from typing import Any

from django.utils.http import content_disposition_header
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from console.models import PrivacyRequest
from console.services.privacy import customer_erase, customer_personal_export
from core.api.auth import (
    PERSONAL_DATA_ERASE_SCOPE,
    PERSONAL_DATA_SCOPE,
    actor_of,
    may_see_personal_data,
)
from core.models import ApiKey
from crm.api.scoping import customer_in_scope_or_404

REASON_MAX_LENGTH = 500


class PrivacyRequestOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrivacyRequest
        fields = [
            "id",
            "kind",
            "customer_id",
            "requested_by",
            "requested_at",
            "completed_at",
            "outcome",
            "reason",
        ]


class EraseInSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=REASON_MAX_LENGTH,
        help_text=_("Why, for the record (the request's reference, say); no personal data."),
    )


class CustomerPersonalExportView(APIView):
    scope = PERSONAL_DATA_SCOPE
    customer_scope = "owner"

    @extend_schema(
        operation_id="customers_personal_export",
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description=_(
                    "Everything held about the customer (PIPL arts. 45, 47), identity values "
                    "unmasked, as an attachment: profile, identities, tags, group_stays, "
                    "orders (with items), interactions, consents, consent_events, metrics, "
                    "lifecycle_transitions, predictions, segment_memberships, "
                    "segment_membership_events, deliveries, link_clicks, conversions, merges."
                ),
            )
        },
    )
    def get(self, request: Request, customer_id: int) -> Response:
        # A staff user of the admin reads it only with the personal-data permission and the
        # right to answer PIPL requests (as on the customer's page).
        if not may_see_personal_data(request) or (
            not isinstance(request.auth, ApiKey)
            and not request.user.has_perm("console.export_personal_data")
        ):
            raise exceptions.PermissionDenied()
        customer_in_scope_or_404(request, customer_id)
        data = customer_personal_export(customer_id=customer_id, actor=actor_of(request))
        response = Response(data)
        filename = f"customer-{customer_id}-personal-data.json"
        response["Content-Disposition"] = content_disposition_header(True, filename) or ""
        return response


class CustomerEraseView(APIView):
    scope = PERSONAL_DATA_ERASE_SCOPE
    customer_scope = "owner"

    @extend_schema(
        operation_id="customers_erase",
        request=EraseInSerializer,
        responses=PrivacyRequestOutSerializer,
        description=_(
            "Erase the customer's personal data (PIPL art. 47): identities (and their hashes), "
            "profile, tags, group stays, interactions, consents, metrics, predictions, "
            "segment membership, deliveries; orders and their items stay, detached from the "
            "person. A second request answers the first one's record and changes nothing."
        ),
    )
    def post(self, request: Request, customer_id: int) -> Response:
        body: Any = request.data if request.data is not None else {}
        serializer = EraseInSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        customer_in_scope_or_404(request, customer_id)
        record = customer_erase(
            customer_id=customer_id,
            actor=actor_of(request),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(PrivacyRequestOutSerializer(record).data)
