"""Interaction endpoints: bulk ingest (idempotent by source + idempotency key) and list."""

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.throttling import SCOPE_BULK
from crm.api.bulk import RejectedRowSerializer, rows_decode, rows_last_per_key
from crm.api.scoping import OwnerScopedMixin, rows_refuse_outside_scope
from crm.inputs import InteractionIn
from crm.models import Interaction, InteractionKind
from crm.services.interactions import interactions_ingest


class InteractionOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = [
            "id",
            "customer_id",
            "kind",
            "occurred_at",
            "properties",
            "source",
            "idempotency_key",
            "source_updated_at",
            "created_at",
        ]


class InteractionFilter(django_filters.FilterSet):
    customer_id = django_filters.NumberFilter()
    kind = django_filters.ChoiceFilter(choices=InteractionKind.choices)
    source = django_filters.CharFilter()
    occurred_since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = Interaction
        fields: list[str] = []


class InteractionListView(OwnerScopedMixin, generics.ListAPIView):
    scope_resource = "interactions"
    serializer_class = InteractionOutSerializer
    filterset_class = InteractionFilter
    queryset = Interaction.objects.all()


class InteractionsBulkOutSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField(
        help_text=_("Already recorded; properties replaced by a newer source_updated_at.")
    )
    unchanged = serializers.IntegerField(help_text=_("Already recorded (same idempotency key)."))
    stale = serializers.IntegerField(
        help_text=_("Already recorded with a newer source_updated_at: written nowhere.")
    )
    rejected = RejectedRowSerializer(many=True)


_INTERACTIONS_BULK_REQUEST = inline_serializer(
    "InteractionsBulkIn",
    fields={
        "interactions": serializers.ListField(
            child=serializers.DictField(),
            help_text=_(
                "Up to API_BULK_MAX_ROWS interactions: customer {identities}, kind, occurred_at, "
                "source, idempotency_key, properties."
            ),
        )
    },
)


class InteractionBulkView(APIView):
    """Record interactions; one already recorded (same source and idempotency key) is left
    as it is, unless it comes with a newer `source_updated_at`: then its properties are
    replaced. Bad rows are listed by index."""

    scope_resource = "interactions"
    rate_limit_scope = SCOPE_BULK
    customer_scope = "owner"

    @extend_schema(request=_INTERACTIONS_BULK_REQUEST, responses=InteractionsBulkOutSerializer)
    def post(self, request: Request) -> Response:
        valid, rejected = rows_decode(request, InteractionIn, field="interactions")
        valid, rejected = rows_refuse_outside_scope(
            request, valid, rejected, keys_of=lambda interaction: interaction.customer.keys
        )
        valid = rows_last_per_key(
            valid,
            lambda i: (i.source, i.idempotency_key),
            rejected,
            field="idempotency_key",
            version_of=lambda i: i.source_updated_at,
        )
        counts = {"created": 0, "updated": 0, "unchanged": 0, "stale": 0}
        if valid:
            outcome = interactions_ingest(
                interactions=[i for _, i in valid], actor=actor_of(request)
            )
            counts = {
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "stale": outcome.stale,
            }
        return Response({**counts, "rejected": rejected})
