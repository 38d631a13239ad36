"""Channel QR code (渠道活码) endpoints: list (with each code's report), create, read, change,
stop, and the code's QR image. Creating, changing and stopping go through WeCom first; a
refusal there is a 409 `wecom_refused` and nothing changes here. The report counts every
customer a code brought, whoever follows them: refused to a key bound to a staff member."""

from typing import Any

import django_filters
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from crm.models import ContactWay, ContactWayKind, SourceChannel
from crm.selectors.contact_ways import ContactWayReport, contact_way_list, contact_way_reports
from crm.wecom.contact_ways import (
    AUTO_TAGS_MAX,
    STAFF_MEMBERS_MAX,
    STATE_MAX_CHARS,
    STATE_PATTERN,
    contact_way_create,
    contact_way_deactivate,
    contact_way_get_or_404,
    contact_way_qr_code_image,
    contact_way_update,
)

ID_MAX = 2**63 - 1


class ReportOutSerializer(serializers.Serializer):
    added = serializers.IntegerField(
        help_text=_("WeCom relations added with the code's channel parameter.")
    )
    kept_7_rate = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Of relations added at least 7 days ago, the share not ended within 7 days "
            "(null: none yet)."
        ),
    )
    kept_30_rate = serializers.FloatField(
        allow_null=True,
        help_text=_("Of relations added at least 30 days ago, the share not ended within 30 days."),
    )
    acquired = serializers.IntegerField(help_text=_("Customers whose first touch is this code."))
    first_orders_30 = serializers.IntegerField(
        help_text=_("Of them, those whose first purchase came within 30 days of being added.")
    )
    first_order_revenue_30 = serializers.DecimalField(
        max_digits=16,
        decimal_places=2,
        help_text=_("What those first orders paid, net of refunds."),
    )
    first_orders_90 = serializers.IntegerField()
    first_order_revenue_90 = serializers.DecimalField(max_digits=16, decimal_places=2)
    repeat_rate = serializers.FloatField(
        allow_null=True,
        help_text=_(
            "Of the customers with a first order within 90 days, the share who bought again."
        ),
    )


class ContactWayOutSerializer(serializers.ModelSerializer):
    staff_member_ids = serializers.SerializerMethodField()
    auto_tag_ids = serializers.SerializerMethodField()
    has_qr_code_image = serializers.SerializerMethodField()
    report = serializers.SerializerMethodField()

    class Meta:
        model = ContactWay
        fields = ["id", "name", "state", "config_id", "kind", "staff_member_ids"]
        fields += ["auto_tag_ids", "source_channel", "skip_verify", "qr_code_url"]
        fields += ["has_qr_code_image", "is_active", "created_at", "report"]

    def get_staff_member_ids(self, way: ContactWay) -> list[int]:
        return [member.pk for member in way.staff_members.all()]

    def get_auto_tag_ids(self, way: ContactWay) -> list[int]:
        return [tag.pk for tag in way.auto_tags.all()]

    def get_has_qr_code_image(self, way: ContactWay) -> bool:
        return bool(way.has_image)  # type: ignore[attr-defined]

    @extend_schema_field(ReportOutSerializer)
    def get_report(self, way: ContactWay) -> dict[str, Any]:
        reports: dict[int, ContactWayReport] = self.context["reports"]
        report = reports.get(way.pk) or ContactWayReport(contact_way_id=way.pk)
        return ReportOutSerializer(
            {
                "added": report.added,
                "kept_7_rate": report.kept_7_rate,
                "kept_30_rate": report.kept_30_rate,
                "acquired": report.acquired,
                "first_orders_30": report.first_orders_30,
                "first_order_revenue_30": report.first_order_revenue_30,
                "first_orders_90": report.first_orders_90,
                "first_order_revenue_90": report.first_order_revenue_90,
                "repeat_rate": report.repeat_rate,
            }
        ).data


class ContactWayInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    state = serializers.RegexField(
        STATE_PATTERN,
        max_length=STATE_MAX_CHARS,
        required=False,
        allow_blank=True,
        default="",
        help_text=_(
            "The channel parameter WeCom hands back with every customer added through the "
            "code: 1 to 30 letters, digits, _ or -; generated when empty. Never changes."
        ),
    )
    kind = serializers.ChoiceField(
        choices=ContactWayKind.choices, required=False, default=ContactWayKind.SINGLE
    )
    staff_member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        min_length=1,
        max_length=STAFF_MEMBERS_MAX,
    )
    auto_tag_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        max_length=AUTO_TAGS_MAX,
        required=False,
        default=list,
    )
    source_channel = serializers.ChoiceField(
        choices=SourceChannel.choices, required=False, allow_blank=True, default=""
    )
    skip_verify = serializers.BooleanField(required=False, default=True)


class ContactWayUpdateInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False)
    staff_member_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        min_length=1,
        max_length=STAFF_MEMBERS_MAX,
        required=False,
    )
    auto_tag_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=ID_MAX),
        max_length=AUTO_TAGS_MAX,
        required=False,
    )
    source_channel = serializers.ChoiceField(
        choices=SourceChannel.choices, required=False, allow_blank=True
    )
    skip_verify = serializers.BooleanField(required=False)


class ContactWayFilter(SelectorFilterSet):
    is_active = django_filters.BooleanFilter(method="noop")
    source_channel = django_filters.ChoiceFilter(choices=SourceChannel.choices, method="noop")
    search = django_filters.CharFilter(
        method="noop", max_length=64, help_text=_("Name contains, or the channel parameter.")
    )

    class Meta:
        model = ContactWay
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return contact_way_list(
            is_active=data.get("is_active"),
            source_channel=data.get("source_channel") or None,
            search=data.get("search") or None,
        )


def _way_out(contact_way_id: int) -> dict[str, Any]:
    way = contact_way_list().get(pk=contact_way_id)
    reports = contact_way_reports(contact_way_ids=[contact_way_id])
    return ContactWayOutSerializer(way, context={"reports": reports}).data


class ContactWayListView(generics.ListAPIView):
    """Channel QR codes, newest first, each with its report (see the `report` fields)."""

    scope_resource = "contact_ways"
    serializer_class = ContactWayOutSerializer
    filterset_class = ContactWayFilter
    queryset = ContactWay.objects.all()

    def get_serializer_context(self) -> dict[str, Any]:
        return {**super().get_serializer_context(), "reports": getattr(self, "_reports", {})}

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if page is not None:
            # The page's reports in one query (not one per code).
            self._reports = contact_way_reports(contact_way_ids=[way.pk for way in page])
        return page

    @extend_schema(request=ContactWayInSerializer, responses={201: ContactWayOutSerializer})
    def post(self, request: Request) -> Response:
        serializer = ContactWayInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        way = contact_way_create(**serializer.validated_data, actor=actor_of(request))
        return Response(_way_out(way.pk), status=status.HTTP_201_CREATED)


class ContactWayDetailView(APIView):
    scope_resource = "contact_ways"

    @extend_schema(responses=ContactWayOutSerializer)
    def get(self, request: Request, contact_way_id: int) -> Response:
        contact_way_get_or_404(contact_way_id=contact_way_id)
        return Response(_way_out(contact_way_id))

    @extend_schema(request=ContactWayUpdateInSerializer, responses=ContactWayOutSerializer)
    def patch(self, request: Request, contact_way_id: int) -> Response:
        serializer = ContactWayUpdateInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        contact_way_update(
            contact_way_id=contact_way_id, **serializer.validated_data, actor=actor_of(request)
        )
        return Response(_way_out(contact_way_id))


class ContactWayDeactivateView(APIView):
    """Stop the code: deleted in WeCom (scanning it adds nobody any more), kept here with its
    report. Stopping a stopped code changes nothing."""

    scope_resource = "contact_ways"

    @extend_schema(request=None, responses=ContactWayOutSerializer)
    def post(self, request: Request, contact_way_id: int) -> Response:
        contact_way_deactivate(contact_way_id=contact_way_id, actor=actor_of(request))
        return Response(_way_out(contact_way_id))


class ContactWayQrCodeView(APIView):
    """The code's QR image (PNG), to print or put in a video."""

    scope_resource = "contact_ways"

    @extend_schema(
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description=_("The image."))
        }
    )
    def get(self, request: Request, contact_way_id: int) -> HttpResponse:
        image = contact_way_qr_code_image(contact_way_id=contact_way_id)
        response = HttpResponse(image, content_type="image/png")
        response["Content-Disposition"] = f'inline; filename="contact-way-{contact_way_id}.png"'
        return response
