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


class CustomerPredictionSerializer(serializers.Serializer):
    """The customer's latest predictions: lifetime value and expected paid orders over the
    lifetime-value horizon, the probability of still being a customer, the churn risk and the
    behaviour cluster (null where a model is not fitted yet)."""

    predicted_value = serializers.DecimalField(
        source="prediction.predicted_value", max_digits=14, decimal_places=2, allow_null=True
    )
    expected_purchases = serializers.DecimalField(
        source="prediction.expected_purchases", max_digits=10, decimal_places=3, allow_null=True
    )
    p_alive = serializers.DecimalField(
        source="prediction.p_alive", max_digits=5, decimal_places=4, allow_null=True
    )
    churn_risk = serializers.DecimalField(
        source="prediction.churn_risk", max_digits=5, decimal_places=4, allow_null=True
    )
    cluster = serializers.IntegerField(source="prediction.cluster", allow_null=True)
    cluster_description = serializers.CharField(allow_null=True)
    scored_at = serializers.DateTimeField(source="prediction.scored_at")
