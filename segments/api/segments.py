"""Segment endpoints: CRUD, preview without saving, portrait (of a segment or of a rule),
refresh, members (cursor-paginated, with identities), size history, and the segments a
customer is in."""

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from core.api.pagination import IdCursorPagination
from core.errors import NotFound
from core.validators import validate_json_text
from crm.api.customer_refs import CustomerRefsSerializer
from crm.api.customers import CustomerOutSerializer, PersonalDataContextMixin
from crm.api.scoping import customer_in_scope_or_404
from crm.models import Customer
from crm.services.customers import ERROR_CUSTOMER_NOT_FOUND
from crm.services.identities import customers_named
from segments.api.serializers import CustomerSegmentSerializer
from segments.models import Segment, SegmentKind, SegmentSizeSnapshot
from segments.portrait import rule_portrait, segment_portrait
from segments.selectors import (
    customer_memberships,
    segment_list,
    segment_members,
    segment_size_history,
)
from segments.services.segments import (
    segment_create,
    segment_delete,
    segment_get_or_404,
    segment_members_change,
    segment_preview,
    segment_refresh_enqueue,
    segment_update,
)

RULE_HELP = _("A rule tree: see the rule language in the README.")


class SegmentOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "description",
            "kind",
            "rule",
            "rule_version",
            "member_count",
            "refreshed_at",
            "refresh_error",
            "created_by",
            "created_at",
            "updated_at",
        ]


class SegmentInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    kind = serializers.ChoiceField(choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    rule = serializers.JSONField(
        required=False, allow_null=True, validators=[validate_json_text], help_text=RULE_HELP
    )


class SegmentPatchSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128, required=False)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    rule = serializers.JSONField(
        required=False, validators=[validate_json_text], help_text=RULE_HELP
    )


class SegmentFilter(SelectorFilterSet):
    kind = django_filters.ChoiceFilter(choices=SegmentKind.choices, method="noop")
    search = django_filters.CharFilter(method="noop", help_text=_("Name contains."))

    class Meta:
        model = Segment
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return segment_list(kind=data.get("kind") or None, search=data.get("search") or None)


class SegmentListView(generics.ListAPIView):
    """`GET`: segments. `POST`: create one (a dynamic one is materialised after commit)."""

    scope_resource = "segments"
    serializer_class = SegmentOutSerializer
    filterset_class = SegmentFilter
    queryset = Segment.objects.all()

    @extend_schema(request=SegmentInSerializer, responses={201: SegmentOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = SegmentInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        segment = segment_create(
            name=data["name"],
            kind=data["kind"],
            rule=data.get("rule"),
            description=data.get("description", ""),
            actor=actor_of(request),
        )
        return Response(SegmentOutSerializer(segment).data, status=status.HTTP_201_CREATED)


class SegmentDetailView(APIView):
    scope_resource = "segments"

    @extend_schema(responses=SegmentOutSerializer)
    def get(self, request: Request, segment_id: int) -> Response:
        return Response(SegmentOutSerializer(segment_get_or_404(segment_id)).data)

    @extend_schema(request=SegmentPatchSerializer, responses=SegmentOutSerializer)
    def patch(self, request: Request, segment_id: int) -> Response:
        serializer = SegmentPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        segment = segment_update(
            segment_id=segment_id, actor=actor_of(request), **serializer.validated_data
        )
        return Response(SegmentOutSerializer(segment).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, segment_id: int) -> Response:
        segment_delete(segment_id=segment_id, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class PreviewInSerializer(serializers.Serializer):
    rule = serializers.JSONField(validators=[validate_json_text], help_text=RULE_HELP)


class SampleCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    lifecycle_state = serializers.CharField(allow_null=True)
    rfm_tier = serializers.CharField(allow_null=True)


class PreviewOutSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    condition_counts = serializers.ListField(
        child=serializers.IntegerField(),
        help_text=_("Customers each top-level condition matches on its own, in order."),
    )
    sample = SampleCustomerSerializer(many=True)


class SegmentPreviewView(APIView):
    """Size, per-condition counts and 20 sample customers of a rule, nothing saved."""

    scope_resource = "segments"
    post_is_read = True

    @extend_schema(request=PreviewInSerializer, responses=PreviewOutSerializer)
    def post(self, request: Request) -> Response:
        serializer = PreviewInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        preview = segment_preview(rule=serializer.validated_data["rule"])
        return Response(PreviewOutSerializer(preview).data)


class PortraitCellSerializer(serializers.Serializer):
    value = serializers.CharField(
        allow_null=True,
        help_text=_(
            "The value's code (a spend or predicted value band's number from 0, `__others__` "
            "for the values beyond the ten most frequent); null: missing."
        ),
    )
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    count = serializers.IntegerField(
        allow_null=True, help_text=_("Customers of the group; null: fewer than five, not shown.")
    )
    share = serializers.FloatField(allow_null=True, help_text=_("Of the group's size, 0-1."))
    base_count = serializers.IntegerField(allow_null=True)
    base_share = serializers.FloatField(allow_null=True, help_text=_("Of all customers, 0-1."))
    tgi = serializers.IntegerField(
        allow_null=True, help_text=_("share ÷ base_share × 100; null when either is missing.")
    )


class PortraitDimensionSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    is_multi_valued = serializers.BooleanField(
        help_text=_("A customer counts under several values (categories bought).")
    )
    is_estimated = serializers.BooleanField(
        help_text=_("Estimated from a fixed sample of the customers (categories bought).")
    )
    cells = PortraitCellSerializer(many=True)


class PortraitOutSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    base_size = serializers.IntegerField(help_text=_("All customers."))
    base_computed_at = serializers.DateTimeField(
        help_text=_("When the figures of all customers were computed (cached a few minutes).")
    )
    min_cell_size = serializers.IntegerField(
        help_text=_("Cells of fewer customers (but not none) are shown without figures.")
    )
    dimensions = PortraitDimensionSerializer(many=True)


class SegmentPortraitView(APIView):
    """How the segment's current members are distributed over gender, province, city,
    source channel, lifecycle state, RFM tier, spend, predicted value and categories bought,
    each against all customers, with the TGI."""

    scope_resource = "segments"

    @extend_schema(responses=PortraitOutSerializer)
    def get(self, request: Request, segment_id: int) -> Response:
        segment_get_or_404(segment_id)
        return Response(PortraitOutSerializer(segment_portrait(segment_id=segment_id)).data)


class RulePortraitView(APIView):
    """The portrait of the customers a rule matches now, nothing saved."""

    scope_resource = "segments"
    post_is_read = True

    @extend_schema(request=PreviewInSerializer, responses=PortraitOutSerializer)
    def post(self, request: Request) -> Response:
        serializer = PreviewInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        portrait = rule_portrait(rule=serializer.validated_data["rule"])
        return Response(PortraitOutSerializer(portrait).data)


class SegmentRefreshView(APIView):
    """Queue a refresh of the segment's membership (202)."""

    scope_resource = "segments"

    @extend_schema(
        request=None,
        responses={202: inline_serializer("RefreshQueued", {"queued": serializers.BooleanField()})},
    )
    def post(self, request: Request, segment_id: int) -> Response:
        segment_get_or_404(segment_id)
        segment_refresh_enqueue([segment_id])
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class MembersChangeSerializer(CustomerRefsSerializer):
    allows_none = True  # replacing the list with an empty one is allowed
    action = serializers.ChoiceField(
        choices=["add", "remove", "replace"],
        help_text=_("add to, remove from, or replace a static segment's list."),
    )


class MembersChangeOutSerializer(serializers.Serializer):
    size = serializers.IntegerField()
    entered = serializers.IntegerField()
    exited = serializers.IntegerField()
    unknown_identities = serializers.IntegerField()


class SegmentMembersView(PersonalDataContextMixin, generics.ListAPIView):
    """`GET`: members with identities (masked without personal_data:read), newest customer
    first, by cursor. `POST`: change a static segment's list; identities naming nobody are
    counted as unknown."""

    scope_resource = "segments"
    serializer_class = CustomerOutSerializer
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's dry run
            return Customer.objects.none()
        segment_id = self.kwargs["segment_id"]
        segment_get_or_404(segment_id)
        return segment_members(segment_id)

    @extend_schema(request=MembersChangeSerializer, responses=MembersChangeOutSerializer)
    def post(self, request: Request, segment_id: int) -> Response:
        serializer = MembersChangeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer_ids, unknown = customers_named(
            customer_ids=data["customer_ids"],
            identities=data["identities"],
            create_missing=False,
            actor=actor_of(request),
        )
        action = data["action"]
        outcome = segment_members_change(
            segment_id=segment_id,
            add=customer_ids if action == "add" else (),
            remove=customer_ids if action == "remove" else (),
            replace=customer_ids if action == "replace" else None,
            actor=actor_of(request),
        )
        return Response(
            {
                "size": outcome.size,
                "entered": outcome.entered,
                "exited": outcome.exited,
                "unknown_identities": unknown,
            }
        )


class SizeSnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentSizeSnapshot
        fields = ["at", "size", "entered", "exited", "rule_version"]


class SnapshotPagination(IdCursorPagination):
    ordering = "-at"


class SegmentHistoryView(generics.ListAPIView):
    """The segment's size after each refresh, newest first."""

    scope_resource = "segments"
    serializer_class = SizeSnapshotSerializer
    pagination_class = SnapshotPagination

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's dry run
            return SegmentSizeSnapshot.objects.none()
        segment_id = self.kwargs["segment_id"]
        segment_get_or_404(segment_id)
        return segment_size_history(segment_id)


class CustomerSegmentsView(APIView):
    """The segments a customer is in now, with when it entered each."""

    scope_resource = "segments"
    customer_scope = "owner"

    @extend_schema(responses=CustomerSegmentSerializer(many=True))
    def get(self, request: Request, customer_id: int) -> Response:
        if not Customer.objects.filter(pk=customer_id).exists():
            raise NotFound(ERROR_CUSTOMER_NOT_FOUND, str(_("No such customer.")))
        customer_in_scope_or_404(request, customer_id)
        memberships = customer_memberships(customer_id)
        return Response(CustomerSegmentSerializer(memberships, many=True).data)
