"""Tag endpoints: tag groups and tags (CRUD, with counts), bulk assign and remove."""

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from crm.api.customer_refs import CustomerRefsSerializer
from crm.api.scoping import refs_in_scope_or_404, request_customer_scope
from crm.models import Tag, TagGroup, TagSource
from crm.selectors.tags import tag_group_list, tag_list
from crm.services.identities import customers_named
from crm.services.tags import (
    TagRef,
    tag_create,
    tag_delete,
    tag_group_create,
    tag_group_delete,
    tag_group_update,
    tag_update,
    tags_assign,
    tags_remove,
    tags_resolve,
)


class TagGroupOutSerializer(serializers.ModelSerializer):
    tag_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = TagGroup
        fields = ["id", "name", "is_exclusive", "description", "created_at", "tag_count"]
        fields += ["is_wecom_mirrored", "wecom_group_id"]
        # Set by the mirror of WeCom's corp tags only (crm.wecom.tags).
        read_only_fields = ["wecom_group_id"]


class TagGroupInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    is_exclusive = serializers.BooleanField(required=False, default=False)
    is_wecom_mirrored = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_(
            "Tags of this group given or taken away here are given or taken away in WeCom too."
        ),
    )
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)


class TagOutSerializer(serializers.ModelSerializer):
    group_name = serializers.CharField(source="group.name", read_only=True)
    customer_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "group", "group_name", "name", "description", "created_at"]
        fields += ["customer_count", "wecom_tag_id"]
        read_only_fields = ["wecom_tag_id"]


class TagInSerializer(serializers.Serializer):
    group = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=64)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)


class NameSearchFilter(SelectorFilterSet):
    search = django_filters.CharFilter(method="noop", help_text=_("Name contains."))


class TagGroupFilter(NameSearchFilter):
    class Meta:
        model = TagGroup
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return tag_group_list(search=data.get("search") or None)


class TagFilter(NameSearchFilter):
    group = django_filters.NumberFilter(method="noop", help_text=_("Tag group id."))

    class Meta:
        model = Tag
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return tag_list(
            group_id=data.get("group"),
            search=data.get("search") or None,
            holders_in=request_customer_scope(self.request),
        )


class TagGroupListView(generics.ListAPIView):
    scope_resource = "tags"
    customer_scope = "reads"
    serializer_class = TagGroupOutSerializer
    filterset_class = TagGroupFilter
    queryset = TagGroup.objects.all()

    @extend_schema(request=TagGroupInSerializer, responses={201: TagGroupOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = TagGroupInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        group = tag_group_create(**serializer.validated_data)
        return Response(
            TagGroupOutSerializer(tag_group_list().get(pk=group.pk)).data,
            status=status.HTTP_201_CREATED,
        )


class TagGroupDetailView(generics.RetrieveAPIView):
    scope_resource = "tags"
    customer_scope = "reads"
    serializer_class = TagGroupOutSerializer
    queryset = tag_group_list()
    lookup_url_kwarg = "group_id"

    @extend_schema(request=TagGroupInSerializer, responses=TagGroupOutSerializer)
    def patch(self, request: Request, group_id: int) -> Response:
        serializer = TagGroupInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        tag_group_update(group_id=group_id, **serializer.validated_data)
        return Response(TagGroupOutSerializer(tag_group_list().get(pk=group_id)).data)

    def delete(self, request: Request, group_id: int) -> Response:
        tag_group_delete(group_id=group_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagListView(generics.ListAPIView):
    """Tags with how many customers hold each (of a bound key's owner's, for such a key)."""

    scope_resource = "tags"
    customer_scope = "reads"
    serializer_class = TagOutSerializer
    filterset_class = TagFilter
    queryset = Tag.objects.all()

    @extend_schema(request=TagInSerializer, responses={201: TagOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = TagInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tag = tag_create(
            group_id=data["group"], name=data["name"], description=data.get("description", "")
        )
        return Response(
            TagOutSerializer(tag_list().get(pk=tag.pk)).data, status=status.HTTP_201_CREATED
        )


class TagDetailView(generics.RetrieveAPIView):
    scope_resource = "tags"
    customer_scope = "reads"
    serializer_class = TagOutSerializer
    queryset = tag_list()
    lookup_url_kwarg = "tag_id"

    def get_queryset(self) -> Any:
        return tag_list(holders_in=request_customer_scope(self.request))

    @extend_schema(request=TagInSerializer, responses=TagOutSerializer)
    def patch(self, request: Request, tag_id: int) -> Response:
        serializer = TagInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tag_update(tag_id=tag_id, name=data.get("name"), description=data.get("description"))
        return Response(TagOutSerializer(tag_list().get(pk=tag_id)).data)

    def delete(self, request: Request, tag_id: int) -> Response:
        tag_delete(tag_id=tag_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TagRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(min_value=1, required=False)
    group = serializers.CharField(max_length=64, required=False)
    name = serializers.CharField(max_length=64, required=False)

    def validate(self, attrs: dict[str, Any]) -> TagRef:  # type: ignore[override]
        if "id" in attrs:
            return TagRef(tag_id=attrs["id"])
        if not attrs.get("group") or not attrs.get("name"):
            raise serializers.ValidationError(
                {"id": [_("Give the tag's id, or its group and name.")]}, code="tag_reference"
            )
        return TagRef(group=attrs["group"], name=attrs["name"])


class TagsChangeInSerializer(CustomerRefsSerializer):
    tags = serializers.ListField(child=TagRefSerializer(), min_length=1, max_length=50)
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=TagSource.choices, default=TagSource.MANUAL
    )
    create_missing = serializers.BooleanField(
        default=False,
        help_text=_(
            "Assign only: create unknown tags (and their groups). Customers of unknown "
            "identities are always created on assign and skipped on remove."
        ),
    )


class TagsAssignOutSerializer(serializers.Serializer):
    assigned = serializers.IntegerField()
    replaced = serializers.IntegerField(
        help_text=_("Other tags of exclusive groups that the assigned tags replaced.")
    )
    unchanged = serializers.IntegerField()


class TagsRemoveOutSerializer(serializers.Serializer):
    removed = serializers.IntegerField()
    unknown_identities = serializers.IntegerField()


class TagsAssignView(APIView):
    """Give every named customer every named tag. A tag of an exclusive group replaces the
    customer's other tag of that group."""

    scope_resource = "tags"
    customer_scope = "owner"

    @extend_schema(request=TagsChangeInSerializer, responses=TagsAssignOutSerializer)
    def post(self, request: Request) -> Response:
        serializer = TagsChangeInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refs_in_scope_or_404(
            request, customer_ids=data["customer_ids"], identities=data["identities"]
        )
        tags = tags_resolve(refs=data["tags"], create_missing=data["create_missing"])
        customer_ids, _unknown = customers_named(
            customer_ids=data["customer_ids"],
            identities=data["identities"],
            create_missing=True,
            actor=actor_of(request),
        )
        outcome = tags_assign(
            customer_ids=customer_ids, tags=tags, source=data["source"], actor=actor_of(request)
        )
        return Response(
            {
                "assigned": outcome.assigned,
                "replaced": outcome.replaced,
                "unchanged": outcome.unchanged,
            }
        )


class TagsRemoveView(APIView):
    """Take the named tags away from the named customers. Identities that name nobody are
    counted and skipped."""

    scope_resource = "tags"
    customer_scope = "owner"

    @extend_schema(request=TagsChangeInSerializer, responses=TagsRemoveOutSerializer)
    def post(self, request: Request) -> Response:
        serializer = TagsChangeInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        refs_in_scope_or_404(
            request, customer_ids=data["customer_ids"], identities=data["identities"]
        )
        tags = tags_resolve(refs=data["tags"], create_missing=False)
        customer_ids, unknown = customers_named(
            customer_ids=data["customer_ids"],
            identities=data["identities"],
            create_missing=False,
            actor=actor_of(request),
        )
        removed = tags_remove(customer_ids=customer_ids, tags=tags, actor=actor_of(request))
        return Response({"removed": removed, "unknown_identities": unknown})
