"""Campaign data model: frequency rules, campaigns with their variants, and the deliveries
ledger (one row per campaign, customer and step) that the send pipeline
(docs/architecture.md) plans, reserves against the rules in PostgreSQL, and dispatches. Business
rules live in `campaigns.services`, not here."""

import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from crm.models import ConsentChannel, Customer, Group, StaffMember
from segments.models import LifecycleState, Segment

MAX_WINDOW_HOURS = 24 * 366
MAX_DELAY_HOURS = 24 * 31


class Channel(models.TextChoices):
    WECOM_CUSTOMER = "wecom_customer", _("WeCom customer message")
    WECOM_GROUP = "wecom_group", _("WeCom group-chat message")
    WEBHOOK = "webhook", _("Webhook")


class RuleScope(models.TextChoices):
    ALL_CHANNELS = "all_channels", _("All channels")
    CHANNEL = "channel", _("One channel")
    LABEL = "label", _("Campaigns with a label")


class WindowKind(models.TextChoices):
    ROLLING = "rolling", _("Rolling (the last N hours)")
    CALENDAR = "calendar", _("Calendar (day, week or month in business time)")


class CalendarUnit(models.TextChoices):
    DAY = "day", _("Day")
    WEEK = "week", _("Week (from Monday)")
    MONTH = "month", _("Month")


class OnHit(models.TextChoices):
    SKIP = "skip", _("Skip the send")
    DEFER = "defer", _("Defer until the window frees up, then skip")


class FrequencyRule(models.Model):
    """At most `max_count` sends to one customer within a window, counting the sends in scope:
    every channel, one channel, or the campaigns carrying `label`. Every active rule applies at
    once and the most restrictive wins. A rule flagged `is_platform_preset` models a limit the
    platform itself enforces (WeCom's on bulk messages per customer), kept editable because
    the platform changes it."""

    name = models.CharField(_("name"), max_length=128, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    scope = models.CharField(_("scope"), max_length=16, choices=RuleScope.choices)
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices, blank=True)
    label = models.CharField(_("label"), max_length=64, blank=True)
    max_count = models.PositiveIntegerField(_("maximum sends"))
    window_kind = models.CharField(_("window"), max_length=16, choices=WindowKind.choices)
    window_hours = models.PositiveIntegerField(
        _("window length (hours)"), null=True, blank=True, help_text=_("Rolling windows only.")
    )
    calendar_unit = models.CharField(
        _("calendar unit"),
        max_length=8,
        choices=CalendarUnit.choices,
        blank=True,
        help_text=_("Calendar windows only."),
    )
    on_hit = models.CharField(
        _("when the cap is reached"), max_length=8, choices=OnHit.choices, default=OnHit.SKIP
    )
    max_delay_hours = models.PositiveIntegerField(
        _("maximum delay (hours)"),
        null=True,
        blank=True,
        help_text=_("Deferring rules only: past this delay the send is skipped."),
    )
    # Its own context: the staff member's "active" means still employed.
    is_active = models.BooleanField(pgettext_lazy("frequency rule", "active"), default=True)
    is_platform_preset = models.BooleanField(_("platform limit preset"), default=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("frequency rule")
        verbose_name_plural = _("frequency rules")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(max_count__gte=1), name="rule_max_count_positive"),
            models.CheckConstraint(
                condition=(
                    Q(scope=RuleScope.ALL_CHANNELS, channel="", label="")
                    | (Q(scope=RuleScope.CHANNEL, label="") & ~Q(channel=""))
                    | (Q(scope=RuleScope.LABEL, channel="") & ~Q(label=""))
                ),
                name="rule_scope_complete",
            ),
            models.CheckConstraint(
                condition=(
                    Q(
                        window_kind=WindowKind.ROLLING,
                        window_hours__isnull=False,
                        window_hours__gte=1,
                        window_hours__lte=MAX_WINDOW_HOURS,
                        calendar_unit="",
                    )
                    | (
                        Q(window_kind=WindowKind.CALENDAR, window_hours__isnull=True)
                        & ~Q(calendar_unit="")
                    )
                ),
                name="rule_window_complete",
            ),
            models.CheckConstraint(
                condition=(
                    Q(on_hit=OnHit.SKIP, max_delay_hours__isnull=True)
                    | Q(
                        on_hit=OnHit.DEFER,
                        max_delay_hours__isnull=False,
                        max_delay_hours__gte=1,
                        max_delay_hours__lte=MAX_DELAY_HOURS,
                    )
                ),
                name="rule_delay_complete",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The field-level errors the check constraints above would raise, in words."""
        errors: dict[str, Any] = {}
        if self.max_count is not None and self.max_count < 1:
            errors["max_count"] = _("At least one send.")
        if self.scope == RuleScope.CHANNEL and not self.channel:
            errors["channel"] = _("A rule scoped to one channel names the channel.")
        if self.scope == RuleScope.LABEL and not self.label:
            errors["label"] = _("A rule scoped to a label names the label.")
        if self.scope != RuleScope.CHANNEL and self.channel:
            errors["channel"] = _("Only a rule scoped to one channel names a channel.")
        if self.scope != RuleScope.LABEL and self.label:
            errors["label"] = _("Only a rule scoped to a label names a label.")
        if self.window_kind == WindowKind.ROLLING:
            if self.window_hours is None or not 1 <= self.window_hours <= MAX_WINDOW_HOURS:
                errors["window_hours"] = _("A rolling window lasts from 1 to %(max)s hours.") % {
                    "max": MAX_WINDOW_HOURS
                }
            if self.calendar_unit:
                errors["calendar_unit"] = _("Only a calendar window has a calendar unit.")
        if self.window_kind == WindowKind.CALENDAR:
            if not self.calendar_unit:
                errors["calendar_unit"] = _("A calendar window is a day, a week or a month.")
            if self.window_hours is not None:
                errors["window_hours"] = _("Only a rolling window has a length in hours.")
        if self.on_hit == OnHit.DEFER:
            if self.max_delay_hours is None or not 1 <= self.max_delay_hours <= MAX_DELAY_HOURS:
                errors["max_delay_hours"] = _(
                    "A deferring rule waits from 1 to %(max)s hours at most."
                ) % {"max": MAX_DELAY_HOURS}
        elif self.max_delay_hours is not None:
            errors["max_delay_hours"] = _("Only a deferring rule has a maximum delay.")
        if errors:
            raise ValidationError(errors)

    def window_start(self, at: datetime) -> datetime:
        """The start of the window that holds the instant `at`: `window_hours` before it, or
        the start of its calendar day, week (Monday) or month in business time. Sends after a
        rolling window's start count (a send made exactly N hours ago has left it), and sends
        at or after a calendar window's start."""
        if self.window_kind == WindowKind.ROLLING:
            assert self.window_hours is not None
            return at - timedelta(hours=self.window_hours)
        local = at.astimezone(ZoneInfo(settings.TIME_ZONE))
        day = local.date()
        if self.calendar_unit == CalendarUnit.WEEK:
            day -= timedelta(days=day.weekday())
        elif self.calendar_unit == CalendarUnit.MONTH:
            day = day.replace(day=1)
        return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(settings.TIME_ZONE))

    def window_frees_at(self, oldest_counted: datetime, at: datetime) -> datetime:
        """When a send refused at `at` could go, given the oldest send counted in its window:
        once that send leaves a rolling window, or when the next calendar window begins."""
        if self.window_kind == WindowKind.ROLLING:
            assert self.window_hours is not None
            return oldest_counted + timedelta(hours=self.window_hours)
        start = self.window_start(at).date()
        if self.calendar_unit == CalendarUnit.DAY:
            following = start + timedelta(days=1)
        elif self.calendar_unit == CalendarUnit.WEEK:
            following = start + timedelta(days=7)
        else:
            following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return datetime.combine(following, datetime.min.time(), tzinfo=ZoneInfo(settings.TIME_ZONE))


class CampaignState(models.TextChoices):
    DRAFT = "draft", _("Draft")
    SCHEDULED = "scheduled", _("Scheduled")
    SENDING = "sending", _("Sending")
    PAUSED = "paused", _("Paused")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")


class ScheduleKind(models.TextChoices):
    NOW = "now", _("Now")
    AT = "at", _("At a time")
    LIFECYCLE = "lifecycle", _("When a customer enters a lifecycle state")
    SEGMENT_ENTRY = "segment_entry", _("When a customer enters a segment")


class AttributionModel(models.TextChoices):
    LAST_TOUCH = "last_touch", _("Last touch")
    FIRST_TOUCH = "first_touch", _("First touch")
    LINEAR = "linear", _("Linear")


def new_salt() -> str:
    return secrets.token_hex(8)


# The consent channel each send channel needs; a webhook campaign names its own.
CONSENT_CHANNEL_OF = {
    "wecom_customer": ConsentChannel.WECOM,
    "wecom_group": ConsentChannel.WECOM,
}


class Campaign(models.Model):
    """A push to an audience: the union of `include_segments`, minus `exclude_segments`, within
    `extra_rule` when given. Launching plans one delivery per audience member; see
    `campaigns.services` for the pipeline. Only a draft may be edited."""

    name = models.CharField(_("name"), max_length=128, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    consent_channel = models.CharField(
        _("consent channel"),
        max_length=16,
        choices=ConsentChannel.choices,
        help_text=_("Customers who opted out on this channel are never sent to."),
    )
    labels = ArrayField(
        models.CharField(max_length=64),
        verbose_name=_("labels"),
        default=list,
        blank=True,
        help_text=_("Frequency rules scoped to a label count the campaigns carrying it."),
    )
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    # The key of the HMAC-SHA256 signature on this campaign's posts, encrypted like personal
    # data (crm.personal_data, PII_ENCRYPTION_KEYS). Shown once, when it is issued; see
    # campaigns.services.campaigns._webhook_secret_issue.
    webhook_secret_encrypted = models.TextField(blank=True, default="", editable=False)
    include_segments = models.ManyToManyField(
        Segment, verbose_name=_("segments"), related_name="+", blank=True
    )
    exclude_segments = models.ManyToManyField(
        Segment, verbose_name=_("excluded segments"), related_name="+", blank=True
    )
    extra_rule = models.JSONField(_("extra rule"), null=True, blank=True)
    schedule_kind = models.CharField(
        _("schedule"), max_length=16, choices=ScheduleKind.choices, default=ScheduleKind.NOW
    )
    scheduled_at = models.DateTimeField(_("send at"), null=True, blank=True)
    trigger_lifecycle_state = models.CharField(
        _("trigger lifecycle state"), max_length=12, choices=LifecycleState.choices, blank=True
    )
    trigger_segment = models.ForeignKey(
        Segment,
        verbose_name=_("trigger segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    trigger_ends_at = models.DateTimeField(_("trigger ends at"), null=True, blank=True)
    quiet_hours_start = models.TimeField(
        _("quiet hours from"), null=True, blank=True, default=time(21, 0)
    )
    quiet_hours_end = models.TimeField(
        _("quiet hours until"), null=True, blank=True, default=time(9, 0)
    )
    throttle_per_minute = models.PositiveIntegerField(
        _("sends per minute"), null=True, blank=True, help_text=_("Empty: as fast as possible.")
    )
    holdout_share = models.DecimalField(
        _("holdout share"),
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.1"),
        help_text=_("Share of the audience kept as a control group (0 to 0.5)."),
    )
    conversion_window_days = models.PositiveSmallIntegerField(
        _("conversion window (days)"), default=7
    )
    conversion_min_amount = models.DecimalField(
        _("minimum order amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    conversion_sku = models.CharField(_("conversion SKU"), max_length=64, blank=True)
    conversion_category = models.CharField(_("conversion category"), max_length=64, blank=True)
    attribution_model = models.CharField(
        _("attribution model"),
        max_length=12,
        choices=AttributionModel.choices,
        default=AttributionModel.LAST_TOUCH,
    )
    priority = models.SmallIntegerField(
        _("priority"), default=0, help_text=_("Higher goes first when campaigns are due together.")
    )
    respects_caps = models.BooleanField(_("respects frequency caps"), default=True)
    counts_toward_caps = models.BooleanField(_("counts toward frequency caps"), default=True)
    state = models.CharField(
        _("state"), max_length=12, choices=CampaignState.choices, default=CampaignState.DRAFT
    )
    salt = models.CharField(max_length=32, default=new_salt, editable=False)
    audience_versions = models.JSONField(
        _("segment rule versions planned"), default=dict, blank=True, editable=False
    )
    trigger_cursor = models.BigIntegerField(default=0, editable=False)
    throttle_minute = models.DateTimeField(null=True, blank=True, editable=False)
    throttle_used = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.CharField(_("created by"), max_length=128, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    planned_at = models.DateTimeField(_("planned at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        permissions = [("launch_campaign", _("Can launch, pause and cancel campaigns"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_share__gte=0, holdout_share__lte=Decimal("0.5")),
                name="campaign_holdout_share_range",
            ),
            models.CheckConstraint(
                condition=Q(conversion_window_days__gte=1), name="campaign_window_positive"
            ),
            models.CheckConstraint(
                condition=~Q(channel="webhook") | ~Q(webhook_secret_encrypted=""),
                name="campaign_webhook_has_secret",
            ),
        ]
        indexes = [models.Index(fields=["state", "-priority"], name="campaign_by_state")]

    # The webhook secret issued by the service call that answered this instance (its
    # create, an update that made it a webhook campaign, a rotation), for the caller to show
    # once; never loaded from the database.
    issued_webhook_secret: str = ""

    def __str__(self) -> str:
        return self.name

    def quiet_until(self, at: datetime) -> datetime | None:
        """The end of the quiet hours holding the instant `at` (business time), or None when
        `at` is outside them. A window may cross midnight (21:00-09:00, the default)."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is None or end is None or start == end:
            return None
        zone = ZoneInfo(settings.TIME_ZONE)
        local = at.astimezone(zone)
        clock = local.timetz().replace(tzinfo=None)
        if start < end:
            inside = start <= clock < end
            end_day = local.date()
        else:
            inside = clock >= start or clock < end
            end_day = local.date() + timedelta(days=1) if clock >= start else local.date()
        if not inside:
            return None
        return datetime.combine(end_day, end, tzinfo=zone)


class Variant(models.Model):
    """A version of the campaign's message. Customers outside the holdout are split among the
    variants by weight, by a stable hash of (campaign, customer)."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="variants"
    )
    name = models.CharField(_("name"), max_length=32)
    weight = models.PositiveSmallIntegerField(_("weight"), default=1)
    content = models.TextField(_("content"))

    class Meta:
        verbose_name = _("variant")
        verbose_name_plural = _("variants")
        ordering = ["campaign", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_unique_name"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="variant_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Waiting for its turn")
    RESERVED = "reserved", _("Reserved, being dispatched")
    SUBMITTED = "submitted", _("Submitted, waiting for the platform")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    DEAD_LETTER = "dead_letter", _("Dead letter (gave up retrying)")
    SUPPRESSED = "suppressed", _("Suppressed")
    HELD_OUT = "held_out", _("Held out (control group)")
    CANCELLED = "cancelled", _("Cancelled")


# A send that may reach or has reached the customer: these count toward frequency caps, at
# their `reserved_at`. Index `delivery_counted_by_customer` holds exactly these.
COUNTED_STATUSES = (
    DeliveryStatus.RESERVED,
    DeliveryStatus.SUBMITTED,
    DeliveryStatus.SENT,
)


class DeliveryReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("Opted out")
    NO_IDENTITY = "no_identity", _("No identity for the channel")
    CAPPED = "capped", _("Capped by a frequency rule")
    CAP_DELAY_EXCEEDED = "cap_delay_exceeded", _("Deferred by a frequency rule past its delay")
    QUIET_HOURS = "quiet_hours", _("Deferred by quiet hours")
    THROTTLED = "throttled", _("Deferred by the throttle")
    CAMPAIGN_CANCELLED = "campaign_cancelled", _("Campaign cancelled")
    NOT_CONTACT = "not_contact", _("No longer the sender's contact")
    PLATFORM_CAP = "platform_cap", _("Refused by the platform's own limit")
    UNCONFIRMED = "unconfirmed", _("Never confirmed by the staff member")
    CHANNEL_ERROR = "channel_error", _("Channel error")
    GROUP_BLOCKED = "group_blocked", _("Held back with its group chat")
    WEBHOOK_URL_NOT_ALLOWED = "webhook_url_not_allowed", _("Webhook URL not allowed")


class Delivery(models.Model):
    """One planned message to one customer: the ledger row every later step updates. Unique per
    (customer, campaign, step), so planning again adds nothing. `reserved_at` is when the send
    was reserved against the frequency rules (for a holdout member, when it would have been);
    `sent_at` is when the channel says it reached the customer."""

    customer = models.ForeignKey(  # served by delivery_unique
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,  # a launch writes up to a million rows; see SegmentMembership
    )
    campaign = models.ForeignKey(  # served by delivery_by_campaign
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
        # Checked at commit, the constraint cost a launch 0.1 s per batch of 20,000 rows.
        # Deliveries are written only by planning, under a share lock on their campaign's
        # row, and a campaign goes only through the ORM, which deletes its deliveries first.
        db_constraint=False,
    )
    step = models.PositiveSmallIntegerField(_("step"), default=0)
    # No index on variant, rule or sender: nothing looks deliveries up by them, and every
    # index costs each of the million rows a launch writes.
    variant = models.ForeignKey(
        Variant,
        verbose_name=_("variant"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    is_holdout = models.BooleanField(_("holdout"), default=False)
    status = models.CharField(
        _("status"), max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    reason = models.CharField(
        _("reason"), max_length=24, choices=DeliveryReason.choices, blank=True
    )
    rule = models.ForeignKey(
        FrequencyRule,
        verbose_name=_("frequency rule"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    due_at = models.DateTimeField(_("due at"))
    first_due_at = models.DateTimeField(_("first due at"))
    reserved_at = models.DateTimeField(_("reserved at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    sender = models.ForeignKey(
        StaffMember,
        verbose_name=_("sender"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # A group-chat campaign's message reaches the customer through this group chat. A chat
    # deleted since is a stale id: its members are not in it, so they are not sent to.
    group = models.ForeignKey(
        Group,
        verbose_name=_("group chat"),
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    channel_send = models.ForeignKey(
        "ChannelSend",
        verbose_name=_("channel call"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deliveries",
        db_constraint=False,
        db_index=False,  # served by delivery_by_channel_send
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    retry_at = models.DateTimeField(_("retry at"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    planned_at = models.DateTimeField(_("planned at"), default=timezone.now)

    class Meta:
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["customer", "campaign", "step"], name="delivery_unique")
        ]
        indexes = [
            # A campaign's deliveries in id order (its pages), with their status (its report,
            # its progress) read from the index alone.
            models.Index(
                fields=["campaign", "id"], include=["status"], name="delivery_by_campaign"
            ),
            # The reservation queue: due rows of one campaign, a sender's together (so that a
            # batch makes few WeCom bulk messages).
            models.Index(
                fields=["campaign", "due_at", "sender", "id"],
                condition=Q(status="pending"),
                name="delivery_pending_due",
            ),
            # What the frequency rules count for the customers of a reservation batch.
            models.Index(
                fields=["customer", "reserved_at"],
                condition=Q(status__in=COUNTED_STATUSES),
                include=["campaign"],
                name="delivery_counted_by_customer",
            ),
            models.Index(
                fields=["channel_send"],
                condition=Q(channel_send__isnull=False),
                name="delivery_by_channel_send",
            ),
            # The ledger list's filters by reason and holdout, newest first: a value few rows
            # hold would otherwise read the whole ledger. Partial: a delivery sent to a
            # customer in the test group (most of them) costs neither index anything.
            models.Index(
                fields=["reason", "id"], condition=~Q(reason=""), name="delivery_by_reason"
            ),
            models.Index(fields=["id"], condition=Q(is_holdout=True), name="delivery_held_out"),
            # The overview's contact pressure: the messages sent in a period, per customer.
            models.Index(
                fields=["sent_at"],
                condition=Q(status="sent"),
                include=["customer"],
                name="delivery_sent_by_time",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.campaign_id} #{self.customer_id} ({self.step}) {self.get_status_display()}"


class ChannelSendState(models.TextChoices):
    REQUESTED = "requested", _("Requested (outcome unknown until answered)")
    ACCEPTED = "accepted", _("Accepted by the platform")
    FAILED = "failed", _("Failed")
    FINISHED = "finished", _("Results collected")


class ChannelSend(models.Model):
    """One call to a channel: a WeCom bulk-message task for one sender and one text, or a
    run of webhook POSTs. Written in the same statement that reserves its deliveries, so that
    a crash between the call and its answer leaves a record to check against the platform
    before anything is sent again. `content` is the text when all its deliveries share it;
    empty when each delivery's text is rendered for its customer at the first attempt."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="+"
    )
    channel = models.CharField(_("channel"), max_length=32, choices=Channel.choices)
    sender = models.ForeignKey(
        StaffMember,
        verbose_name=_("sender"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    content = models.TextField(_("content"), blank=True)
    state = models.CharField(
        _("state"),
        max_length=12,
        choices=ChannelSendState.choices,
        default=ChannelSendState.REQUESTED,
    )
    external_id = models.CharField(_("platform id"), max_length=128, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    requested_at = models.DateTimeField(_("requested at"), default=timezone.now)
    attempted_at = models.DateTimeField(_("last attempted at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    next_poll_at = models.DateTimeField(_("next poll at"), null=True, blank=True)
    # When the tick last queued it again as lost: it is not queued again before the same wait
    # has passed once more, so a backlog of calls is not multiplied minute after minute.
    requeued_at = models.DateTimeField(_("queued again at"), null=True, blank=True)

    class Meta:
        verbose_name = _("channel call")
        verbose_name_plural = _("channel calls")
        indexes = [
            models.Index(
                fields=["next_poll_at"],
                condition=Q(state="accepted"),
                name="channel_send_to_poll",
            ),
            models.Index(
                fields=["requested_at"],
                condition=Q(state="requested"),
                name="channel_send_unanswered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} #{self.pk} ({self.get_state_display()})"


class Conversion(models.Model):
    """A qualifying paid order placed within a delivery's goal window: after it was sent, or,
    for a holdout member, after it would have been. `credit` is the delivery's share of the
    order under its campaign's attribution model (0 for holdout members, who were not
    touched); `revenue` is the order's amount net of refunds. Rewritten from the orders and
    deliveries of a customer whenever they change, so computing again changes nothing."""

    delivery = models.ForeignKey(
        Delivery,
        verbose_name=_("delivery"),
        on_delete=models.CASCADE,
        related_name="conversions",
        db_index=False,
        db_constraint=False,
    )
    order = models.ForeignKey(
        "crm.Order",
        verbose_name=_("order"),
        on_delete=models.CASCADE,
        related_name="+",
        db_constraint=False,
    )
    campaign = models.ForeignKey(  # served by conversion_by_campaign
        Campaign,
        verbose_name=_("campaign"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    customer = models.ForeignKey(  # served by conversion_by_customer
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    is_holdout = models.BooleanField(_("holdout"), default=False)
    credit = models.DecimalField(_("credit"), max_digits=7, decimal_places=6)
    revenue = models.DecimalField(_("order amount"), max_digits=14, decimal_places=2)
    converted_at = models.DateTimeField(_("converted at"))

    class Meta:
        verbose_name = _("conversion")
        verbose_name_plural = _("conversions")
        constraints = [
            models.UniqueConstraint(fields=["delivery", "order"], name="conversion_unique")
        ]
        indexes = [
            models.Index(fields=["campaign", "delivery"], name="conversion_by_campaign"),
            models.Index(fields=["customer"], name="conversion_by_customer"),
        ]

    def __str__(self) -> str:
        return f"{self.delivery_id}<-{self.order_id}"


class LinkClick(models.Model):
    """A click on a tracked link of a campaign message. `delivery` is known when the message
    was addressed to one customer (webhook posts, or texts with customer variables); a WeCom
    bulk text shared by many customers carries only its variant."""

    campaign = models.ForeignKey(
        Campaign, verbose_name=_("campaign"), on_delete=models.CASCADE, related_name="+"
    )
    variant = models.ForeignKey(
        Variant,
        verbose_name=_("variant"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    delivery = models.ForeignKey(
        Delivery,
        verbose_name=_("delivery"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
    )
    link_no = models.PositiveSmallIntegerField(_("link"))
    clicked_at = models.DateTimeField(_("clicked at"), default=timezone.now)

    class Meta:
        verbose_name = _("link click")
        verbose_name_plural = _("link clicks")

    def __str__(self) -> str:
        clicked_at = timezone.localtime(self.clicked_at)
        return f"#{self.campaign_id} #{self.link_no} {clicked_at:%Y-%m-%d %H:%M}"
