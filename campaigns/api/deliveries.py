"""Delivery endpoints: a campaign's deliveries (filter by status, reason, holdout, variant) and
a customer's recent deliveries across campaigns (contact pressure). Both newest first, by
cursor."""

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers

from campaigns.models import Delivery, DeliveryReason, DeliveryStatus
from campaigns.selectors import customer_delivery_list, delivery_list
from campaigns.services.campaigns import campaign_get_or_404
from core.api.filters import SelectorFilterSet
from core.api.pagination import IdCursorPagination
from core.errors import NotFound
from crm.api.scoping import customer_in_scope_or_404
from crm.models import Customer
from crm.services.customers import ERROR_CUSTOMER_NOT_FOUND

CONTACT_PRESSURE_DAYS = 30
CONTACT_PRESSURE_MAX_DAYS = 365


@extend_schema_field(OpenApiTypes.INT)
class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class DeliveryOutSerializer(serializers.ModelSerializer):
    variant = serializers.CharField(
        source="variant_name", allow_null=True, read_only=True, help_text=_("Variant name.")
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "customer_id",
            "step",
            "variant",
            "is_holdout",
            "status",
            "reason",
            "rule_id",
            "group_id",
            "planned_at",
            "due_at",
            "reserved_at",
            "sent_at",
            "attempts",
            "error",
        ]


class DeliveryFilter(SelectorFilterSet):
    status = django_filters.ChoiceFilter(choices=DeliveryStatus.choices, method="noop")
    reason = django_filters.ChoiceFilter(choices=DeliveryReason.choices, method="noop")
    is_holdout = django_filters.BooleanFilter(method="noop")
    variant = django_filters.CharFilter(method="noop", help_text=_("Variant name."))

    class Meta:
        model = Delivery
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return delivery_list(
            campaign_id=self.request.resolver_match.kwargs["campaign_id"],
            status=data.get("status") or None,
            reason=data.get("reason") or None,
            is_holdout=data.get("is_holdout"),
            variant=data.get("variant") or None,
        )


class CampaignDeliveryListView(generics.ListAPIView):
    """A campaign's deliveries, one per customer planned, newest first."""

    scope_resource = "campaigns"
    serializer_class = DeliveryOutSerializer
    filterset_class = DeliveryFilter
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema, no request
            return Delivery.objects.none()
        campaign_id = self.kwargs["campaign_id"]
        campaign_get_or_404(campaign_id)
        return delivery_list(campaign_id=campaign_id)


class CustomerDeliveryOutSerializer(serializers.ModelSerializer):
    campaign_name = serializers.CharField(read_only=True)
    channel = serializers.CharField(read_only=True)
    variant = serializers.CharField(source="variant_name", allow_null=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "campaign_id",
            "campaign_name",
            "channel",
            "step",
            "variant",
            "is_holdout",
            "status",
            "reason",
            "planned_at",
            "reserved_at",
            "sent_at",
        ]


class CustomerDeliveryFilter(SelectorFilterSet):
    days = IntegerFilter(
        method="noop",
        min_value=1,
        max_value=CONTACT_PRESSURE_MAX_DAYS,
        help_text=_("Deliveries planned, reserved or sent in the last this many days (30)."),
    )

    class Meta:
        model = Delivery
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        days = data.get("days") or CONTACT_PRESSURE_DAYS
        return customer_delivery_list(
            customer_id=self.request.resolver_match.kwargs["customer_id"],
            since=timezone.now() - timedelta(days=days),
        )


class CustomerDeliveryListView(generics.ListAPIView):
    """Contact pressure: a customer's deliveries of every campaign in the last `days` days,
    newest first."""

    scope_resource = "campaigns"
    customer_scope = "owner"
    serializer_class = CustomerDeliveryOutSerializer
    filterset_class = CustomerDeliveryFilter
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema, no request
            return Delivery.objects.none()
        customer_id = self.kwargs["customer_id"]
        if not Customer.objects.filter(pk=customer_id).exists():
            raise NotFound(ERROR_CUSTOMER_NOT_FOUND, str(_("No such customer.")))
        customer_in_scope_or_404(self.request, customer_id)
        return customer_delivery_list(
            customer_id=customer_id,
            since=timezone.now() - timedelta(days=CONTACT_PRESSURE_DAYS),
        )
