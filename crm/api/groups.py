"""Group (社群) endpoints: CRUD with current member counts, membership list and sync."""

from typing import Any

import django_filters
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.auth import ERROR_OWNER_SCOPE, actor_of
from core.api.filters import SelectorFilterSet
from core.errors import NotFound
from core.validators import validate_event_time
from crm.api.customer_refs import CustomerRefsSerializer
from crm.api.scoping import OwnerScopedMixin, OwnerScopeRefused, request_customer_scope
from crm.models import Group, GroupKind, GroupMembership
from crm.selectors.groups import group_list, group_memberships
from crm.services.groups import (
    ERROR_GROUP_NOT_FOUND,
    group_create,
    group_delete,
    group_members_sync,
    group_update,
)


class GroupOutSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(
        source="owner.wecom_userid", default=None, allow_null=True, read_only=True
    )
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Group
        fields = ["id", "kind", "external_id", "name", "owner", "created_at", "member_count"]


class GroupInSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=GroupKind.choices)
    external_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=128)
    owner = serializers.CharField(
        max_length=64, required=False, help_text=_("WeCom userid of the group owner.")
    )


class GroupUpdateInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=128, required=False)
    owner = serializers.CharField(max_length=64, required=False)


class GroupFilter(SelectorFilterSet):
    kind = django_filters.ChoiceFilter(choices=GroupKind.choices, method="noop")
    search = django_filters.CharFilter(method="noop", help_text=_("Name contains."))

    class Meta:
        model = Group
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return group_list(
            kind=data.get("kind") or None,
            search=data.get("search") or None,
            members_in=request_customer_scope(self.request),
        )


def _group_out(group_id: int) -> dict[str, Any]:
    return GroupOutSerializer(group_list().get(pk=group_id)).data


class GroupListView(generics.ListAPIView):
    """Groups with their current member counts (of a bound key's owner's, for such a key)."""

    scope_resource = "groups"
    customer_scope = "reads"
    serializer_class = GroupOutSerializer
    filterset_class = GroupFilter
    queryset = Group.objects.all()

    @extend_schema(request=GroupInSerializer, responses={201: GroupOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = GroupInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = group_create(**serializer.validated_data)
        return Response(_group_out(group.pk), status=status.HTTP_201_CREATED)


class GroupDetailView(generics.RetrieveAPIView):
    scope_resource = "groups"
    customer_scope = "reads"
    serializer_class = GroupOutSerializer
    queryset = group_list()
    lookup_url_kwarg = "group_id"

    def get_queryset(self) -> Any:
        return group_list(members_in=request_customer_scope(self.request))

    @extend_schema(request=GroupUpdateInSerializer, responses=GroupOutSerializer)
    def patch(self, request: Request, group_id: int) -> Response:
        serializer = GroupUpdateInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group_update(group_id=group_id, **serializer.validated_data)
        return Response(_group_out(group_id))

    def delete(self, request: Request, group_id: int) -> Response:
        group_delete(group_id=group_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembershipOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = GroupMembership
        fields = ["id", "customer_id", "joined_at", "left_at"]


class MembersSyncInSerializer(CustomerRefsSerializer):
    allows_none = True  # everyone left
    observed_at = serializers.DateTimeField(
        required=False,
        validators=[validate_event_time],
        help_text=_("When the member list was read; now when absent."),
    )


class MembersSyncOutSerializer(serializers.Serializer):
    joined = serializers.IntegerField()
    left = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    stale = serializers.BooleanField(
        help_text=_("Observed before the list applied last: nothing was changed.")
    )


class GroupMembersView(OwnerScopedMixin, generics.ListAPIView):
    """`GET`: the current members (`?include_left=true`: every stay, past ones too).
    `PUT`: the full member list; joins and leaves are recorded, history kept."""

    scope_resource = "groups"
    serializer_class = MembershipOutSerializer

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI schema's dry run
            return GroupMembership.objects.none()
        group_id = self.kwargs["group_id"]
        if not Group.objects.filter(pk=group_id).exists():
            raise NotFound(ERROR_GROUP_NOT_FOUND, gettext("No such group."))
        include_left = self.request.query_params.get("include_left") in ("true", "1")
        return group_memberships(group_id=group_id, include_left=include_left)

    @extend_schema(parameters=[OpenApiParameter("include_left", bool)])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(request=MembersSyncInSerializer, responses=MembersSyncOutSerializer)
    def put(self, request: Request, group_id: int) -> Response:
        if not request_customer_scope(request).sees_all:
            # The full member list names every owner's customers: not for one owner's key.
            raise OwnerScopeRefused(
                ERROR_OWNER_SCOPE, gettext("A key bound to a staff member may not sync members.")
            )
        serializer = MembersSyncInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        outcome = group_members_sync(
            group_id=group_id,
            customer_ids=data["customer_ids"],
            identities=data["identities"],
            observed_at=data.get("observed_at") or timezone.now(),
            actor=actor_of(request),
        )
        return Response(
            {
                "joined": outcome.joined,
                "left": outcome.left,
                "unchanged": outcome.unchanged,
                "stale": outcome.is_stale,
            }
        )
