"""Campaign endpoints: list (filter by state, channel, label, name), create, read, change and
delete a draft, the state changes launch, pause, resume and cancel, and the rotation of a
webhook campaign's signing secret. Every campaign comes back with its delivery counts by
status; a webhook signing secret comes back once, in the answer of the call that issued it,
never on a read. Validation and state rules are the services'."""

import dataclasses
from collections.abc import Callable
from typing import Any

import django_filters
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.models import (
    AttributionModel,
    Campaign,
    CampaignState,
    Channel,
    DeliveryStatus,
    ScheduleKind,
    Variant,
)
from campaigns.selectors import campaign_delivery_counts, campaign_list
from campaigns.services.campaigns import (
    TEMPLATE_VARIABLES,
    CampaignInput,
    VariantInput,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_get_or_404,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_update,
    campaign_webhook_secret_rotate,
)
from campaigns.services.dry_run import campaign_dry_run
from campaigns.services.report import campaign_report
from core.api.auth import actor_of
from core.api.filters import SelectorFilterSet
from core.validators import FREE_TEXT_MAX_LENGTH, validate_json_text, validate_planned_time
from crm.models import ConsentChannel
from segments.models import LifecycleState

SMALLINT_MAX = 32767
CONTENT_HELP = format_lazy(
    _("The message; it may name customer variables as {{{{ name }}}}: {names}."),
    names=", ".join(TEMPLATE_VARIABLES),
)
CLOCK_FORMAT = "%H:%M"

DeliveryCountsSerializer = type(
    "DeliveryCountsSerializer",
    (serializers.Serializer,),
    {name: serializers.IntegerField() for name in DeliveryStatus.values},
)


class VariantOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["id", "name", "weight", "content"]


class CampaignOutSerializer(serializers.ModelSerializer):
    """Needs `delivery_counts` in its context: {campaign id: {status: count}}, fetched for a
    whole page at once (`campaign_delivery_counts`)."""

    variants = VariantOutSerializer(many=True, read_only=True)
    include_segment_ids = serializers.SerializerMethodField()
    exclude_segment_ids = serializers.SerializerMethodField()
    trigger_segment_id = serializers.IntegerField(read_only=True, allow_null=True)
    quiet_hours_start = serializers.TimeField(format=CLOCK_FORMAT, read_only=True)
    quiet_hours_end = serializers.TimeField(format=CLOCK_FORMAT, read_only=True)
    delivery_counts = serializers.SerializerMethodField()

    class Meta:
        model = Campaign
        fields = [
            "id",
            "state",
            *CampaignInput.MODEL_FIELDS,
            "variants",
            "include_segment_ids",
            "exclude_segment_ids",
            "created_by",
            "created_at",
            "updated_at",
            "launched_at",
            "planned_at",
            "finished_at",
            "delivery_counts",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_include_segment_ids(self, campaign: Campaign) -> list[int]:
        return sorted(segment.pk for segment in campaign.include_segments.all())

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_exclude_segment_ids(self, campaign: Campaign) -> list[int]:
        return sorted(segment.pk for segment in campaign.exclude_segments.all())

    @extend_schema_field(DeliveryCountsSerializer)
    def get_delivery_counts(self, campaign: Campaign) -> dict[str, int]:
        counts: dict[str, int] = self.context["delivery_counts"][campaign.pk]
        return counts


class CampaignIssuedSerializer(CampaignOutSerializer):
    """A campaign as the call that issued its webhook signing secret answers it."""

    webhook_secret = serializers.CharField(
        read_only=True,
        required=False,
        help_text=_(
            "The key of the HMAC-SHA256 signature on this campaign's webhook posts. Only in "
            "the answer of the call that issued it (creating a webhook campaign, making a "
            "draft one, rotating it): store it now, it is never shown again."
        ),
    )

    class Meta(CampaignOutSerializer.Meta):
        fields = [*CampaignOutSerializer.Meta.fields, "webhook_secret"]


def campaign_out(campaign: Campaign) -> dict[str, Any]:
    """One campaign as the API shows it, with the webhook secret the service call that answered
    it has just issued, if any."""
    counts = campaign_delivery_counts([campaign.pk])
    data: dict[str, Any] = dict(
        CampaignOutSerializer(campaign, context={"delivery_counts": counts}).data
    )
    if campaign.issued_webhook_secret:
        data["webhook_secret"] = campaign.issued_webhook_secret
    return data


def campaign_response(campaign: Campaign, status_code: int = status.HTTP_200_OK) -> Response:
    """`campaign_out` as a response; one carrying a signing secret is kept by no cache."""
    response = Response(campaign_out(campaign), status=status_code)
    if campaign.issued_webhook_secret:
        response["Cache-Control"] = "no-store"
    return response


class VariantInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=32)
    content = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=FREE_TEXT_MAX_LENGTH,
        help_text=CONTENT_HELP,
    )
    weight = serializers.IntegerField(
        min_value=1,
        max_value=SMALLINT_MAX,
        required=False,
        help_text=_("Relative share of the audience outside the holdout; 1 when absent."),
    )

    def validate(self, attrs: dict[str, Any]) -> VariantInput:
        # A PATCH makes every nested field optional too (DRF passes `partial` down); a variant
        # is always given whole.
        missing = [name for name in ("name", "content") if name not in attrs]
        if missing:
            raise serializers.ValidationError(
                {name: [_("This field is required.")] for name in missing}
            )
        return VariantInput(
            name=attrs["name"], content=attrs["content"], weight=attrs.get("weight", 1)
        )


class CampaignInSerializer(serializers.Serializer):
    """The shape of each field; how they fit together is checked by the service. Fields left
    out take their defaults on create and keep their values on PATCH."""

    name = serializers.CharField(max_length=128)
    description = serializers.CharField(max_length=255, required=False, allow_blank=True)
    channel = serializers.ChoiceField(choices=Channel.choices)
    consent_channel = serializers.ChoiceField(
        choices=ConsentChannel.choices,
        required=False,
        allow_blank=True,
        help_text=_("Defaults to the channel's; a webhook campaign names it."),
    )
    labels = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=20
    )
    webhook_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    variants = VariantInSerializer(
        many=True, required=False, help_text=_("The messages to test (at most 10).")
    )
    content = serializers.CharField(
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        max_length=FREE_TEXT_MAX_LENGTH,
        help_text=_("Instead of `variants`: one message, as variant A."),
    )
    include_segment_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False
    )
    exclude_segment_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False
    )
    extra_rule = serializers.JSONField(
        required=False,
        allow_null=True,
        validators=[validate_json_text],
        help_text=_("A segment rule the audience must also match (see the rule language)."),
    )
    schedule_kind = serializers.ChoiceField(choices=ScheduleKind.choices, required=False)
    scheduled_at = serializers.DateTimeField(
        required=False, allow_null=True, validators=[validate_planned_time]
    )
    trigger_lifecycle_state = serializers.ChoiceField(
        choices=LifecycleState.choices, required=False, allow_blank=True
    )
    trigger_segment_id = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    trigger_ends_at = serializers.DateTimeField(
        required=False, allow_null=True, validators=[validate_planned_time]
    )
    quiet_hours_start = serializers.TimeField(
        format=CLOCK_FORMAT,
        input_formats=[CLOCK_FORMAT],
        required=False,
        allow_null=True,
        help_text=_('"HH:MM" in business time, or null for none.'),
    )
    quiet_hours_end = serializers.TimeField(
        format=CLOCK_FORMAT, input_formats=[CLOCK_FORMAT], required=False, allow_null=True
    )
    throttle_per_minute = serializers.IntegerField(
        min_value=1, max_value=2**31 - 1, required=False, allow_null=True
    )
    holdout_share = serializers.DecimalField(
        max_digits=4,
        decimal_places=3,
        required=False,
        help_text=_("Share kept as a control group, 0 to 0.5."),
    )
    conversion_window_days = serializers.IntegerField(max_value=SMALLINT_MAX, required=False)
    conversion_min_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    conversion_sku = serializers.CharField(max_length=64, required=False, allow_blank=True)
    conversion_category = serializers.CharField(max_length=64, required=False, allow_blank=True)
    attribution_model = serializers.ChoiceField(choices=AttributionModel.choices, required=False)
    priority = serializers.IntegerField(
        min_value=-SMALLINT_MAX - 1, max_value=SMALLINT_MAX, required=False
    )
    respects_caps = serializers.BooleanField(required=False)
    counts_toward_caps = serializers.BooleanField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Answer the fields as CampaignInput names them: `content` becomes variant A."""
        if "content" in attrs:
            if "variants" in attrs:
                raise serializers.ValidationError(
                    {"content": [_("Give either variants or content, not both.")]}
                )
            attrs["variants"] = [VariantInput(name="A", content=attrs.pop("content"))]
        return attrs


class CampaignFilter(SelectorFilterSet):
    state = django_filters.ChoiceFilter(choices=CampaignState.choices, method="noop")
    channel = django_filters.ChoiceFilter(choices=Channel.choices, method="noop")
    label = django_filters.CharFilter(method="noop", help_text=_("Campaigns carrying this label."))
    search = django_filters.CharFilter(method="noop", help_text=_("Name contains."))

    class Meta:
        model = Campaign
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        return campaign_list(
            state=data.get("state") or None,
            channel=data.get("channel") or None,
            label=data.get("label") or None,
            search=data.get("search") or None,
        )


class CampaignListView(generics.ListAPIView):
    """`GET`: campaigns, newest first, with their delivery counts. `POST`: create a draft."""

    scope_resource = "campaigns"
    serializer_class = CampaignOutSerializer
    filterset_class = CampaignFilter
    queryset = Campaign.objects.all()

    def paginate_queryset(  # type: ignore[override]  # rows of this view are campaigns
        self, queryset: QuerySet[Campaign, Campaign]
    ) -> list[Campaign] | None:
        page = super().paginate_queryset(queryset)
        # One aggregate query for the whole page.
        self.delivery_counts = campaign_delivery_counts([c.pk for c in page or ()])
        return page

    def get_serializer_context(self) -> dict[str, Any]:
        counts = getattr(self, "delivery_counts", {})  # none before a page (schema generation)
        return {**super().get_serializer_context(), "delivery_counts": counts}

    @extend_schema(request=CampaignInSerializer, responses={201: CampaignIssuedSerializer})
    def post(self, request: Request) -> Response:
        serializer = CampaignInSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Without variants or content, the service answers that a campaign needs a message.
        data = CampaignInput(**{"variants": [], **serializer.validated_data})
        campaign = campaign_create(data=data, actor=actor_of(request))
        return campaign_response(campaign, status.HTTP_201_CREATED)


class CampaignDetailView(APIView):
    """A campaign; only a draft may be changed or deleted (409 `campaign_not_a_draft`)."""

    scope_resource = "campaigns"

    @extend_schema(responses=CampaignOutSerializer)
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(campaign_out(campaign_get_or_404(campaign_id)))

    @extend_schema(request=CampaignInSerializer, responses=CampaignIssuedSerializer)
    def patch(self, request: Request, campaign_id: int) -> Response:
        serializer = CampaignInSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_update(
            campaign_id=campaign_id, actor=actor_of(request), changes=serializer.validated_data
        )
        return campaign_response(campaign)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, campaign_id: int) -> Response:
        campaign_delete(campaign_id=campaign_id, actor=actor_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignTransitionView(APIView):
    """A state change: 200 with the campaign, or 409 `campaign_wrong_state` when the
    campaign's state does not allow it."""

    scope_resource = "campaigns"
    transition: Callable[..., Campaign]

    @extend_schema(request=None, responses=CampaignOutSerializer)
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = self.transition(campaign_id=campaign_id, actor=actor_of(request))
        return Response(campaign_out(campaign))


class CampaignLaunchView(CampaignTransitionView):
    """Launch a draft: sending starts at once, at its time, or (a triggered campaign) with
    the next customer who enters the lifecycle state or segment."""

    transition = staticmethod(campaign_launch)


class CampaignPauseView(CampaignTransitionView):
    """Pause a scheduled or sending campaign: reserved sends not yet handed to a channel go
    back to the queue."""

    transition = staticmethod(campaign_pause)


class CampaignResumeView(CampaignTransitionView):
    """Resume a paused campaign."""

    transition = staticmethod(campaign_resume)


class CampaignCancelView(CampaignTransitionView):
    """Stop a scheduled, sending or paused campaign for good: every send not yet handed to a
    channel is cancelled."""

    transition = staticmethod(campaign_cancel)


class CampaignWebhookSecretRotateView(APIView):
    """Replace a webhook campaign's signing secret (in any state): 200 with the campaign and
    its new `webhook_secret`, shown this once; posts from now on are signed with it and the
    old one no longer verifies. 409 `campaign_not_webhook` for a campaign of another channel."""

    scope_resource = "campaigns"

    @extend_schema(request=None, responses=CampaignIssuedSerializer)
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_webhook_secret_rotate(campaign_id=campaign_id, actor=actor_of(request))
        return campaign_response(campaign)


class CampaignDryRunView(APIView):
    """What launching the campaign now would do, written nowhere: the audience after
    exclusions, the holdout, who opted out or cannot be reached, who each frequency rule would
    hold back, the split among variants, and 20 sample recipients with the reason each would or
    would not be sent."""

    scope_resource = "campaigns"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_or_404(campaign_id)
        return Response(dataclasses.asdict(campaign_dry_run(campaign=campaign)))


class CampaignReportView(APIView):
    """The campaign's report, as a whole and per variant: audience, holdout, suppressed by
    reason and by rule, sent, failed, clicked, converted, conversion rate, attributed revenue
    and revenue per recipient, and the lift against the holdout with its 95 % interval,
    p-value and incremental revenue."""

    scope_resource = "campaigns"

    @extend_schema(responses={200: dict})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = campaign_get_or_404(campaign_id)
        return Response(campaign_report(campaign=campaign).as_dict())
