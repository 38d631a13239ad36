"""Campaign reads: selectors only, no writes."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum

from campaigns.models import (
    Campaign,
    CampaignState,
    Channel,
    Conversion,
    Delivery,
    DeliveryStatus,
    FrequencyRule,
    Variant,
)
from segments.models import Segment


def frequency_rule_list(
    *, is_active: bool | None = None, channel: str | None = None
) -> QuerySet[FrequencyRule]:
    """Rules by name; `channel` keeps those that may apply to a send on it: its own rules, the
    all-channel rules and the label rules (those apply by campaign)."""
    rules = FrequencyRule.objects.order_by("name", "id")
    if is_active is not None:
        rules = rules.filter(is_active=is_active)
    if channel:
        rules = rules.filter(Q(channel="") | Q(channel=channel))
    return rules


def campaign_search_condition(term: str) -> Q:
    """A name containing the term, or a label equal to it."""
    return Q(name__icontains=term) | Q(labels__contains=[term])


def campaign_list(
    *,
    state: str | None = None,
    channel: str | None = None,
    label: str | None = None,
    search: str | None = None,
) -> QuerySet[Campaign]:
    """Campaigns, newest first, with their variants and segment ids prefetched: a page costs
    three queries besides its own, whatever its length (delivery counts: see
    `campaign_delivery_counts`)."""
    segment_ids = Segment.objects.only("pk")
    campaigns = Campaign.objects.prefetch_related(
        # By name alone: the model's ordering (campaign, name) would join the campaigns again.
        Prefetch("variants", queryset=Variant.objects.order_by("name")),
        Prefetch("include_segments", queryset=segment_ids),
        Prefetch("exclude_segments", queryset=segment_ids),
    ).order_by("-created_at", "-id")
    if state:
        campaigns = campaigns.filter(state=state)
    if channel:
        campaigns = campaigns.filter(channel=channel)
    if label:
        campaigns = campaigns.filter(labels__contains=[label])
    if search:
        campaigns = campaigns.filter(name__icontains=search)
    return campaigns


def campaign_delivery_counts(campaign_ids: Collection[int]) -> dict[int, dict[str, int]]:
    """Deliveries per status of each campaign, every status listed (0 when none), in one
    aggregate query. Served by index delivery_by_campaign (campaign, status), which holds
    every column the query reads."""
    counts = {campaign_id: dict.fromkeys(DeliveryStatus.values, 0) for campaign_id in campaign_ids}
    if not counts:
        return counts
    rows = (
        Delivery.objects.filter(campaign_id__in=counts)
        .values_list("campaign_id", "status")
        .annotate(count=Count("*"))
        .order_by()
    )
    for campaign_id, status, count in rows:
        counts[campaign_id][status] = count
    return counts


def delivery_list(
    *,
    campaign_id: int,
    status: str | None = None,
    reason: str | None = None,
    is_holdout: bool | None = None,
    variant: str | None = None,
) -> QuerySet[Delivery]:
    """A campaign's deliveries, each with `variant_name`; `variant` is a variant's name."""
    deliveries = Delivery.objects.filter(campaign_id=campaign_id).annotate(
        variant_name=F("variant__name")
    )
    if status:
        deliveries = deliveries.filter(status=status)
    if reason:
        deliveries = deliveries.filter(reason=reason)
    if is_holdout is not None:
        deliveries = deliveries.filter(is_holdout=is_holdout)
    if variant:
        deliveries = deliveries.filter(variant__name=variant)
    return deliveries


def customer_delivery_list(*, customer_id: int, since: datetime) -> QuerySet[Delivery]:
    """A customer's deliveries planned, reserved or sent at `since` or later, newest first,
    each with `campaign_name`, `channel` and `variant_name`: how hard the customer has been
    pressed lately. Served by index delivery_unique (customer, campaign, step); one customer
    has few deliveries, so the time condition is checked on its rows."""
    return (
        Delivery.objects.filter(customer_id=customer_id)
        .filter(Q(planned_at__gte=since) | Q(reserved_at__gte=since) | Q(sent_at__gte=since))
        .annotate(
            campaign_name=F("campaign__name"),
            channel=F("campaign__channel"),
            variant_name=F("variant__name"),
        )
        .order_by("-id")
    )


def customer_campaign_history(*, customer_id: int) -> QuerySet[Delivery]:
    """A customer's deliveries of every campaign, the latest planned first, each with
    `campaign_name`, `variant_name` and `converted_revenue` (the amount of the orders its
    conversions credit it with; None when it converted nothing). Served by index
    delivery_unique (customer, campaign, step), the conversions by conversion_unique
    (delivery, order); slice the result to bound it."""
    revenue = (
        Conversion.objects.filter(delivery_id=OuterRef("pk"))
        .values("delivery_id")
        .annotate(total=Sum("revenue"))
        .values("total")
    )
    return (
        Delivery.objects.filter(customer_id=customer_id)
        .annotate(
            campaign_name=F("campaign__name"),
            variant_name=F("variant__name"),
            converted_revenue=Subquery(revenue),
        )
        .order_by("-planned_at", "-id")
    )


# A campaign's state as shown: the stored state, except that a campaign sending, or completed,
# while deliveries still wait (for their turn or for the platform) shows what it waits for.
PROGRESS_SENDING = "sending"
PROGRESS_AWAITING_STAFF = "awaiting_staff"  # WeCom tasks created, not yet confirmed by staff
PROGRESS_AWAITING_PLATFORM = "awaiting_platform"  # another channel's, results not yet in
LIVE_PROGRESS_STATES = (PROGRESS_SENDING, PROGRESS_AWAITING_STAFF, PROGRESS_AWAITING_PLATFORM)


@dataclass(frozen=True)
class CampaignProgress:
    """Where a campaign's sends are: `sent`, `waiting` (for their turn, for dispatch or, the
    `awaiting_platform` among them, for the platform's result) and `failed`; and the state
    shown (`state`: a CampaignState value or one of the PROGRESS_ states)."""

    state: str
    sent: int
    waiting: int
    awaiting_platform: int
    failed: int

    @property
    def to_send(self) -> int:
        return self.sent + self.waiting + self.failed

    @property
    def is_live(self) -> bool:
        """Still moving: worth watching."""
        return self.state in LIVE_PROGRESS_STATES


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    """The campaign's progress from its deliveries, in one aggregate query (see
    `campaign_delivery_counts`)."""
    return progress_of(campaign, campaign_delivery_counts([campaign.pk])[campaign.pk])


def progress_of(campaign: Campaign, counts: dict[str, int]) -> CampaignProgress:
    """The progress of a campaign whose deliveries per status are `counts` (every status)."""
    queued = counts[DeliveryStatus.PENDING] + counts[DeliveryStatus.RESERVED]
    awaiting = counts[DeliveryStatus.SUBMITTED]
    state = campaign.state
    if state in (CampaignState.SENDING, CampaignState.COMPLETED):
        is_planning = state == CampaignState.SENDING and campaign.planned_at is None
        if queued or is_planning:
            state = PROGRESS_SENDING
        elif awaiting:
            is_wecom = campaign.channel in (Channel.WECOM_CUSTOMER, Channel.WECOM_GROUP)
            state = PROGRESS_AWAITING_STAFF if is_wecom else PROGRESS_AWAITING_PLATFORM
        elif state == CampaignState.SENDING:
            state = PROGRESS_SENDING
    return CampaignProgress(
        state=state,
        sent=counts[DeliveryStatus.SENT],
        waiting=queued + awaiting,
        awaiting_platform=awaiting,
        failed=counts[DeliveryStatus.FAILED] + counts[DeliveryStatus.DEAD_LETTER],
    )
