"""Campaign data model. So far: the channels a campaign can send through and the frequency
rules that cap how often one customer is contacted. Rules are read by the reservation step of
the send pipeline (DESIGN.md §3), which checks and consumes them in PostgreSQL."""

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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
    is_active = models.BooleanField(_("active"), default=True)
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
        the start of its calendar day, week (Monday) or month in business time. Sends at or
        after the start count."""
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
