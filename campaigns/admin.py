"""Operator admin of campaigns: the frequency rules editor; campaigns with their variants,
written through the services and read-only once launched; launch, pause, resume and cancel as
actions behind a confirmation page; a campaign's dry run and report pages, reading the
services; the deliveries ledger and the channel calls, read-only; and a customer's recent
deliveries on the customer page."""

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import display_for_value, unquote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from campaigns.models import (
    Campaign,
    CampaignState,
    Channel,
    ChannelSend,
    Delivery,
    DeliveryReason,
    DeliveryStatus,
    FrequencyRule,
    Variant,
)
from campaigns.selectors import (
    campaign_delivery_counts,
    campaign_search_condition,
    customer_delivery_list,
)
from campaigns.services.campaigns import (
    CampaignInput,
    VariantInput,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_launch,
    campaign_pause,
    campaign_resume,
    campaign_update,
    campaign_webhook_secret_rotate,
)
from campaigns.services.dry_run import (
    OUTCOME_CAPPED,
    OUTCOME_DEFERRED,
    OUTCOME_GROUP_BLOCKED,
    OUTCOME_HOLDOUT,
    OUTCOME_NO_IDENTITY,
    OUTCOME_OPTED_OUT,
    OUTCOME_SEND,
    SAMPLE_SIZE,
    DryRun,
    campaign_dry_run,
)
from campaigns.services.frequency_rules import (
    EDITABLE_FIELDS,
    frequency_rule_create,
    frequency_rule_delete,
    frequency_rule_update,
)
from campaigns.services.report import ArmReport, CampaignReport, campaign_report
from core.admin import ReadOnlyAdmin
from core.errors import DomainError
from core.validators import FREE_TEXT_MAX_LENGTH, validate_json_text, validate_planned_time
from crm.models import Customer

CONTACT_PRESSURE_DAYS = 30
CONTACT_PRESSURE_ROWS = 50  # the newest; the rest are a click away in the deliveries list


@admin.register(FrequencyRule)
class FrequencyRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "scope",
        "channel",
        "label",
        "max_count",
        "window_description",
        "on_hit",
        "is_active",
        "is_platform_preset",
    ]
    list_filter = ["is_active", "scope", "channel", "window_kind", "on_hit", "is_platform_preset"]
    search_fields = ["name", "label"]
    readonly_fields = ["is_platform_preset", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "is_active", "is_platform_preset"]}),
        (_("Which sends count"), {"fields": ["scope", "channel", "label"]}),
        (
            _("Cap"),
            {"fields": ["max_count", "window_kind", "window_hours", "calendar_unit"]},
        ),
        (_("When the cap is reached"), {"fields": ["on_hit", "max_delay_hours"]}),
        (_("History"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("window"))
    def window_description(self, rule: FrequencyRule) -> str:
        if rule.window_hours is not None:
            return _("%(hours)s hours") % {"hours": rule.window_hours}
        return rule.get_calendar_unit_display()

    def save_model(self, request: HttpRequest, obj: FrequencyRule, form: Any, change: bool) -> None:
        actor = f"user:{request.user.pk}"
        fields = {
            key: form.cleaned_data[key] for key in EDITABLE_FIELDS if key in form.cleaned_data
        }
        if change:
            saved = frequency_rule_update(rule_id=obj.pk, actor=actor, **fields)
        else:
            saved = frequency_rule_create(actor=actor, **fields)
        obj.pk = saved.pk

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.is_platform_preset:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: FrequencyRule) -> None:
        self.delete_queryset(request, FrequencyRule.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        """Through the service, which keeps the platform preset."""
        for rule_id in queryset.values_list("pk", flat=True):
            try:
                frequency_rule_delete(rule_id=rule_id, actor=f"user:{request.user.pk}")
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)


# --- Campaigns ---------------------------------------------------------------------------

# What the services refused on a first attempt to save the campaign form, keyed by their
# field names; set around the second attempt, which shows the form again with these reasons
# (see CampaignAdmin.changeform_view). A context variable, so concurrent requests never see
# each other's.
_service_errors: ContextVar[dict[str, list[str]] | None] = ContextVar(
    "campaign_service_errors", default=None
)

# The services' names of the fields the form names otherwise.
FORM_FIELD_OF = {
    "include_segment_ids": "include_segments",
    "exclude_segment_ids": "exclude_segments",
    "trigger_segment_id": "trigger_segment",
}


# The accepted values of core.validators, as the API checks them (campaigns.api.campaigns).
_FORM_FIELD_VALIDATORS: dict[str, list[Callable[[Any], None]]] = {
    "scheduled_at": [validate_planned_time],
    "trigger_ends_at": [validate_planned_time],
    "extra_rule": [validate_json_text],
}
_FORM_FIELD_OPTIONS: dict[str, dict[str, Any]] = {
    "conversion_min_amount": {"min_value": 0},
}


def _form_field(field: models.Field, **kwargs: Any) -> forms.Field | None:
    """Django 6's default: a URL typed without a scheme is taken as https."""
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return _checked(field, field.formfield(**{**_FORM_FIELD_OPTIONS.get(field.name, {}), **kwargs}))


def _checked(field: models.Field, formfield: forms.Field | None) -> forms.Field | None:
    if formfield is not None:
        formfield.validators.extend(_FORM_FIELD_VALIDATORS.get(field.name, []))
    return formfield


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        formfield_callback = _form_field
        # What CampaignInput holds; the admin narrows it to the fieldsets shown.
        fields = [
            *(name for name in CampaignInput.MODEL_FIELDS if name != "trigger_segment_id"),
            "trigger_segment",
            "include_segments",
            "exclude_segments",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "consent_channel" in self.fields:
            self.fields["consent_channel"].required = False
            self.fields["consent_channel"].help_text = _(
                "Empty: the channel's own (WeCom for both WeCom channels). A webhook campaign "
                "names it. Customers who opted out on it are never sent to."
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name, problems in (_service_errors.get() or {}).items():
            field = FORM_FIELD_OF.get(name, name)
            for problem in problems:
                if field in self.fields:
                    self.add_error(field, str(problem))
                elif name == "__all__":
                    self.add_error(None, str(problem))
                else:  # a variant's field: variants[0].content
                    self.add_error(None, f"{name}: {problem}")
        return cleaned


def _campaign_values(cleaned: dict[str, Any], variants: list[VariantInput]) -> dict[str, Any]:
    """The campaign form's values as CampaignInput names them."""
    values = {name: cleaned[name] for name in CampaignInput.MODEL_FIELDS if name in cleaned}
    trigger_segment = cleaned.get("trigger_segment")
    values["trigger_segment_id"] = trigger_segment.pk if trigger_segment else None
    values["include_segment_ids"] = sorted(s.pk for s in cleaned.get("include_segments", []))
    values["exclude_segment_ids"] = sorted(s.pk for s in cleaned.get("exclude_segments", []))
    values["variants"] = variants
    return values


def _variant_inputs(formset: Any) -> list[VariantInput]:
    """The variants the inline holds, in its order, leaving out rows deleted or left blank."""
    variants = []
    for form in formset.forms:
        cleaned = getattr(form, "cleaned_data", None) or {}
        if not cleaned or cleaned.get("DELETE"):
            continue
        variants.append(
            VariantInput(name=cleaned["name"], content=cleaned["content"], weight=cleaned["weight"])
        )
    return variants


def _is_draft(campaign: Campaign | None) -> bool:
    return campaign is None or campaign.state == CampaignState.DRAFT


class VariantInline(admin.TabularInline):
    """A draft's messages. Variants are part of their campaign: the campaign's permissions
    govern them, and they are saved with it through the service."""

    model = Variant
    fields = ["name", "weight", "content"]
    extra = 0

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "content":
            kwargs["max_length"] = FREE_TEXT_MAX_LENGTH
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_extra(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> int:
        return 1 if obj is None else 0

    def _may_edit(self, request: HttpRequest, obj: Campaign | None) -> bool:
        if not _is_draft(obj):
            return False
        opts = Campaign._meta
        action = "add" if obj is None else "change"
        return request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        opts = Campaign._meta
        return any(
            request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
            for action in ("view", "change")
        )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may_edit(request, obj)


class CampaignChangeList(ChangeList):
    """Fetches the delivery counts of the page's campaigns in one query."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        counts = campaign_delivery_counts([campaign.pk for campaign in self.result_list])
        for campaign in self.result_list:  # evaluates and caches the page the template shows
            campaign.counts_by_status = counts[campaign.pk]


@dataclass(frozen=True)
class Transition:
    """A state change offered as an admin action, with the words of its confirmation."""

    service: Callable[..., Campaign]
    title: Promise
    question: Promise
    confirm_label: Promise
    done: Promise  # takes %(count)d


TRANSITIONS = {
    "launch": Transition(
        service=campaign_launch,
        title=_("Launch campaigns"),
        question=_(
            "Launch these campaigns? Each starts sending at once, at its scheduled time, or "
            "(a triggered campaign) with the next customer who enters its trigger."
        ),
        confirm_label=_("Yes, launch"),
        done=ngettext_lazy(
            "%(count)d campaign launched.", "%(count)d campaigns launched.", "count"
        ),
    ),
    "pause": Transition(
        service=campaign_pause,
        title=_("Pause campaigns"),
        question=_(
            "Pause these campaigns? Sends already handed to a channel finish; the others wait "
            "until the campaign is resumed."
        ),
        confirm_label=_("Yes, pause"),
        done=ngettext_lazy("%(count)d campaign paused.", "%(count)d campaigns paused.", "count"),
    ),
    "resume": Transition(
        service=campaign_resume,
        title=_("Resume campaigns"),
        question=_("Resume these campaigns?"),
        confirm_label=_("Yes, resume"),
        done=ngettext_lazy("%(count)d campaign resumed.", "%(count)d campaigns resumed.", "count"),
    ),
    "cancel": Transition(
        service=campaign_cancel,
        title=_("Cancel campaigns"),
        question=_(
            "Cancel these campaigns for good? Every send not yet handed to a channel is "
            "cancelled; a cancelled campaign cannot be resumed."
        ),
        confirm_label=_("Yes, cancel them"),
        done=ngettext_lazy(
            "%(count)d campaign cancelled.", "%(count)d campaigns cancelled.", "count"
        ),
    ),
    "rotate_webhook_secret": Transition(
        service=campaign_webhook_secret_rotate,
        title=_("Rotate webhook signing secrets"),
        question=_(
            "Give these webhook campaigns new signing secrets? Posts from now on are signed "
            "with the new secret and the old one no longer verifies: the receiver must be "
            "given the new secret, which is shown only once, on the next page."
        ),
        confirm_label=_("Yes, rotate"),
        done=ngettext_lazy(
            "%(count)d signing secret rotated.", "%(count)d signing secrets rotated.", "count"
        ),
    ),
}

# Shown once, when a secret is issued: only its encrypted form is kept.
SECRET_ISSUED = _(
    "Signing secret of the webhook campaign “%(name)s”: %(secret)s — it is shown "
    "only this once: give it to the receiver now (it verifies the X-CRM-Signature header)."
)


# --- The dry run and report pages: their figures in words ----------------------------------

UNKNOWN = "—"  # a figure that cannot be computed: an empty arm, a holdout that never converted

# The dry run's outcome of one audience member, in words.
OUTCOME_LABELS: dict[str, Promise] = {
    OUTCOME_SEND: _("Would be sent"),
    OUTCOME_HOLDOUT: _("Held out (control group)"),
    OUTCOME_OPTED_OUT: _("Opted out"),
    OUTCOME_NO_IDENTITY: _("No identity for the channel"),
    OUTCOME_GROUP_BLOCKED: _("Held back with its group chat"),
    OUTCOME_CAPPED: _("Capped by a frequency rule"),
    OUTCOME_DEFERRED: _("Deferred by a frequency rule"),
}

# The dry run answers what launching would do: worth a look until the campaign is planned.
DRY_RUN_STATES = {CampaignState.DRAFT, CampaignState.SCHEDULED}


def _rounded(value: float | Decimal, places: int) -> Decimal:
    """Half up: number_format alone truncates a float."""
    exponent = Decimal(1).scaleb(-places)
    return Decimal(str(value)).quantize(exponent, rounding=ROUND_HALF_UP) + 0  # no "-0.00"


def _fixed(value: float | Decimal, places: int = 2) -> str:
    return number_format(_rounded(value, places), places)


def _signed(value: float) -> str:
    rounded = _rounded(value, 2)
    text = number_format(rounded, 2)
    return f"+{text}" if rounded > 0 else text


def _percent(share: float | None) -> str:
    return UNKNOWN if share is None else f"{_fixed(share * 100)}%"


def _relative(share: float | None) -> str:
    """A change relative to a rate, signed."""
    return UNKNOWN if share is None else f"{_signed(share * 100)}%"


def _points(difference: float | None) -> str:
    """A difference of two rates, in percentage points."""
    if difference is None:
        return UNKNOWN
    return str(_("%(points)s pp") % {"points": _signed(difference * 100)})


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return UNKNOWN
    return str(
        _("%(low)s to %(high)s pp") % {"low": _signed(low * 100), "high": _signed(high * 100)}
    )


def _p_value(p_value: float | None) -> str:
    if p_value is None:
        return UNKNOWN
    return "< 0.0001" if p_value < 0.0001 else _fixed(p_value, 4)


def _money(amount: Decimal | None) -> str:
    return UNKNOWN if amount is None else _fixed(amount)


def _count_text(count: int) -> str:
    return number_format(count)


@dataclass(frozen=True)
class FigureLine:
    """One row of a table of figures: its label, then one cell per column."""

    label: Promise | str
    cells: list[str]


def _dry_run_context(campaign: Campaign, dry: DryRun) -> dict[str, Any]:
    rules = sorted({*dry.capped_by_rule, *dry.deferred_by_rule})
    variants = list(campaign.variants.order_by("name", "id").values_list("name", "weight"))
    sample = [
        {
            **member,
            "outcome_label": OUTCOME_LABELS.get(member["outcome"], member["outcome"]),
            "customer_url": reverse("admin:crm_customer_change", args=[member["customer_id"]]),
        }
        for member in dry.sample
    ]
    return {
        "dry_run": dry,
        "sample_size": SAMPLE_SIZE,
        "rule_columns": [_("Capped"), _("Deferred")],
        "variant_columns": [_("Weight"), _("Would be sent"), _("Share")],
        "held_back": sum(dry.capped_by_rule.values()) + sum(dry.deferred_by_rule.values()),
        "rule_lines": [
            FigureLine(
                name,
                [
                    _count_text(dry.capped_by_rule.get(name, 0)),
                    _count_text(dry.deferred_by_rule.get(name, 0)),
                ],
            )
            for name in rules
        ],
        "variant_lines": [
            FigureLine(
                name,
                [
                    _count_text(weight),
                    _count_text(dry.per_variant.get(name, 0)),
                    _percent(dry.per_variant.get(name, 0) / dry.would_send)
                    if dry.would_send
                    else UNKNOWN,
                ],
            )
            for name, weight in variants
        ],
        "has_quiet_hours": campaign.quiet_hours_start is not None
        and campaign.quiet_hours_end is not None
        and campaign.quiet_hours_start != campaign.quiet_hours_end,
        "sample": sample,
        "is_group_chat": campaign.channel == Channel.WECOM_GROUP,
    }


# The report's table: what happened to each arm. The holdout has no variant, so it shows in
# the campaign's column only.
REPORT_METRICS: list[tuple[Promise, Callable[[ArmReport], str], bool]] = [
    (_("Audience planned"), lambda arm: _count_text(arm.audience), False),
    (_("Holdout (control group)"), lambda arm: _count_text(arm.holdout), True),
    (_("Suppressed"), lambda arm: _count_text(sum(arm.suppressed.values())), False),
    (_("Waiting"), lambda arm: _count_text(arm.waiting), False),
    (_("Cancelled"), lambda arm: _count_text(arm.cancelled), False),
    (_("Sent"), lambda arm: _count_text(arm.sent), False),
    (_("Failed"), lambda arm: _count_text(arm.failed), False),
    (_("Recipients who clicked"), lambda arm: _count_text(arm.clicked), False),
    (_("Clicks"), lambda arm: _count_text(arm.clicks), False),
    (_("Recipients who converted"), lambda arm: _count_text(arm.converted), False),
    (_("Conversion rate"), lambda arm: _percent(arm.conversion_rate), False),
    (_("Attributed orders"), lambda arm: _fixed(arm.attributed_orders), False),
    (_("Attributed revenue"), lambda arm: _money(arm.revenue), False),
    (_("Attributed revenue per recipient"), lambda arm: _money(arm.revenue_per_recipient), False),
    (_("Revenue in the conversion window"), lambda arm: _money(arm.window_revenue), False),
]


def _breakdown(
    arms: list[ArmReport], counts_of: Callable[[ArmReport], dict[str, int]]
) -> list[FigureLine]:
    """One line per key of the arms' counts (by name), each arm's count in a column."""
    keys = sorted({key for arm in arms for key in counts_of(arm)})
    return [
        FigureLine(key, [_count_text(counts_of(arm).get(key, 0)) for arm in arms]) for key in keys
    ]


def _reason_breakdown(
    arms: list[ArmReport], counts_of: Callable[[ArmReport], dict[str, int]]
) -> list[FigureLine]:
    """As _breakdown, for counts by delivery reason: in the reasons' order, in words."""
    order = {reason: index for index, reason in enumerate(DeliveryReason.values)}
    lines = sorted(
        _breakdown(arms, counts_of), key=lambda line: order.get(str(line.label), len(order))
    )
    return [
        FigureLine(DeliveryReason(line.label).label, line.cells)
        if line.label in order
        else line  # a reason this code does not know (yet): as stored
        for line in lines
    ]


# The charts' geometry, in SVG user units; the SVG scales down with the page.
CHART_LABEL_WIDTH = 170  # the arms' names, right-aligned against the plot
CHART_PLOT_WIDTH = 340
CHART_VALUE_WIDTH = 250  # the value, written after the plot
CHART_ROW_HEIGHT = 30
CHART_BAR_HEIGHT = 18
CHART_CAP_HEIGHT = 6  # half the height of a whisker's end
CHART_AXIS_HEIGHT = 24  # the scale's labels, under the plot
CHART_NAME_LENGTH = 14  # longer names are shortened, whole in their row's <title>
CHART_SCALES = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 1.5, 2.0)


@dataclass(frozen=True)
class ChartRow:
    name: str  # whole, for the row's <title>
    label: str  # as shown
    value: str
    is_holdout: bool
    text_y: float
    bar_y: float
    mid_y: float
    cap_top: float
    cap_bottom: float
    bar_width: float = 0  # the rate chart's bar
    point_x: float | None = None  # the lift chart's estimate and interval
    low_x: float = 0
    high_x: float = 0


@dataclass(frozen=True)
class Chart:
    title: str
    description: str
    rows: list[ChartRow]
    ticks: list[tuple[float, str]]  # x, label
    zero_x: float | None = None  # the lift chart's line of no difference
    width: int = CHART_LABEL_WIDTH + CHART_PLOT_WIDTH + CHART_VALUE_WIDTH
    bar_height: int = CHART_BAR_HEIGHT
    label_x: int = CHART_LABEL_WIDTH - 8
    plot_left: int = CHART_LABEL_WIDTH
    value_x: int = CHART_LABEL_WIDTH + CHART_PLOT_WIDTH + 8

    @property
    def plot_bottom(self) -> int:
        return len(self.rows) * CHART_ROW_HEIGHT

    @property
    def height(self) -> int:
        return self.plot_bottom + CHART_AXIS_HEIGHT

    @property
    def tick_label_y(self) -> int:
        return self.plot_bottom + CHART_AXIS_HEIGHT - 8


def _scale(largest: float) -> float:
    """The smallest round bound at or above `largest`."""
    return next((bound for bound in CHART_SCALES if largest <= bound), CHART_SCALES[-1])


def _tick(share: float) -> str:
    """A scale's mark, in percent: a whole number where it is one."""
    rounded = _rounded(share * 100, 1)
    return number_format(rounded, 0 if rounded == rounded.to_integral_value() else 1)


def _short(name: str) -> str:
    return name if len(name) <= CHART_NAME_LENGTH else f"{name[: CHART_NAME_LENGTH - 1]}…"


def _row_position(index: int) -> dict[str, float]:
    middle = index * CHART_ROW_HEIGHT + CHART_ROW_HEIGHT / 2
    return {
        "text_y": middle + 4,  # a 12px font's baseline, centred on the row
        "bar_y": middle - CHART_BAR_HEIGHT / 2,
        "mid_y": middle,
        "cap_top": middle - CHART_CAP_HEIGHT,
        "cap_bottom": middle + CHART_CAP_HEIGHT,
    }


def _rate_chart(arms: list[tuple[str, float | None, bool]]) -> Chart:
    """Bars of conversion rate: (name, rate, is_holdout) per arm."""
    bound = _scale(max((rate for _name, rate, _h in arms if rate is not None), default=0))
    rows = [
        ChartRow(
            name=name,
            label=_short(name),
            value=_percent(rate),
            is_holdout=is_holdout,
            bar_width=round((rate or 0) / bound * CHART_PLOT_WIDTH, 1),
            **_row_position(index),
        )
        for index, (name, rate, is_holdout) in enumerate(arms)
    ]
    ticks = [
        (CHART_LABEL_WIDTH + part * CHART_PLOT_WIDTH, f"{_tick(bound * part)}%")
        for part in (0, 0.5, 1)
    ]
    return Chart(
        title=str(_("Conversion rate")),
        description=str(
            _("Conversion rate of each variant's recipients and of the holdout: %(values)s.")
            % {"values": "; ".join(f"{row.name} {row.value}" for row in rows)}
        ),
        rows=rows,
        ticks=ticks,
    )


def _lift_chart(arms: list[tuple[str, ArmReport]]) -> Chart:
    """The difference of conversion rate against the holdout, a whisker for its 95 % interval,
    centred on no difference."""
    # The interval holds the estimate; a lift is known whole or not at all.
    ends = [
        abs(end)
        for _name, arm in arms
        if arm.lift is not None
        for end in (arm.lift.ci_low, arm.lift.ci_high)
        if end is not None
    ]
    bound = _scale(max(ends, default=0))

    def x(difference: float) -> float:
        return round(CHART_LABEL_WIDTH + (difference + bound) / (2 * bound) * CHART_PLOT_WIDTH, 1)

    rows = []
    for index, (name, arm) in enumerate(arms):
        lift = arm.lift
        if lift is None or lift.absolute is None or lift.ci_low is None or lift.ci_high is None:
            rows.append(ChartRow(name, _short(name), UNKNOWN, False, **_row_position(index)))
            continue
        value = _("%(lift)s [%(low)s, %(high)s]") % {
            "lift": _points(lift.absolute),
            "low": _signed(lift.ci_low * 100),
            "high": _signed(lift.ci_high * 100),
        }
        rows.append(
            ChartRow(
                name,
                _short(name),
                str(value),
                False,
                point_x=x(lift.absolute),
                low_x=x(lift.ci_low),
                high_x=x(lift.ci_high),
                **_row_position(index),
            )
        )
    return Chart(
        title=str(_("Lift against the holdout")),
        description=str(
            _(
                "Difference between each arm's conversion rate and the holdout's, in "
                "percentage points, with its 95%% confidence interval in brackets: %(values)s."
            )
            % {"values": "; ".join(f"{row.name} {row.value}" for row in rows)}
        ),
        rows=rows,
        ticks=[
            (x(value), str(_("%(points)s pp") % {"points": _tick(value)}))
            for value in (-bound, 0, bound)
        ],
        zero_x=x(0),
    )


def _report_context(report: CampaignReport) -> dict[str, Any]:
    arms = [report.total, *report.variants]
    names = [str(_("All variants")), *(str(arm.variant) for arm in report.variants)]
    holdout_rate = report.total.lift.holdout_rate if report.total.lift else None
    lift_lines = []
    for name, arm in zip(names, arms, strict=True):
        lift = arm.lift
        lift_lines.append(
            FigureLine(
                name,
                [UNKNOWN] * 7
                if lift is None
                else [
                    _percent(lift.treated_rate),
                    _percent(lift.holdout_rate),
                    _points(lift.absolute),
                    _relative(lift.relative),
                    _interval(lift.ci_low, lift.ci_high),
                    _p_value(lift.p_value),
                    _money(lift.incremental_revenue),
                ],
            )
        )
    return {
        "columns": names,
        "holdout_columns": [_("Holdout")],
        "lift_columns": [
            _("Conversion rate"),
            _("Holdout conversion rate"),
            _("Absolute lift"),
            _("Relative lift"),
            _("%(level)s%% confidence interval") % {"level": 95},
            _("p-value"),
            _("Incremental revenue"),
        ],
        "figure_lines": [
            FigureLine(
                label,
                [UNKNOWN if total_only and arm is not report.total else show(arm) for arm in arms],
            )
            for label, show, total_only in REPORT_METRICS
        ],
        "suppressed_lines": _reason_breakdown(arms, lambda arm: arm.suppressed),
        "capped_lines": _breakdown(arms, lambda arm: arm.capped_by_rule),
        "deferred_lines": _reason_breakdown(arms, lambda arm: arm.deferred),
        "holdout_lines": [
            FigureLine(_("Converted"), [_count_text(report.holdout_converted)]),
            FigureLine(_("Conversion rate"), [_percent(holdout_rate)]),
            FigureLine(
                _("Revenue in the conversion window"), [_money(report.holdout_window_revenue)]
            ),
        ],
        "lift_lines": lift_lines,
        "rate_chart": _rate_chart(
            [
                *((str(arm.variant), arm.conversion_rate, False) for arm in report.variants),
                (str(_("Holdout")), holdout_rate, True),
            ]
        ),
        "lift_chart": _lift_chart(list(zip(names, arms, strict=True))),
    }


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    inlines = [VariantInline]
    list_display = [
        "name",
        "channel",
        "state",
        "schedule",
        "holdout",
        "priority",
        "launched_at",
        "delivery_counts",
    ]
    list_filter = ["state", "channel", "schedule_kind"]
    search_fields = ["name"]  # and labels: see get_search_results
    search_help_text = _("Name contains, or a label.")
    autocomplete_fields = ["include_segments", "exclude_segments", "trigger_segment"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    readonly_fields = [
        "state",
        "delivery_counts",
        "created_by",
        "created_at",
        "updated_at",
        "launched_at",
        "planned_at",
        "finished_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "description",
                    "channel",
                    "consent_channel",
                    "webhook_url",
                    "labels",
                    "priority",
                ]
            },
        ),
        (_("Audience"), {"fields": ["include_segments", "exclude_segments", "extra_rule"]}),
        (
            _("Schedule"),
            {
                "fields": [
                    "schedule_kind",
                    "scheduled_at",
                    "trigger_lifecycle_state",
                    "trigger_segment",
                    "trigger_ends_at",
                    "quiet_hours_start",
                    "quiet_hours_end",
                    "throttle_per_minute",
                ]
            },
        ),
        (
            _("Holdout and frequency caps"),
            {"fields": ["holdout_share", "respects_caps", "counts_toward_caps"]},
        ),
        (
            _("Conversions"),
            {
                "fields": [
                    "conversion_window_days",
                    "conversion_min_amount",
                    "conversion_sku",
                    "conversion_category",
                    "attribution_model",
                ]
            },
        ),
        (
            _("Progress"),
            {
                "fields": [
                    "state",
                    "delivery_counts",
                    "created_by",
                    "created_at",
                    "updated_at",
                    "launched_at",
                    "planned_at",
                    "finished_at",
                ]
            },
        ),
    ]
    actions = ["launch", "pause", "resume", "cancel", "rotate_webhook_secret"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The admin builds its form with this callback, not CampaignForm.Meta's.
        kwargs = {**_FORM_FIELD_OPTIONS.get(db_field.name, {}), **kwargs}
        return _checked(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return fieldsets if obj is not None else fieldsets[:-1]  # no progress before saving

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return CampaignChangeList

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Campaign], search_term: str
    ) -> tuple[QuerySet[Campaign], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(campaign_search_condition(term)), False

    @admin.display(description=_("schedule"), ordering="schedule_kind")
    def schedule(self, campaign: Campaign) -> str:
        kind = campaign.get_schedule_kind_display()
        if campaign.scheduled_at is None:
            return kind
        return f"{kind} {display_for_value(campaign.scheduled_at, '-')}"

    @admin.display(description=_("holdout"), ordering="holdout_share")
    def holdout(self, campaign: Campaign) -> str:
        return f"{(campaign.holdout_share * 100).normalize():f}%"

    @admin.display(description=_("deliveries"))
    def delivery_counts(self, campaign: Campaign) -> str:
        if campaign.pk is None:
            return "-"
        counts = getattr(campaign, "counts_by_status", None)
        if counts is None:  # the change page: one campaign
            counts = campaign_delivery_counts([campaign.pk])[campaign.pk]
        shown = [(DeliveryStatus(s).label, n) for s, n in counts.items() if n]
        if not shown:
            return "-"
        url = reverse("admin:campaigns_delivery_changelist")
        return format_html(
            '<a href="{}?campaign__id__exact={}">{}</a>',
            url,
            campaign.pk,
            format_html_join(", ", "{}: {}", shown),
        )

    # The dry run and the report: pages of their own, linked from the change form, open to
    # whoever may view campaigns.

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/dry-run/",
                self.admin_site.admin_view(self.dry_run_view),
                name=f"{info}_dry_run",
            ),
            path(
                "<path:object_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name=f"{info}_report",
            ),
            *super().get_urls(),  # last: it ends with a catch-all of <path:object_id>/
        ]

    def campaign_pages(self, campaign: Campaign) -> list[tuple[str, Promise]]:
        """The pages worth opening in the campaign's state: the dry run until it is planned,
        the report once launched."""
        pages: list[tuple[str, Promise]] = []
        if campaign.state in DRY_RUN_STATES:
            url = reverse("admin:campaigns_campaign_dry_run", args=[campaign.pk])
            pages.append((url, _("Dry run")))
        if campaign.state != CampaignState.DRAFT:
            url = reverse("admin:campaigns_campaign_report", args=[campaign.pk])
            pages.append((url, _("Report")))
        return pages

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["campaign_pages"] = self.campaign_pages(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _viewed_campaign(self, request: HttpRequest, object_id: str) -> Campaign:
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = self.get_object(request, unquote(object_id))
        if campaign is None:
            raise Http404(_("No campaign with this id."))
        return campaign

    def _campaign_page(
        self,
        request: HttpRequest,
        campaign: Campaign,
        *,
        title: Promise,
        template: str,
        context: dict[str, Any],
    ) -> TemplateResponse:
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "subtitle": campaign.name,
                "opts": self.opts,
                "original": campaign,
                **context,
            },
        )

    def dry_run_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        campaign = self._viewed_campaign(request, object_id)
        at = timezone.now()
        dry_run = campaign_dry_run(campaign=campaign, at=at)
        return self._campaign_page(
            request,
            campaign,
            title=_("Dry run"),
            template="admin/campaigns/campaign/dry_run.html",
            context={
                "at": at,
                "is_planned": campaign.state not in DRY_RUN_STATES,
                **_dry_run_context(campaign, dry_run),
            },
        )

    def report_view(self, request: HttpRequest, object_id: str) -> TemplateResponse:
        campaign = self._viewed_campaign(request, object_id)
        report = campaign_report(campaign=campaign)
        return self._campaign_page(
            request,
            campaign,
            title=_("Report"),
            template="admin/campaigns/campaign/report.html",
            context=_report_context(report),
        )

    # Read-only once launched: a launched campaign is changed by the actions, never edited.

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _is_draft(obj) and super().has_delete_permission(request, obj)

    def has_launch_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.launch_campaign")

    # Saving: the form and its variants go to the service together, in save_related (Django
    # calls save_model first, before the variant rows are at hand).

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as error:
            # The service refused what the form let through (the rules only it checks: known
            # template variables, an audience, a coherent schedule). The view's transaction
            # rolled back; show the form again, as entered, with the service's reasons.
            problems = {"__all__": [error.message], **error.detail}
            token = _service_errors.set(problems)
            try:
                return super().changeform_view(request, object_id, form_url, extra_context)
            finally:
                _service_errors.reset(token)

    def save_model(self, request: HttpRequest, obj: Campaign, form: Any, change: bool) -> None:
        """Nothing yet: see save_related."""

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        variants: list[VariantInput] = []
        for formset in formsets:
            # What the change message reads; the service writes the variants, not the formset.
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            if formset.model is Variant:
                variants = _variant_inputs(formset)
        values = _campaign_values(form.cleaned_data, variants)
        actor = f"user:{request.user.pk}"
        if change:
            saved = campaign_update(campaign_id=form.instance.pk, actor=actor, changes=values)
        else:
            saved = campaign_create(data=CampaignInput(**values), actor=actor)
        form.instance.pk = saved.pk
        self._show_issued_secret(request, saved)

    def _show_issued_secret(self, request: HttpRequest, campaign: Campaign) -> None:
        if campaign.issued_webhook_secret:
            message = SECRET_ISSUED % {
                "name": campaign.name,
                "secret": campaign.issued_webhook_secret,
            }
            self.message_user(request, message, messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: Campaign) -> None:
        self.delete_queryset(request, Campaign.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
        """Through the service, which deletes drafts only."""
        for campaign_id in queryset.values_list("pk", flat=True):
            try:
                campaign_delete(campaign_id=campaign_id, actor=f"user:{request.user.pk}")
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)

    # Actions: a confirmation page first (the standard pattern of delete_selected), then the
    # service, campaign by campaign; a refusal is reported and the others go ahead.

    def _transition(
        self, request: HttpRequest, queryset: QuerySet[Campaign], action: str
    ) -> TemplateResponse | None:
        transition = TRANSITIONS[action]
        campaigns = list(queryset.order_by("pk"))
        if request.POST.get("confirm") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "title": transition.title,
                "question": transition.question,
                "confirm_label": transition.confirm_label,
                "campaigns": campaigns,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.opts,
                "media": self.media,
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(
                request, "admin/campaigns/campaign/transition_confirmation.html", context
            )
        done = 0
        for campaign in campaigns:
            try:
                changed = transition.service(
                    campaign_id=campaign.pk, actor=f"user:{request.user.pk}"
                )
            except DomainError as error:
                self.message_user(request, f"{campaign.name}: {error.message}", messages.ERROR)
            else:
                done += 1
                self._show_issued_secret(request, changed)
        if done:
            self.message_user(request, transition.done % {"count": done}, messages.SUCCESS)
        return None

    @admin.action(description=_("Launch the selected campaigns"), permissions=["launch"])
    def launch(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "launch")

    @admin.action(description=_("Pause the selected campaigns"), permissions=["launch"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "pause")

    @admin.action(description=_("Resume the selected campaigns"), permissions=["launch"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "resume")

    @admin.action(description=_("Cancel the selected campaigns"), permissions=["launch"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "cancel")

    @admin.action(
        description=_("Rotate the webhook signing secret of the selected campaigns"),
        permissions=["launch"],
    )
    def rotate_webhook_secret(self, request: HttpRequest, queryset: QuerySet[Campaign]) -> Any:
        return self._transition(request, queryset, "rotate_webhook_secret")


# --- The ledger ----------------------------------------------------------------------------


class LedgerAdmin(ReadOnlyAdmin):
    """Written by the send pipeline only; kept whole, since the frequency caps and the
    conversion reports count it."""

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _customer_link(customer_id: int) -> str:
    url = reverse("admin:crm_customer_change", args=[customer_id])
    return format_html('<a href="{}">{}</a>', url, customer_id)


@admin.register(Delivery)
class DeliveryAdmin(LedgerAdmin):
    list_display = [
        "id",
        "campaign",
        "customer",
        "step",
        "variant",
        "is_holdout",
        "status",
        "reason",
        "due_at",
        "reserved_at",
        "sent_at",
        "attempts",
    ]
    list_filter = ["status", "reason", "is_holdout", "campaign"]
    list_select_related = ["campaign", "variant"]
    search_fields = ["=customer__id"]
    search_help_text = _("Customer id.")
    show_full_result_count = False  # no second count(*) over the whole ledger
    ordering = ["-id"]

    @admin.display(description=_("customer"), ordering="customer_id")
    def customer(self, delivery: Delivery) -> str:
        return _customer_link(delivery.customer_id)


@admin.register(ChannelSend)
class ChannelSendAdmin(LedgerAdmin):
    list_display = [
        "id",
        "campaign",
        "channel",
        "sender",
        "state",
        "external_id",
        "attempts",
        "requested_at",
        "answered_at",
        "error",
    ]
    list_filter = ["state", "channel"]
    list_select_related = ["campaign", "sender"]
    search_fields = ["=external_id"]
    show_full_result_count = False
    ordering = ["-id"]


# --- The customer page's section --------------------------------------------------------

# console.admin composes the customer page: the CRM's, with this section. A read-only field
# rather than an inline: the deliveries' customer key has no reverse name to prefix an inline
# formset with, and a table needs no formset at all.


@admin.display(description=_("deliveries"))
def recent_deliveries(customer: Customer) -> str:
    """The customer's deliveries of the last CONTACT_PRESSURE_DAYS days (the latest
    CONTACT_PRESSURE_ROWS), each linking to its campaign, and a link to all of them."""
    since = timezone.now() - timedelta(days=CONTACT_PRESSURE_DAYS)
    deliveries = list(
        customer_delivery_list(customer_id=customer.pk, since=since)[:CONTACT_PRESSURE_ROWS]
    )
    if not deliveries:
        return str(_("None."))
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:campaigns_campaign_change", args=[d.campaign_id]),
                    d.campaign_name,  # type: ignore[attr-defined]
                ),
                Channel(d.channel).label,  # type: ignore[attr-defined]
                d.get_status_display(),
                d.get_reason_display() or "-",
                _("yes") if d.is_holdout else "-",
                display_for_value(d.reserved_at, "-"),
                display_for_value(d.sent_at, "-"),
            )
            for d in deliveries
        ),
    )
    headers = format_html_join(
        "",
        "<th>{}</th>",
        (
            (capfirst(label),)
            for label in (
                _("campaign"),
                _("channel"),
                _("status"),
                _("reason"),
                _("holdout"),
                _("reserved at"),
                _("sent at"),
            )
        ),
    )
    every = format_html(
        '<a href="{}?q={}">{}</a>',
        reverse("admin:campaigns_delivery_changelist"),
        customer.pk,
        _("All deliveries of this customer"),
    )
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table><p>{}</p>",
        headers,
        rows,
        every,
    )


def recent_deliveries_title() -> str:
    """The title of the customer page's section that shows `recent_deliveries` (in the
    request's language)."""
    return _("Contact pressure: deliveries of the last %(days)d days") % {
        "days": CONTACT_PRESSURE_DAYS
    }
