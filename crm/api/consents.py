"""Consent endpoints: record an opt-in or opt-out, read current states and their history."""

from typing import Any

import django_filters
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.auth import actor_of
from core.api.pagination import IdCursorPagination
from core.validators import validate_event_time
from crm.api.customers import customer_or_404
from crm.api.identities import IdentityListField
from crm.api.scoping import OwnerScopedMixin, refs_in_scope_or_404
from crm.models import Consent, ConsentChannel, ConsentEvent, ConsentStatus
from crm.services.consents import consent_record


class ConsentInSerializer(serializers.Serializer):
    customer_id = serializers.IntegerField(required=False, min_value=1)
    identities = IdentityListField(required=False)
    channel = serializers.ChoiceField(choices=ConsentChannel.choices)
    status = serializers.ChoiceField(choices=ConsentStatus.choices)
    source = serializers.CharField(max_length=32)  # type: ignore[assignment]
    occurred_at = serializers.DateTimeField(
        required=False,
        validators=[validate_event_time],
        help_text=_("When the customer decided; now when absent."),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("customer_id" in attrs) == ("identities" in attrs):
            raise serializers.ValidationError(
                {"customer_id": [_("Give either customer_id or identities.")]},
                code="customer_reference",
            )
        return attrs


class ConsentOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["customer_id", "channel", "status", "source", "changed_at"]


class ConsentRecordOutSerializer(ConsentOutSerializer):
    is_recorded = serializers.BooleanField(
        help_text=_("False when the same event had been reported before.")
    )
    is_applied = serializers.BooleanField(
        help_text=_("False when a later decision already stands; the state shown is that one.")
    )

    class Meta(ConsentOutSerializer.Meta):
        fields = [*ConsentOutSerializer.Meta.fields, "is_recorded", "is_applied"]


class ConsentEventOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentEvent
        fields = ["id", "customer_id", "channel", "status", "source", "occurred_at", "recorded_at"]


class ConsentFilter(django_filters.FilterSet):
    customer_id = django_filters.NumberFilter()
    channel = django_filters.ChoiceFilter(choices=ConsentChannel.choices)
    status = django_filters.ChoiceFilter(choices=ConsentStatus.choices)
    changed_since = django_filters.IsoDateTimeFilter(field_name="changed_at", lookup_expr="gte")

    class Meta:
        model = Consent
        fields: list[str] = []


class ConsentEventFilter(django_filters.FilterSet):
    customer_id = django_filters.NumberFilter()
    channel = django_filters.ChoiceFilter(choices=ConsentChannel.choices)

    class Meta:
        model = ConsentEvent
        fields: list[str] = []


class ConsentView(OwnerScopedMixin, generics.ListAPIView):
    """`GET`: current consent states (no row: no decision recorded). `POST`: record one
    decision; the response shows the state that stands after it."""

    scope_resource = "consents"
    serializer_class = ConsentOutSerializer
    filterset_class = ConsentFilter
    queryset = Consent.objects.all()

    @extend_schema(request=ConsentInSerializer, responses=ConsentRecordOutSerializer)
    def post(self, request: Request) -> Response:
        serializer = ConsentInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if "customer_id" in data:
            customer_or_404(data["customer_id"], request)
        else:
            refs_in_scope_or_404(request, customer_ids=[], identities=data["identities"])
        outcome = consent_record(
            customer_id=data.get("customer_id"),
            identities=data.get("identities"),
            channel=data["channel"],
            status=data["status"],
            source=data["source"],
            occurred_at=data.get("occurred_at") or timezone.now(),
            actor=actor_of(request),
        )
        body = {
            **ConsentOutSerializer(outcome.consent).data,
            "is_recorded": outcome.is_recorded,
            "is_applied": outcome.is_applied,
        }
        return Response(
            body, status=status.HTTP_201_CREATED if outcome.is_recorded else status.HTTP_200_OK
        )


class EventCursorPagination(IdCursorPagination):
    ordering = "-occurred_at"  # nearly unique; the cursor breaks ties by offset


class ConsentEventListView(OwnerScopedMixin, generics.ListAPIView):
    """Consent history as reported, newest decision first."""

    scope_resource = "consents"
    pagination_class = EventCursorPagination
    serializer_class = ConsentEventOutSerializer
    filterset_class = ConsentEventFilter
    queryset = ConsentEvent.objects.all()
