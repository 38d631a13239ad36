"""Serializers other apps' endpoints embed: a customer's metrics and segments."""

from django.utils import timezone
from rest_framework import serializers

from segments.models import CustomerMetrics, SegmentMembership
from segments.selectors import days_since


class CustomerMetricsSerializer(serializers.ModelSerializer):
    """Codes in English (`rfm_tier`, `lifecycle_state`); scores are null without a paid order
    in the RFM window."""

    days_since_last_order = serializers.SerializerMethodField()

    class Meta:
        model = CustomerMetrics
        fields = [
            "r_score",
            "f_score",
            "m_score",
            "rfm_tier",
            "lifecycle_state",
            "lifecycle_since",
            "previous_lifecycle_state",
            "first_paid_at",
            "last_paid_at",
            "days_since_last_order",
            "orders_in_window",
            "net_spend_in_window",
            "lifetime_orders",
            "lifetime_net_spend",
            "avg_order_value",
            "avg_days_between_orders",
            "changed_at",
        ]

    def get_days_since_last_order(self, metrics: CustomerMetrics) -> int | None:
        return days_since(metrics.last_paid_at, today=timezone.localdate())


class CustomerSegmentSerializer(serializers.ModelSerializer):
    """A segment a customer is in, with when it entered and by which rule version."""

    id = serializers.IntegerField(source="segment.id")
    name = serializers.CharField(source="segment.name")
    kind = serializers.CharField(source="segment.kind")

    class Meta:
        model = SegmentMembership
        fields = ["id", "name", "kind", "rule_version", "entered_at"]
