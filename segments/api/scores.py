"""Score endpoints: the RFM and lifecycle policies, tier and lifecycle distributions, the
lifecycle transition feed, and recomputation (runs and requests)."""

from collections.abc import Callable
from datetime import date
from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from core.api.pagination import IdCursorPagination
from core.errors import ValidationFailed
from crm.api.scoping import OwnerScopedMixin
from segments.models import (
    LifecyclePolicy,
    LifecycleState,
    LifecycleTransition,
    RecomputeKind,
    RecomputeRun,
    RecomputeStatus,
    RfmPolicy,
    RfmScoringMethod,
)
from segments.selectors import (
    backfill_distributions,
    lifecycle_distribution,
    lifecycle_transition_list,
    recompute_run_list,
    rfm_tier_distribution,
)
from segments.services.policies import (
    lifecycle_policy_active,
    lifecycle_policy_update,
    rfm_policy_active,
    rfm_policy_update,
)
from segments.services.recompute import recompute_check, recompute_enqueue

POLICY_META = ["version", "created_at", "created_by"]


class RfmPolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = RfmPolicy
        fields = [
            *POLICY_META,
            "lookback_days",
            "scoring_method",
            "recency_breakpoints",
            "frequency_breakpoints",
            "monetary_breakpoints",
            "high_score_threshold",
        ]
        read_only_fields = POLICY_META


class RfmPolicyInSerializer(serializers.Serializer):
    """Fields left out keep their current values."""

    lookback_days = serializers.IntegerField(required=False)
    scoring_method = serializers.ChoiceField(choices=RfmScoringMethod.choices, required=False)
    # Within their column (integer): a larger value would reach PostgreSQL and come back as
    # an error naming no field.
    recency_breakpoints = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**31 - 1), required=False
    )
    frequency_breakpoints = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**31 - 1), required=False
    )
    monetary_breakpoints = serializers.ListField(
        child=serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0),
        required=False,
    )
    high_score_threshold = serializers.IntegerField(required=False)


class LifecyclePolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecyclePolicy
        fields = [*POLICY_META, "new_days", "active_days", "sleeping_days", "reactivated_days"]
        read_only_fields = POLICY_META


class LifecyclePolicyInSerializer(serializers.Serializer):
    """Fields left out keep their current values."""

    new_days = serializers.IntegerField(required=False)
    active_days = serializers.IntegerField(required=False)
    sleeping_days = serializers.IntegerField(required=False)
    reactivated_days = serializers.IntegerField(required=False)


class PolicyView(APIView):
    """The active policy. `PUT` writes a new version (fields left out keep their values),
    which queues a full recomputation."""

    scope_resource = "segments"
    out_serializer: type[serializers.ModelSerializer]
    in_serializer: type[serializers.Serializer]
    active: Callable[[], Any]
    update: Callable[..., Any]  # (changes=, actor=) -> the active version

    def get(self, request: Request) -> Response:
        return Response(self.out_serializer(type(self).active()).data)

    def put(self, request: Request) -> Response:
        serializer = self.in_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        policy = type(self).update(changes=serializer.validated_data, actor=actor_of(request))
        return Response(self.out_serializer(policy).data)


@extend_schema_view(
    get=extend_schema(responses=RfmPolicySerializer),
    put=extend_schema(request=RfmPolicyInSerializer, responses=RfmPolicySerializer),
)
class RfmPolicyView(PolicyView):
    out_serializer = RfmPolicySerializer
    in_serializer = RfmPolicyInSerializer
    active = staticmethod(rfm_policy_active)
    update = staticmethod(rfm_policy_update)


@extend_schema_view(
    get=extend_schema(responses=LifecyclePolicySerializer),
    put=extend_schema(request=LifecyclePolicyInSerializer, responses=LifecyclePolicySerializer),
)
class LifecyclePolicyView(PolicyView):
    out_serializer = LifecyclePolicySerializer
    in_serializer = LifecyclePolicyInSerializer
    active = staticmethod(lifecycle_policy_active)
    update = staticmethod(lifecycle_policy_update)


class TierCountSerializer(serializers.Serializer):
    tier = serializers.CharField(allow_null=True)
    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.IntegerField()
    share = serializers.FloatField()


class StateCountSerializer(serializers.Serializer):
    state = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.IntegerField()
    share = serializers.FloatField()


class RfmTierStatsView(APIView):
    """Customers per RFM tier (`tier: null`: no paid order in the window)."""

    scope_resource = "segments"

    @extend_schema(responses=TierCountSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(TierCountSerializer(rfm_tier_distribution(), many=True).data)


class LifecycleStatsView(APIView):
    """Customers per lifecycle state."""

    scope_resource = "segments"

    @extend_schema(responses=StateCountSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(StateCountSerializer(lifecycle_distribution(), many=True).data)


class TransitionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifecycleTransition
        fields = ["id", "customer_id", "from_state", "to_state", "at", "recorded_at", "run_id"]


class TransitionFilter(SelectorFilterSet):
    customer_id = django_filters.NumberFilter(method="noop")
    from_state = django_filters.ChoiceFilter(choices=LifecycleState.choices, method="noop")
    to_state = django_filters.ChoiceFilter(choices=LifecycleState.choices, method="noop")
    recorded_since = django_filters.IsoDateTimeFilter(method="noop")
    after_id = django_filters.NumberFilter(
        method="noop", help_text=_("Only transitions with a greater id: poll with the last seen.")
    )

    class Meta:
        model = LifecycleTransition
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return lifecycle_transition_list(
            customer_id=int(data["customer_id"]) if data.get("customer_id") else None,
            from_state=data.get("from_state") or None,
            to_state=data.get("to_state") or None,
            recorded_since=data.get("recorded_since"),
            after_id=int(data["after_id"]) if data.get("after_id") is not None else None,
        )


class FeedCursorPagination(IdCursorPagination):
    """Oldest first: a consumer keeps the `next` link and polls it for new transitions."""

    ordering = "id"


class TransitionFeedView(OwnerScopedMixin, generics.ListAPIView):
    """Lifecycle transitions as a feed, oldest first, by cursor (what campaigns trigger on).
    A key bound to a staff member reads its owner's customers' transitions only."""

    scope_resource = "segments"
    serializer_class = TransitionSerializer
    filterset_class = TransitionFilter
    pagination_class = FeedCursorPagination
    queryset = LifecycleTransition.objects.all()


class BackfillFiguresSerializer(serializers.Serializer):
    rfm_tiers = TierCountSerializer(many=True)
    lifecycle = StateCountSerializer(many=True)


class RecomputeRunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    backfill_figures = serializers.SerializerMethodField(
        help_text=_(
            "A backfill's customers per RFM tier and per lifecycle state as of its date, "
            "shaped as /stats/rfm-tiers and /stats/lifecycle; null for a live run."
        )
    )
    rfm_policy_version = serializers.IntegerField(
        source="rfm_policy.version", default=None, allow_null=True
    )
    lifecycle_policy_version = serializers.IntegerField(
        source="lifecycle_policy.version", default=None, allow_null=True
    )

    class Meta:
        model = RecomputeRun
        fields = [
            "id",
            "kind",
            "trigger",
            "as_of",
            "status",
            "started_at",
            "finished_at",
            "duration_seconds",
            "customers_processed",
            "rows_changed",
            "transitions_written",
            "error",
            "breakpoints",
            "rfm_policy_version",
            "lifecycle_policy_version",
            "backfill_figures",
        ]

    @extend_schema_field(BackfillFiguresSerializer(allow_null=True))
    def get_backfill_figures(self, run: RecomputeRun) -> dict[str, Any] | None:
        return backfill_distributions(run)


class RecomputeRunFilter(SelectorFilterSet):
    kind = django_filters.ChoiceFilter(choices=RecomputeKind.choices, method="noop")
    status = django_filters.ChoiceFilter(choices=RecomputeStatus.choices, method="noop")

    class Meta:
        model = RecomputeRun
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return recompute_run_list(kind=data.get("kind") or None, status=data.get("status") or None)


class RecomputeInSerializer(serializers.Serializer):
    as_of = serializers.DateField(
        required=False, help_text=_("Compute as if today were this date. Default: today.")
    )
    customer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        min_length=1,
        max_length=100_000,
        help_text=_("Recompute only these customers. Default: everyone."),
    )

    def validate_as_of(self, value: date) -> date:
        try:
            recompute_check(as_of=value, everyone=True)
        except ValidationFailed as refusal:
            raise serializers.ValidationError(refusal.message, code=refusal.code) from None
        return value


class RecomputeAcceptedSerializer(RecomputeInSerializer):
    backfill = serializers.BooleanField(
        help_text=_(
            "True: the date is before that of the latest full run, so every customer is "
            "computed as of it and recorded apart (see backfill_figures of the run); the "
            "current scores, transitions and segments do not change."
        )
    )


class RecomputeView(generics.ListAPIView):
    """`GET`: recomputation runs, newest first. `POST`: queue a recomputation (202); as of a
    date before the latest full run, a backfill of everyone, recorded apart (400
    `backfill_needs_everyone` with customer_ids)."""

    scope_resource = "segments"
    serializer_class = RecomputeRunSerializer
    filterset_class = RecomputeRunFilter
    queryset = RecomputeRun.objects.all()

    @extend_schema(request=RecomputeInSerializer, responses={202: RecomputeAcceptedSerializer})
    def post(self, request: Request) -> Response:
        serializer = RecomputeInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        as_of = serializer.validated_data.get("as_of")
        customer_ids = serializer.validated_data.get("customer_ids")
        is_backfill = recompute_check(as_of=as_of, everyone=customer_ids is None)
        recompute_enqueue(trigger="api", as_of=as_of, customer_ids=customer_ids)
        return Response(
            {**serializer.data, "backfill": is_backfill}, status=status.HTTP_202_ACCEPTED
        )
