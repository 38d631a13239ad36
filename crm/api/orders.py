"""Order endpoints: bulk upsert (idempotent by source + external id), list and detail."""

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from core.api.throttling import SCOPE_BULK
from crm.api.bulk import BulkOutSerializer, rows_decode, rows_last_per_key
from crm.api.scoping import OwnerScopedMixin, rows_refuse_outside_scope
from crm.inputs import OrderIn
from crm.models import Order, OrderItem, OrderStatus
from crm.selectors.orders import order_list
from crm.services.orders import orders_bulk_upsert


class OrderItemOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = OrderItem
        fields = ["line_no", "sku", "name", "category", "quantity", "unit_price"]


class OrderOutSerializer(serializers.ModelSerializer):
    items = OrderItemOutSerializer(many=True, read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "customer_id",
            "source",
            "external_id",
            "status",
            "total_amount",
            "refunded_amount",
            "currency",
            "paid_at",
            "channel",
            "store",
            "source_updated_at",
            "created_at",
            "updated_at",
            "items",
        ]


class OrderFilter(SelectorFilterSet):
    customer_id = django_filters.NumberFilter(method="noop")
    source = django_filters.CharFilter(method="noop")
    status = django_filters.ChoiceFilter(choices=OrderStatus.choices, method="noop")
    paid_since = django_filters.IsoDateTimeFilter(method="noop", help_text=_("Paid at or after."))
    paid_until = django_filters.IsoDateTimeFilter(method="noop", help_text=_("Paid before."))
    updated_since = django_filters.IsoDateTimeFilter(method="noop")

    class Meta:
        model = Order
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return order_list(
            customer_id=data.get("customer_id"),
            source=data.get("source") or None,
            status=data.get("status") or None,
            paid_since=data.get("paid_since"),
            paid_until=data.get("paid_until"),
            updated_since=data.get("updated_since"),
        )


class OrderListView(OwnerScopedMixin, generics.ListAPIView):
    scope_resource = "orders"
    serializer_class = OrderOutSerializer
    filterset_class = OrderFilter
    queryset = Order.objects.all()


class OrderDetailView(OwnerScopedMixin, generics.RetrieveAPIView):
    scope_resource = "orders"
    serializer_class = OrderOutSerializer
    queryset = order_list()
    lookup_url_kwarg = "order_id"


_ORDERS_BULK_REQUEST = inline_serializer(
    "OrdersBulkIn",
    fields={
        "orders": serializers.ListField(
            child=serializers.DictField(),
            help_text=_(
                "Up to API_BULK_MAX_ROWS orders: source, external_id, customer {identities}, "
                "status, total_amount, refunded_amount, currency, paid_at, channel, store, "
                "items [{sku, name, category, quantity, unit_price}]."
            ),
        )
    },
)


class OrderBulkView(APIView):
    """Create or update up to API_BULK_MAX_ROWS orders. Re-sending a batch changes nothing; a
    later version of an order (a refund, say) updates it and replaces its items. A version
    older than the one stored (by `source_updated_at`) is stale: written nowhere, counted in
    `stale`. Without versions, the refunded amount never decreases and the status never moves
    back to paid. Customers are found, or created, from the identities in each row. Bad rows
    are listed by index."""

    scope_resource = "orders"
    rate_limit_scope = SCOPE_BULK
    customer_scope = "owner"

    @extend_schema(request=_ORDERS_BULK_REQUEST, responses=BulkOutSerializer)
    def post(self, request: Request) -> Response:
        valid, rejected = rows_decode(request, OrderIn, field="orders")
        valid, rejected = rows_refuse_outside_scope(
            request, valid, rejected, keys_of=lambda order: order.customer.keys
        )
        valid = rows_last_per_key(
            valid,
            lambda o: (o.source, o.external_id),
            rejected,
            field="external_id",
            version_of=lambda o: o.source_updated_at,
        )
        counts = {"created": 0, "updated": 0, "unchanged": 0, "stale": 0}
        if valid:
            outcome = orders_bulk_upsert(orders=[o for _, o in valid], actor=actor_of(request))
            counts = {
                "created": outcome.created,
                "updated": outcome.updated,
                "unchanged": outcome.unchanged,
                "stale": outcome.stale,
            }
        return Response({**counts, "rejected": rejected})
