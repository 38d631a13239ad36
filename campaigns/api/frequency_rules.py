"""Frequency rule endpoints: list (filter by active and channel), create, read, change,
delete. Validation is the rule model's, shared with the admin."""

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import CalendarUnit, Channel, FrequencyRule, OnHit, RuleScope, WindowKind
from campaigns.selectors import frequency_rule_list
from campaigns.services.frequency_rules import (
    EDITABLE_FIELDS,
    frequency_rule_create,
    frequency_rule_delete,
    frequency_rule_get_or_404,
    frequency_rule_update,
)
from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet


class FrequencyRuleOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = FrequencyRule
        fields = ["id", *EDITABLE_FIELDS, "is_platform_preset", "created_at", "updated_at"]


class FrequencyRuleInSerializer(serializers.Serializer):
    """The shape of each field; how they fit together is checked by the rule itself. With
    `partial=True` (PATCH) fields left out keep their values."""

    name = serializers.CharField(max_length=128)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    scope = serializers.ChoiceField(choices=RuleScope.choices)
    channel = serializers.ChoiceField(choices=Channel.choices, required=False, allow_blank=True)
    label = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.label
        max_length=64, required=False, allow_blank=True
    )
    max_count = serializers.IntegerField(min_value=1)
    window_kind = serializers.ChoiceField(choices=WindowKind.choices)
    window_hours = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    calendar_unit = serializers.ChoiceField(
        choices=CalendarUnit.choices, required=False, allow_blank=True
    )
    on_hit = serializers.ChoiceField(choices=OnHit.choices, required=False)
    max_delay_hours = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class FrequencyRuleFilter(SelectorFilterSet):
    is_active = django_filters.BooleanFilter(method="noop")
    channel = django_filters.ChoiceFilter(
        choices=Channel.choices,
        method="noop",
        help_text=_("Rules that may apply to a send on this channel."),
    )

    class Meta:
        model = FrequencyRule
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return frequency_rule_list(
            is_active=data.get("is_active"), channel=data.get("channel") or None
        )


class FrequencyRuleListView(generics.ListAPIView):
    """`GET`: frequency rules. `POST`: create one."""

    scope_resource = "campaigns"
    serializer_class = FrequencyRuleOutSerializer
    filterset_class = FrequencyRuleFilter
    queryset = FrequencyRule.objects.all()

    @extend_schema(request=FrequencyRuleInSerializer, responses={201: FrequencyRuleOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = FrequencyRuleInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        rule = frequency_rule_create(actor=actor_of(request), **serializer.validated_data)
        return Response(FrequencyRuleOutSerializer(rule).data, status=status.HTTP_201_CREATED)


class FrequencyRuleDetailView(APIView):
    scope_resource = "campaigns"

    @extend_schema(responses=FrequencyRuleOutSerializer)
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(FrequencyRuleOutSerializer(frequency_rule_get_or_404(rule_id)).data)

    @extend_schema(request=FrequencyRuleInSerializer, responses=FrequencyRuleOutSerializer)
    def patch(self, request: Request, rule_id: int) -> Response:
        serializer = FrequencyRuleInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        rule = frequency_rule_update(
            rule_id=rule_id, actor=actor_of(request), **serializer.validated_data
        )
        return Response(FrequencyRuleOutSerializer(rule).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        frequency_rule_delete(rule_id=rule_id, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)
