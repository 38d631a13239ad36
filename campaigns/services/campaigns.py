"""Campaigns: create and edit drafts, launch, pause, resume and cancel, and the steps a launch
runs (plan the audience, then reserve and dispatch in batches; see `planning`, `reservation`,
`dispatch`). Only a draft may be edited; every state change takes the campaign's row lock, so
a pause or a cancel and a reservation batch never interleave."""

import dataclasses
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import enqueue
from campaigns.channels.webhook_url import (
    ERROR_WEBHOOK_URL_NOT_ALLOWED,
    WebhookUrlRefused,
    webhook_url_check,
)
from campaigns.models import (
    CONSENT_CHANNEL_OF,
    Campaign,
    CampaignState,
    Channel,
    DeliveryReason,
    DeliveryStatus,
    ScheduleKind,
    Variant,
)
from campaigns.services.dispatch import channel_sends_release
from campaigns.services.planning import Audience, audience_query, deliveries_plan
from campaigns.services.templates import (
    CUSTOMER_VARIABLES,
    TEMPLATE_VARIABLES,
    template_variables,
)
from core.errors import Conflict, NotFound, ValidationFailed
from core.locks import Lock, session_lock
from core.models import AuditAction
from core.services.audit import audit_change
from crm.personal_data import encrypt
from segments.models import Segment
from segments.rules import InvalidRule, rule_check
from segments.selectors import lifecycle_transition_feed_end, segment_membership_event_feed_end

logger = logging.getLogger(__name__)

ERROR_CAMPAIGN_NOT_FOUND = "campaign_not_found"
ERROR_INVALID_CAMPAIGN = "invalid_campaign"
ERROR_NOT_A_DRAFT = "campaign_not_a_draft"
ERROR_WRONG_STATE = "campaign_wrong_state"
ERROR_NOT_A_WEBHOOK = "campaign_not_webhook"
# The start of every webhook signing secret, so that one found in a log or a repository is
# recognised for what it is.
WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret

# Customer variables a message may hold, as {{ name }}: what an operator would greet with.
MAX_VARIANTS = 10


@dataclass(frozen=True)
class VariantInput:
    name: str
    content: str
    weight: int = 1


@dataclass(frozen=True)
class CampaignInput:
    """Everything an operator sets on a campaign. `consent_channel` defaults to the channel's
    (WeCom for both WeCom channels); a webhook campaign names it."""

    name: str
    channel: str
    variants: Sequence[VariantInput]
    description: str = ""
    consent_channel: str = ""
    labels: Sequence[str] = ()
    webhook_url: str = ""
    include_segment_ids: Sequence[int] = ()
    exclude_segment_ids: Sequence[int] = ()
    extra_rule: Any = None
    schedule_kind: str = ScheduleKind.NOW
    scheduled_at: datetime | None = None
    trigger_lifecycle_state: str = ""
    trigger_segment_id: int | None = None
    trigger_ends_at: datetime | None = None
    quiet_hours_start: time | None = time(21, 0)
    quiet_hours_end: time | None = time(9, 0)
    throttle_per_minute: int | None = None
    holdout_share: Decimal = Decimal("0.1")
    conversion_window_days: int = 7
    conversion_min_amount: Decimal | None = None
    conversion_sku: str = ""
    conversion_category: str = ""
    attribution_model: str = "last_touch"
    priority: int = 0
    respects_caps: bool = True
    counts_toward_caps: bool = True

    # The model fields set straight from this input (segments and variants are set apart).
    MODEL_FIELDS = (
        "name",
        "description",
        "channel",
        "consent_channel",
        "labels",
        "webhook_url",
        "extra_rule",
        "schedule_kind",
        "scheduled_at",
        "trigger_lifecycle_state",
        "trigger_segment_id",
        "trigger_ends_at",
        "quiet_hours_start",
        "quiet_hours_end",
        "throttle_per_minute",
        "holdout_share",
        "conversion_window_days",
        "conversion_min_amount",
        "conversion_sku",
        "conversion_category",
        "attribution_model",
        "priority",
        "respects_caps",
        "counts_toward_caps",
    )


@dataclass
class _Problems:
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def campaign_get_or_404(campaign_id: int, *, for_update: bool = False) -> Campaign:
    campaigns = Campaign.objects.select_for_update() if for_update else Campaign.objects
    try:
        return campaigns.get(pk=campaign_id)
    except Campaign.DoesNotExist:
        raise NotFound(ERROR_CAMPAIGN_NOT_FOUND, _("No such campaign.")) from None


def input_of(campaign: Campaign) -> CampaignInput:
    """A campaign as the input that would create it (the base of a partial update)."""
    values = {name: getattr(campaign, name) for name in CampaignInput.MODEL_FIELDS}
    return CampaignInput(
        **values,
        include_segment_ids=sorted(s.pk for s in campaign.include_segments.all()),
        exclude_segment_ids=sorted(s.pk for s in campaign.exclude_segments.all()),
        variants=[
            VariantInput(name=v.name, content=v.content, weight=v.weight)
            for v in campaign.variants.order_by("name")
        ],
    )


def _check(
    data: CampaignInput, *, campaign_id: int | None, is_url_resolved: bool = True
) -> CampaignInput:
    """Raise ValidationFailed naming every wrong field; answer the input with its defaults
    filled (the consent channel). `is_url_resolved=False` skips looking the webhook URL's
    host up (a change that leaves the URL alone: a DNS hiccup must not refuse a new name)."""
    problems = _Problems()
    if not data.consent_channel and data.channel in CONSENT_CHANNEL_OF:
        data = dataclasses.replace(data, consent_channel=CONSENT_CHANNEL_OF[data.channel])
    if not data.consent_channel:
        problems.add("consent_channel", _("A webhook campaign names the consent it honours."))
    if data.channel == Channel.WECOM_GROUP:
        _check_group_chat(data, problems)
    if data.channel == Channel.WEBHOOK and not data.webhook_url:
        problems.add("webhook_url", _("A webhook campaign needs the URL it posts to."))
    if data.channel != Channel.WEBHOOK and data.webhook_url:
        problems.add("webhook_url", _("Only a webhook campaign posts to a URL."))
    is_url_refused = False
    if data.channel == Channel.WEBHOOK and data.webhook_url and is_url_resolved:
        try:
            webhook_url_check(data.webhook_url)
        except WebhookUrlRefused as refusal:
            problems.add("webhook_url", str(refusal))
            is_url_refused = True
    namesakes = Campaign.objects.filter(name=data.name)
    if campaign_id is not None:
        namesakes = namesakes.exclude(pk=campaign_id)
    if namesakes.exists():
        problems.add("name", _("A campaign with this name exists."))
    _check_variants(data, problems)
    _check_audience(data, problems)
    _check_schedule(data, problems)
    if data.holdout_share < 0 or data.holdout_share > Decimal("0.5"):
        problems.add("holdout_share", _("The holdout share is from 0 to 0.5."))
    if (data.quiet_hours_start is None) != (data.quiet_hours_end is None):
        problems.add("quiet_hours_end", _("Quiet hours have a start and an end, or neither."))
    if data.throttle_per_minute is not None and data.throttle_per_minute < 1:
        problems.add("throttle_per_minute", _("At least one send per minute."))
    if data.conversion_window_days < 1:
        problems.add("conversion_window_days", _("At least one day."))
    if problems.errors:
        # A URL the policy refuses has its own code (the other problems are in the detail
        # too): a caller can tell an address it may not use from a malformed campaign.
        if is_url_refused:
            raise ValidationFailed(
                ERROR_WEBHOOK_URL_NOT_ALLOWED,
                _("The webhook URL is not allowed: it must be a public http(s) address."),
                detail=problems.errors,
            )
        raise ValidationFailed(
            ERROR_INVALID_CAMPAIGN, _("The campaign is not valid."), detail=problems.errors
        )
    return data


def _check_variants(data: CampaignInput, problems: _Problems) -> None:
    if not data.variants:
        problems.add("variants", _("A campaign has at least one message."))
    if len(data.variants) > MAX_VARIANTS:
        problems.add("variants", _("At most %(max)s variants.") % {"max": MAX_VARIANTS})
    names = [variant.name for variant in data.variants]
    if len(set(names)) != len(names):
        problems.add("variants", _("Variant names are unique within a campaign."))
    for index, variant in enumerate(data.variants):
        unknown = sorted(set(template_variables(variant.content)) - set(TEMPLATE_VARIABLES))
        if not variant.content.strip():
            problems.add(f"variants[{index}].content", _("The message is empty."))
        if unknown:
            problems.add(
                f"variants[{index}].content",
                _("Unknown variables: %(names)s. Known: %(known)s.")
                % {"names": ", ".join(unknown), "known": ", ".join(TEMPLATE_VARIABLES)},
            )
        if variant.weight < 1:
            problems.add(f"variants[{index}].weight", _("A weight is at least 1."))


def _check_group_chat(data: CampaignInput, problems: _Problems) -> None:
    """A group-chat message is one text for a whole chat, sent to chats the audience covers
    (see `planning.group_audience_sql`)."""
    if data.schedule_kind not in (ScheduleKind.NOW, ScheduleKind.AT):
        problems.add(
            "schedule_kind",
            _("A group-chat message is sent now or at a time: a trigger picks single customers."),
        )
    for index, variant in enumerate(data.variants):
        personal = sorted(set(template_variables(variant.content)) & set(CUSTOMER_VARIABLES))
        if personal:
            problems.add(
                f"variants[{index}].content",
                _("A group-chat message is read by the whole chat; it cannot name %(names)s.")
                % {"names": ", ".join(personal)},
            )


def _check_audience(data: CampaignInput, problems: _Problems) -> None:
    named = {*data.include_segment_ids, *data.exclude_segment_ids}
    if data.trigger_segment_id is not None:
        named.add(data.trigger_segment_id)
    found = set(Segment.objects.filter(pk__in=named).values_list("pk", flat=True))
    for name, ids in (
        ("include_segment_ids", data.include_segment_ids),
        ("exclude_segment_ids", data.exclude_segment_ids),
    ):
        missing = sorted(set(ids) - found)
        if missing:
            problems.add(name, _("No such segments: %(ids)s.") % {"ids": missing})
    if set(data.include_segment_ids) & set(data.exclude_segment_ids):
        problems.add("exclude_segment_ids", _("A segment is both included and excluded."))
    is_triggered = data.schedule_kind in (ScheduleKind.LIFECYCLE, ScheduleKind.SEGMENT_ENTRY)
    if not data.include_segment_ids and data.extra_rule is None and not is_triggered:
        problems.add("include_segment_ids", _("Pick at least one segment or give a rule."))
    if data.extra_rule is not None:
        try:
            rule_check(data.extra_rule)
        except InvalidRule as error:
            problems.errors["extra_rule"] = error.detail["rule"]


def _check_schedule(data: CampaignInput, problems: _Problems) -> None:
    kind = data.schedule_kind
    if kind == ScheduleKind.AT and data.scheduled_at is None:
        problems.add("scheduled_at", _("A scheduled campaign needs its time."))
    if kind != ScheduleKind.AT and data.scheduled_at is not None:
        problems.add("scheduled_at", _("Only a campaign scheduled at a time has one."))
    if kind == ScheduleKind.LIFECYCLE and not data.trigger_lifecycle_state:
        problems.add("trigger_lifecycle_state", _("Name the lifecycle state that triggers it."))
    if kind != ScheduleKind.LIFECYCLE and data.trigger_lifecycle_state:
        problems.add("trigger_lifecycle_state", _("Only a lifecycle trigger names a state."))
    if kind == ScheduleKind.SEGMENT_ENTRY:
        if data.trigger_segment_id is None:
            problems.add("trigger_segment_id", _("Name the segment whose entrants it greets."))
        elif not Segment.objects.filter(pk=data.trigger_segment_id).exists():
            problems.add("trigger_segment_id", _("No such segment."))
    elif data.trigger_segment_id is not None:
        problems.add("trigger_segment_id", _("Only a segment-entry trigger names a segment."))
    is_triggered = kind in (ScheduleKind.LIFECYCLE, ScheduleKind.SEGMENT_ENTRY)
    if data.trigger_ends_at is not None and not is_triggered:
        problems.add("trigger_ends_at", _("Only a triggered campaign has an end."))


def _save(campaign: Campaign, data: CampaignInput) -> Campaign:
    for name in CampaignInput.MODEL_FIELDS:
        setattr(campaign, name, getattr(data, name))
    campaign.labels = list(data.labels)
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret_encrypted:
        _webhook_secret_issue(campaign)
    try:
        campaign.full_clean(exclude=["salt"])
    except ValidationError as error:
        raise ValidationFailed(
            ERROR_INVALID_CAMPAIGN, _("The campaign is not valid."), detail=error.message_dict
        ) from None
    campaign.save()
    campaign.include_segments.set(data.include_segment_ids)
    campaign.exclude_segments.set(data.exclude_segment_ids)
    campaign.variants.all().delete()
    Variant.objects.bulk_create(
        Variant(campaign=campaign, name=v.name, content=v.content, weight=v.weight)
        for v in data.variants
    )
    return campaign


def _audited(values: CampaignInput, campaign: Campaign) -> dict[str, Any]:
    """What the audit trail compares of a campaign: everything an operator sets (as the input
    `input_of` would read back: variants by name, segments by id), its state, and its signing
    secret (written only as changed, see core.services.audit)."""
    snapshot = dataclasses.asdict(values)
    snapshot["variants"] = sorted(snapshot["variants"], key=lambda variant: variant["name"])
    snapshot["include_segment_ids"] = sorted(values.include_segment_ids)
    snapshot["exclude_segment_ids"] = sorted(values.exclude_segment_ids)
    snapshot["labels"] = list(values.labels)
    snapshot["state"] = campaign.state
    snapshot["webhook_secret"] = campaign.webhook_secret_encrypted
    return snapshot


def _audit(
    campaign: Campaign,
    *,
    actor: str,
    action: AuditAction,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    audit_change(
        actor=actor,
        action=action,
        object_type="campaign",
        object_id=campaign.pk,
        before=before,
        after=after,
        secret_fields=("webhook_secret",),
    )


def new_webhook_secret() -> str:
    return WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)


def _webhook_secret_issue(campaign: Campaign) -> None:
    """Give the campaign a new signing secret (not saved): stored encrypted, and kept in
    `issued_webhook_secret` for the caller to show once."""
    secret = new_webhook_secret()
    campaign.webhook_secret_encrypted = encrypt(secret)
    campaign.issued_webhook_secret = secret


@transaction.atomic
def campaign_webhook_secret_rotate(*, campaign_id: int, actor: str) -> Campaign:
    """Replace a webhook campaign's signing secret, in any state: every run of posts that
    starts from now on signs with the new one (answered once, in `issued_webhook_secret`), and
    the old one no longer verifies. A run already under way finishes with the secret it read."""
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    if campaign.channel != Channel.WEBHOOK:
        raise Conflict(
            ERROR_NOT_A_WEBHOOK,
            _("Only a webhook campaign has a signing secret."),
            detail={"channel": [campaign.channel]},
        )
    before = {"webhook_secret": campaign.webhook_secret_encrypted}
    _webhook_secret_issue(campaign)
    campaign.save(update_fields=["webhook_secret_encrypted"])
    audit_change(
        actor=actor,
        action=AuditAction.CHANGE,
        object_type="campaign",
        object_id=campaign.pk,
        before=before,
        after={"webhook_secret": campaign.webhook_secret_encrypted},
        secret_fields=("webhook_secret",),
        operation="rotate_webhook_secret",
    )
    logger.info(
        "campaign.webhook_secret_rotated", extra={"campaign_id": campaign.pk, "actor": actor}
    )
    return campaign


@transaction.atomic
def campaign_create(*, data: CampaignInput, actor: str) -> Campaign:
    data = _check(data, campaign_id=None)
    campaign = _save(Campaign(created_by=actor), data)
    after = _audited(data, campaign)
    _audit(campaign, actor=actor, action=AuditAction.CREATE, before=None, after=after)
    logger.info("campaign.created", extra={"campaign_id": campaign.pk, "actor": actor})
    return campaign


@transaction.atomic
def campaign_update(*, campaign_id: int, actor: str, changes: dict[str, Any]) -> Campaign:
    """Change a draft: the fields in `changes` (names of CampaignInput) take the values given."""
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    if campaign.state != CampaignState.DRAFT:
        raise Conflict(ERROR_NOT_A_DRAFT, _("Only a draft campaign can be changed."))
    current = input_of(campaign)
    before = _audited(current, campaign)
    data = dataclasses.replace(current, **changes)
    is_url_changed = "webhook_url" in changes or "channel" in changes
    data = _check(data, campaign_id=campaign.pk, is_url_resolved=is_url_changed)
    campaign.updated_at = timezone.now()
    _save(campaign, data)
    after = _audited(data, campaign)
    _audit(campaign, actor=actor, action=AuditAction.CHANGE, before=before, after=after)
    logger.info("campaign.updated", extra={"campaign_id": campaign.pk, "actor": actor})
    return campaign


@transaction.atomic
def campaign_delete(*, campaign_id: int, actor: str) -> None:
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    if campaign.state != CampaignState.DRAFT:
        raise Conflict(
            ERROR_NOT_A_DRAFT, _("Only a draft campaign can be deleted; cancel it instead.")
        )
    before = _audited(input_of(campaign), campaign)
    campaign.delete()
    campaign.pk = campaign_id
    _audit(campaign, actor=actor, action=AuditAction.DELETE, before=before, after=None)
    logger.info("campaign.deleted", extra={"campaign_id": campaign_id, "actor": actor})


def _require_state(campaign: Campaign, allowed: Sequence[str], action: str) -> None:
    if campaign.state not in allowed:
        raise Conflict(
            ERROR_WRONG_STATE,
            _("A %(state)s campaign cannot be %(action)s.")
            % {"state": campaign.get_state_display(), "action": action},
            detail={"state": [campaign.state]},
        )


@transaction.atomic
def campaign_launch(*, campaign_id: int, actor: str, at: datetime | None = None) -> Campaign:
    """Start a draft: at once, at its time, or (a triggered campaign) from now on."""
    at = at or timezone.now()
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    _require_state(campaign, [CampaignState.DRAFT], _("launched"))
    before = {"state": campaign.state}
    _check(input_of(campaign), campaign_id=campaign.pk)
    campaign.launched_at = at
    if campaign.scheduled_at is not None and campaign.scheduled_at > at:
        campaign.state = CampaignState.SCHEDULED
    else:
        campaign.state = CampaignState.SENDING
        campaign.trigger_cursor = trigger_feed_end(campaign)
        if campaign.schedule_kind in (ScheduleKind.NOW, ScheduleKind.AT):
            enqueue.campaign_plan(campaign_id=campaign.pk)
    campaign.save(update_fields=["state", "launched_at", "trigger_cursor"])
    _audit_state(campaign, actor=actor, before=before, operation="launch")
    logger.info(
        "campaign.launched",
        extra={"campaign_id": campaign.pk, "actor": actor, "state": campaign.state},
    )
    return campaign


@transaction.atomic
def campaign_pause(*, campaign_id: int, actor: str) -> Campaign:
    """Stop reserving; deliveries reserved whose call has not been attempted go back to the
    queue (and release what they took from the caps). Calls already attempted finish."""
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    _require_state(campaign, [CampaignState.SENDING, CampaignState.SCHEDULED], _("paused"))
    before = {"state": campaign.state}
    campaign.state = CampaignState.PAUSED
    campaign.save(update_fields=["state"])
    _audit_state(campaign, actor=actor, before=before, operation="pause")
    released = channel_sends_release(campaign_id=campaign.pk)
    logger.info(
        "campaign.paused",
        extra={"campaign_id": campaign.pk, "actor": actor, "released": released},
    )
    return campaign


@transaction.atomic
def campaign_resume(*, campaign_id: int, actor: str) -> Campaign:
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    _require_state(campaign, [CampaignState.PAUSED], _("resumed"))
    before = {"state": campaign.state}
    is_due = campaign.scheduled_at is None or campaign.scheduled_at <= timezone.now()
    if is_due or campaign.planned_at is not None:
        campaign.state = CampaignState.SENDING
        if campaign.planned_at is None and _is_one_shot(campaign):
            enqueue.campaign_plan(campaign_id=campaign.pk)
        else:
            enqueue.campaign_reserve(campaign_id=campaign.pk)
    else:
        campaign.state = CampaignState.SCHEDULED
    campaign.save(update_fields=["state"])
    _audit_state(campaign, actor=actor, before=before, operation="resume")
    logger.info("campaign.resumed", extra={"campaign_id": campaign.pk, "actor": actor})
    return campaign


@transaction.atomic
def campaign_cancel(*, campaign_id: int, actor: str) -> Campaign:
    """Stop for good: every delivery whose call has not been attempted is cancelled."""
    campaign = campaign_get_or_404(campaign_id, for_update=True)
    _require_state(
        campaign,
        [CampaignState.SCHEDULED, CampaignState.SENDING, CampaignState.PAUSED],
        _("cancelled"),
    )
    before = {"state": campaign.state}
    campaign.state = CampaignState.CANCELLED
    campaign.finished_at = timezone.now()
    campaign.save(update_fields=["state", "finished_at"])
    _audit_state(campaign, actor=actor, before=before, operation="cancel")
    channel_sends_release(campaign_id=campaign.pk)
    cancelled = campaign.deliveries.filter(status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.CANCELLED, reason=DeliveryReason.CAMPAIGN_CANCELLED
    )
    logger.info(
        "campaign.cancelled",
        extra={"campaign_id": campaign.pk, "actor": actor, "cancelled": cancelled},
    )
    return campaign


def _audit_state(campaign: Campaign, *, actor: str, before: dict[str, Any], operation: str) -> None:
    """One change of a campaign's state (launch, pause, resume, cancel)."""
    audit_change(
        actor=actor,
        action=AuditAction.CHANGE,
        object_type="campaign",
        object_id=campaign.pk,
        before=before,
        after={"state": campaign.state},
        operation=operation,
    )


def _is_one_shot(campaign: Campaign) -> bool:
    return campaign.schedule_kind in (ScheduleKind.NOW, ScheduleKind.AT)


def campaign_audience(campaign: Campaign, *, at: datetime) -> Audience:
    """The one-shot audience of a campaign as of `at`."""
    return audience_query(
        campaign,
        include_ids=sorted(s.pk for s in campaign.include_segments.all()),
        exclude_ids=sorted(s.pk for s in campaign.exclude_segments.all()),
        as_of=at,
    )


def campaign_plan(*, campaign_id: int, at: datetime | None = None) -> int:
    """Freeze a launched one-shot campaign's audience into deliveries and, when it may send
    now, reserve them as they are written; then queue the reservation of whatever waits
    (deferred or throttled). Once: a second run finds it planned (or being planned by another
    worker) and does nothing. Answers the deliveries written."""
    # A second copy of the task finds the campaign's planning lock taken and stops.
    with session_lock(Lock.CAMPAIGN_PLANNING, campaign_id) as is_taken:
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if not is_taken or campaign is None:
            return 0
        if campaign.state != CampaignState.SENDING or campaign.planned_at is not None:
            return 0
        at = at or timezone.now()
        quiet_until = campaign.quiet_until(at)
        outcome = deliveries_plan(
            campaign,
            audience=campaign_audience(campaign, at=at),
            at=at,
            due_at=quiet_until or at,
            is_quiet=quiet_until is not None,
            reserve=quiet_until is None and campaign.throttle_per_minute is None,
        )
        with transaction.atomic():
            campaign = campaign_get_or_404(campaign_id, for_update=True)
            named = [*campaign.include_segments.all(), *campaign.exclude_segments.all()]
            campaign.audience_versions = {str(s.pk): s.rule_version for s in named}
            campaign.planned_at = at
            campaign.save(update_fields=["planned_at", "audience_versions"])
            enqueue.campaign_reserve(campaign_id=campaign.pk)
        return sum(outcome.counts.values())


def trigger_feed_end(campaign: Campaign) -> int:
    """The id the trigger's feed has reached: every row at or below it that will ever be
    visible is visible now (a writer still in flight may commit lower ids than the highest
    one seen). A triggered campaign greets the entrants above its cursor."""
    if campaign.schedule_kind == ScheduleKind.LIFECYCLE:
        return lifecycle_transition_feed_end()
    if campaign.schedule_kind == ScheduleKind.SEGMENT_ENTRY:
        return segment_membership_event_feed_end()
    return 0
