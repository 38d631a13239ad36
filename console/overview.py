"""The overview (运营看板) at the top of the admin's first page: the panels a user may see
(each needs the view permissions of the data it counts), their figures formatted for the
reader, and the data of their charts. A panel's figures are cached per period and business
day for a few minutes; each panel says when they were computed."""

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext, pgettext

from campaigns.models import CalendarUnit, FrequencyRule, RuleScope, WindowKind
from campaigns.presenters.formatting import format_interval, format_percent, format_points
from console.formatting import (
    format_count,
    format_money,
    format_points_change,
    format_rate,
    format_relative_change,
    zone_label,
)
from console.selectors import (
    BUCKET_UNITS,
    DEFAULT_PERIOD_DAYS,
    MAX_CAMPAIGNS,
    MAX_RECEIVED_SHOWN,
    PERIOD_DAYS,
    PRESSURE_DAYS,
    CampaignFigures,
    ChannelBucket,
    ContactPressure,
    Kpis,
    Period,
    PinnedSegment,
    WeekPressure,
    overview_acquisition,
    overview_campaigns,
    overview_contact_pressure,
    overview_frequency_rules,
    overview_kpis,
    overview_lifecycle,
    overview_lifecycle_flow,
    overview_period,
    overview_pinned_segment_ids,
    overview_pinned_segments,
    overview_retention,
    overview_rfm_tiers,
)
from crm.models import ContactWay, SourceChannel
from crm.selectors.contact_ways import contact_way_reports, report_window
from crm.selectors.scoping import VIEW_ALL_CUSTOMERS_PERMISSION
from segments.models import LifecycleState, RfmTier
from segments.portrait import portrait_base
from segments.presenters.lifecycle_moves import LIFECYCLE_MOVE_PARAMETER, LifecycleMove
from segments.services.retention import (
    REPEAT_WITHIN_DAYS,
    RETENTION_COHORTS,
    retention_compute_missing,
)

# The panels' figures are computed ahead by `overview_refresh` (console.tasks), which beat
# runs every REFRESH_SECONDS, so that no visitor waits for them: at a million customers the key
# figures and the contact pressure take seconds to compute. They are kept long enough to
# outlive a missed refresh; a visitor who comes before the first one computes them.
REFRESH_SECONDS = 300
CACHE_SECONDS = 3 * REFRESH_SECONDS
PERIOD_PARAMETER = "period"

KPIS_PERMISSIONS = ("crm.view_customer", "crm.view_order")
# Each count opens the customers list filtered to those customers.
LIFECYCLE_PERMISSIONS = ("segments.view_customermetrics", "crm.view_customer")

_TIME_FORMAT = "Y-m-d H:i"


def period_days(request: HttpRequest) -> int:
    """The period the page asks for (`?period=7|30|90`); 30 days when it asks for none or
    another."""
    value = request.GET.get(PERIOD_PARAMETER, "")
    return int(value) if value in {str(days) for days in PERIOD_DAYS} else DEFAULT_PERIOD_DAYS


def _business_time(moment: datetime) -> str:
    return format_date(timezone.localtime(moment), _TIME_FORMAT)


def _computed(
    key: str, compute: Any, seconds: int = CACHE_SECONDS, *, fresh: bool = False
) -> dict[str, Any]:
    """The cached figures under `key`, or `compute()`'s, stored with when they were made;
    `fresh` computes and stores them anyway."""
    figures = None if fresh else cache.get(key)
    if figures is None:
        figures = {"computed_at": timezone.now(), **compute()}
        cache.set(key, figures, seconds)
    return figures


def _computed_at_text(moment: datetime) -> str:
    return gettext("Computed at %(time)s (%(zone)s)") % {
        "time": _business_time(moment),
        "zone": zone_label(),
    }


@dataclass(frozen=True)
class KpiCard:
    label: str
    value: str
    exact: str  # the value in full, for the tooltip
    previous: str
    change: str | None  # against the previous period; None: nothing to compare with
    trend: str  # "up", "down" or "flat"
    definition: str


def _trend(current: Any, previous: Any) -> str:
    if current is None or previous is None or current == previous:
        return "flat"
    return "up" if current > previous else "down"


def _count_card(label: str, definition: str, current: int, previous: int) -> KpiCard:
    return KpiCard(
        label=label,
        value=format_count(current),
        exact=f"{current:,}",
        previous=format_count(previous),
        change=format_relative_change(current, previous),
        trend=_trend(current, previous),
        definition=definition,
    )


def _money_card(
    label: str, definition: str, current: Decimal | None, previous: Decimal | None
) -> KpiCard:
    return KpiCard(
        label=label,
        value=format_money(current) if current is not None else "–",
        exact=f"¥{current:,.2f}" if current is not None else "–",
        previous=format_money(previous) if previous is not None else "–",
        change=(
            format_relative_change(current, previous)
            if current is not None and previous is not None
            else None
        ),
        trend=_trend(current, previous),
        definition=definition,
    )


def _rate_card(
    label: str, definition: str, current: float | None, previous: float | None
) -> KpiCard:
    return KpiCard(
        label=label,
        value=format_rate(current) if current is not None else "–",
        exact=format_rate(current) if current is not None else "–",
        previous=format_rate(previous) if previous is not None else "–",
        change=(
            format_points_change(current, previous)
            if current is not None and previous is not None
            else None
        ),
        trend=_trend(current, previous),
        definition=definition,
    )


def kpi_cards(kpis: Kpis) -> list[KpiCard]:
    now, before = kpis.current, kpis.previous
    return [
        _count_card(
            pgettext("overview", "Customers"),
            gettext("All customers at the end of the period."),
            now.customers,
            before.customers,
        ),
        _count_card(
            gettext("New customers"),
            gettext("Customers first seen in the period."),
            now.new_customers,
            before.new_customers,
        ),
        _count_card(
            gettext("Buyers"),
            gettext("Customers with a paid order in the period."),
            now.buyers,
            before.buyers,
        ),
        _rate_card(
            gettext("Repeat-purchase rate"),
            gettext("Share of the period's buyers who paid two or more orders in the period."),
            now.repeat_purchase_rate,
            before.repeat_purchase_rate,
        ),
        _money_card(
            gettext("Revenue"),
            gettext("Paid orders in the period, net of refunds."),
            now.revenue,
            before.revenue,
        ),
        _money_card(
            gettext("Average order value"),
            gettext("Revenue divided by the period's paid orders."),
            now.average_order_value,
            before.average_order_value,
        ),
    ]


def _period_text(start: datetime, end: datetime) -> str:
    return gettext("%(start)s to %(end)s") % {
        "start": _business_time(start),
        "end": _business_time(end),
    }


def _kpis_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    key = f"console:overview:kpis:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key, fresh=fresh, compute=lambda: {"period": period, "kpis": overview_kpis(period=period)}
    )
    computed_period: Period = figures["period"]
    return {
        "cards": kpi_cards(figures["kpis"]),
        "period_text": _period_text(computed_period.start, computed_period.end),
        "previous_text": _period_text(computed_period.previous_start, computed_period.previous_end),
        "computed_at": _computed_at_text(figures["computed_at"]),
    }


def _lifecycle_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    key = f"console:overview:lifecycle:{period.business_day.isoformat()}"
    figures = _computed(key, fresh=fresh, compute=lambda: {"states": overview_lifecycle()})
    changelist = reverse("admin:crm_customer_changelist")
    states = [
        {
            "label": state["label"],
            "count": format_count(state["count"]),
            "exact": f"{state['count']:,}",
            "share": format_rate(state["share"]),
            "url": f"{changelist}?metrics__lifecycle_state__exact={state['state']}",
        }
        for state in figures["states"]
    ]
    total = sum(state["count"] for state in figures["states"])
    return {
        "states": states,
        "total": format_count(total),
        "computed_at": _computed_at_text(figures["computed_at"]),
        "chart": {
            "series_name": gettext("Number of customers"),
            "states": [state["state"] for state in figures["states"]],
            "labels": [state["label"] for state in states],
            "counts": [state["count"] for state in figures["states"]],
            "count_labels": [state["count"] for state in states],
            "tooltips": [
                gettext("%(state)s: %(count)s customers (%(share)s)")
                % {"state": state["label"], "count": state["exact"], "share": state["share"]}
                for state in states
            ],
            "urls": [state["url"] for state in states],
        },
    }


# Lifecycle flow, RFM tiers and retention (issue 16, section 1).

LIFECYCLE_FLOW_PERMISSIONS = ("segments.view_lifecycletransition", "crm.view_customer")
RFM_PERMISSIONS = ("segments.view_customermetrics", "crm.view_customer")
RETENTION_PERMISSIONS = ("segments.view_customermetrics", "crm.view_customer", "crm.view_order")


def _count_cell(count: int, url: str | None) -> dict[str, Any]:
    return {"count": format_count(count), "exact": f"{count:,}", "url": url if count else None}


def _lifecycle_flow_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    """The customers who moved between lifecycle states in the period: a Sankey (states
    where they came from on the left, where they went on the right, named apart so that the
    chart has no cycle) and a from × to table, each count linking to those customers."""
    key = f"console:overview:lifecycle_flow:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key,
        fresh=fresh,
        compute=lambda: {
            "flows": overview_lifecycle_flow(period=period),
            "since": timezone.localtime(period.start).date(),
        },
    )
    customers = reverse("admin:crm_customer_changelist")

    def customers_url(from_state: str, to_state: str) -> str:
        move = LifecycleMove(from_state=from_state, to_state=to_state, since=figures["since"])
        return f"{customers}?{urlencode({LIFECYCLE_MOVE_PARAMETER: move.value})}"

    labels = {state.value: str(state.label) for state in LifecycleState}
    counts = {(flow.from_state, flow.to_state): flow.customers for flow in figures["flows"]}
    links = [
        {
            "source": f"from:{flow.from_state}",
            "target": f"to:{flow.to_state}",
            "value": flow.customers,
            "url": customers_url(flow.from_state, flow.to_state),
            "tooltip": gettext("%(from)s → %(to)s: %(count)s customers")
            % {
                "from": labels[flow.from_state],
                "to": labels[flow.to_state],
                "count": f"{flow.customers:,}",
            },
        }
        for flow in figures["flows"]
    ]
    sources = {flow.from_state for flow in figures["flows"]}
    targets = {flow.to_state for flow in figures["flows"]}
    nodes = [
        {"name": f"{side}:{state}", "state": state, "label": label}
        for side, present in (("from", sources), ("to", targets))
        for state, label in labels.items()
        if state in present
    ]
    return {
        "states": list(labels.values()),
        "rows": [
            {
                "label": from_label,
                "cells": [
                    None
                    if from_state == to_state
                    else _count_cell(
                        counts.get((from_state, to_state), 0),
                        customers_url(from_state, to_state),
                    )
                    for to_state in labels
                ],
            }
            for from_state, from_label in labels.items()
        ],
        "is_empty": not links,
        "computed_at": _computed_at_text(figures["computed_at"]),
        "chart": {"nodes": nodes, "links": links},
    }


def _share_text(part: Decimal | int, whole: Decimal | int) -> str:
    return format_rate(float(part / whole)) if whole else "–"


def _rfm_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    """The eight RFM tiers now: customers, their share, their share of the revenue (net
    spend in the RFM window) and their average spend, each tier linking to its customers."""
    key = f"console:overview:rfm:{period.business_day.isoformat()}"
    figures = _computed(key, fresh=fresh, compute=lambda: {"tiers": overview_rfm_tiers()})
    tiered = [tier for tier in figures["tiers"] if tier.tier is not None]
    untiered = sum(tier.customers for tier in figures["tiers"] if tier.tier is None)
    customers = sum(tier.customers for tier in tiered)
    revenue = sum((tier.revenue for tier in tiered), Decimal(0))
    customer_list = reverse("admin:crm_customer_changelist")
    rows = [
        {
            "label": str(RfmTier(tier.tier).label),
            "count": format_count(tier.customers),
            "exact": f"{tier.customers:,}",
            "share": _share_text(tier.customers, customers),
            "revenue_share": _share_text(tier.revenue, revenue),
            "average": (format_money(tier.revenue / tier.customers) if tier.customers else "–"),
            "url": f"{customer_list}?metrics__rfm_tier__exact={tier.tier}",
        }
        for tier in tiered
    ]
    return {
        "tiers": rows,
        "total": format_count(customers),
        "total_average": format_money(revenue / customers) if customers else "–",
        "untiered": (
            ngettext(
                "%(count)s more customer bought nothing in the RFM window and has no tier.",
                "%(count)s more customers bought nothing in the RFM window and have no tier.",
                untiered,
            )
            % {"count": format_count(untiered)}
            if untiered
            else None
        ),
        "computed_at": _computed_at_text(figures["computed_at"]),
        "chart": {
            "labels": [row["label"] for row in rows],
            "series": [gettext("Share of customers"), gettext("Share of revenue")],
            "customer_shares": [
                round(tier.customers / customers * 100, 1) if customers else 0 for tier in tiered
            ],
            "revenue_shares": [
                round(float(tier.revenue / revenue) * 100, 1) if revenue else 0 for tier in tiered
            ],
            "urls": [row["url"] for row in rows],
        },
    }


def _month_text(month: date) -> str:
    return gettext("%(year)d-%(month)02d") % {"year": month.year, "month": month.month}


def _rate_cell(part: int, whole: int, highest: float) -> dict[str, Any]:
    """A rate of the retention tables with its heat (0 to 1: against the table's highest
    rate, so that the colours tell the cells apart however low the rates)."""
    if not whole:
        return {"rate": "–", "heat": 0, "is_hot": False, "exact": ""}
    rate = part / whole
    heat = round(rate / highest, 2) if highest else 0
    return {
        "rate": format_rate(rate),
        "heat": heat,
        "is_hot": heat >= 0.6,  # dark enough for white text
        "exact": gettext("%(part)s of %(whole)s") % {"part": f"{part:,}", "whole": f"{whole:,}"},
    }


def _retention_panel() -> dict[str, Any]:
    """Retention (留存) of the last twelve months' first-time buyers: per cohort (month of the
    first order), the share buying again in each later month, as a heat table and a curve
    per cohort; and per source channel, the share buying again within 30, 60 and 90 days.
    Read from the pre-aggregate the nightly recomputation leaves, dated by it; computed on
    the spot (or queued, for a large brand) the first time none is found."""
    retention = overview_retention()
    if retention is None and retention_compute_missing():
        retention = overview_retention()
    if retention is None:
        return {"is_pending": True}
    rates = [
        buyers / cohort.customers
        for cohort in retention.cohorts
        if cohort.customers
        for buyers in cohort.repeat_buyers
    ]
    highest = max(rates, default=0.0)
    months = RETENTION_COHORTS - 1
    cohorts = [
        {
            "label": _month_text(cohort.month),
            "customers": format_count(cohort.customers),
            "exact": f"{cohort.customers:,}",
            # A month no one began in, or one not reached yet, has empty cells.
            "cells": [
                _rate_cell(buyers, cohort.customers, highest) if cohort.customers else None
                for buyers in cohort.repeat_buyers
            ]
            + [None] * (months - len(cohort.repeat_buyers)),
        }
        for cohort in retention.cohorts
    ]
    channel_rates = [
        channel.repeat_buyers[days] / channel.eligible[days]
        for channel in retention.channels
        for days in REPEAT_WITHIN_DAYS
        if channel.eligible[days]
    ]
    channel_highest = max(channel_rates, default=0.0)
    channels = [
        {
            "label": (
                str(SourceChannel(channel.channel).label)
                if channel.channel in SourceChannel.values
                else gettext("Unknown channel")
            ),
            "customers": format_count(channel.customers),
            "exact": f"{channel.customers:,}",
            "cells": [
                _rate_cell(channel.repeat_buyers[days], channel.eligible[days], channel_highest)
                for days in REPEAT_WITHIN_DAYS
            ],
        }
        for channel in retention.channels
    ]
    month_labels = [
        gettext("Month %(number)d") % {"number": number} for number in range(1, months + 1)
    ]
    return {
        "months": month_labels,
        "cohorts": cohorts,
        "within": [gettext("Within %(days)d days") % {"days": days} for days in REPEAT_WITHIN_DAYS],
        "channels": channels,
        "is_empty": not any(cohort.customers for cohort in retention.cohorts),
        "computed_at": _computed_at_text(retention.computed_at),
        "chart": {
            "months": month_labels,
            "series": [
                {
                    "name": _month_text(cohort.month),
                    "rates": [
                        round(buyers / cohort.customers * 100, 1) for buyers in cohort.repeat_buyers
                    ],
                }
                for cohort in retention.cohorts
                if cohort.customers and cohort.repeat_buyers
            ],
        },
    }


def overview_context(request: HttpRequest) -> dict[str, Any]:
    """The overview's part of the index page's context: the period's choices and the panels
    the user may see (absent: not allowed)."""
    days = period_days(request)
    period = overview_period(days=days, now=timezone.now())
    user = request.user
    context: dict[str, Any] = {
        "days": days,
        "periods": [
            {"days": choice, "label": gettext("Last %(days)d days") % {"days": choice}}
            for choice in PERIOD_DAYS
        ],
        "parameter": PERIOD_PARAMETER,
    }
    if not user.has_perm(VIEW_ALL_CUSTOMERS_PERMISSION):
        # Every panel counts every customer: not for a 导购, who sees their own only, nor
        # for a role that sees no customer at all (审计), who is not sent to the list.
        if user.has_perm("crm.view_customer"):
            context["scoped_notice"] = gettext(
                "The overview counts every customer; this account sees only the customers it"
                " follows up. They are in the customer list."
            )
            context["scoped_list_link"] = True
        else:
            context["scoped_notice"] = gettext(
                "The overview counts every customer, which this account does not see. The"
                " pages it may open are listed on this page."
            )
        return context
    if user.has_perms(KPIS_PERMISSIONS):
        context["kpis"] = _kpis_panel(period)
    if user.has_perms(LIFECYCLE_PERMISSIONS):
        context["lifecycle"] = _lifecycle_panel(period)
    if user.has_perms(LIFECYCLE_FLOW_PERMISSIONS):
        context["lifecycle_flow"] = _lifecycle_flow_panel(period)
    if user.has_perms(RFM_PERMISSIONS):
        context["rfm"] = _rfm_panel(period)
    if user.has_perms(RETENTION_PERMISSIONS):
        context["retention"] = _retention_panel()
    context.update(_more_panels(user, period))
    return context


# Acquisition, pinned segments, campaigns and contact pressure ----------------------------

ACQUISITION_PERMISSIONS = ("crm.view_customer", "crm.view_order")
PINNED_PERMISSIONS = ("segments.view_segment",)
CAMPAIGNS_PERMISSIONS = ("campaigns.view_campaign",)
PRESSURE_PERMISSIONS = ("campaigns.view_delivery", "campaigns.view_frequencyrule")


def _days(period: Period) -> list[date]:
    first = timezone.localtime(period.start).date()
    return [first + timedelta(days=offset) for offset in range(period.days)]


def _day_label(day: date) -> str:
    return gettext("%(month)d/%(day)d") % {"month": day.month, "day": day.day}


def _weeks(period: Period) -> list[tuple[date, str]]:
    """The Monday of every week the period touches, with its label."""
    mondays = sorted({day - timedelta(days=day.weekday()) for day in _days(period)})
    return [
        (monday, gettext("Week of %(day)s") % {"day": _day_label(monday)}) for monday in mondays
    ]


def _buckets(period: Period) -> list[tuple[date, str]]:
    """The acquisition chart's buckets (BUCKET_UNITS) with their labels: every day of the
    period, the Monday of every week it touches, or the first of every month."""
    unit = BUCKET_UNITS[period.days]
    days = _days(period)
    if unit == "day":
        return [(day, _day_label(day)) for day in days]
    if unit == "week":
        return _weeks(period)
    months = sorted({day.replace(day=1) for day in days})
    return [
        (month, gettext("%(year)d/%(month)d") % {"year": month.year, "month": month.month})
        for month in months
    ]


def _channel_label(channel: str) -> str:
    return str(SourceChannel(channel).label) if channel else gettext("Channel not known")


def _acquisition_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    key = f"console:overview:acquisition:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key,
        fresh=fresh,
        compute=lambda: {"period": period, "rows": overview_acquisition(period=period)},
    )
    computed_period: Period = figures["period"]
    rows: list[ChannelBucket] = figures["rows"]
    buckets = _buckets(computed_period)
    position = {bucket: index for index, (bucket, _label) in enumerate(buckets)}
    counts: dict[str, list[int]] = {}
    converted: dict[str, int] = {}
    for row in rows:
        series = counts.setdefault(row.source_channel, [0] * len(buckets))
        series[position[row.bucket]] += row.new_customers
        converted[row.source_channel] = converted.get(row.source_channel, 0) + row.converted
    channels = sorted(counts, key=lambda channel: (-sum(counts[channel]), channel))
    changelist = reverse("admin:crm_customer_changelist")

    def table_row(label: str, new: int, paid: int, url: str | None) -> dict[str, Any]:
        return {
            "label": label,
            "new_customers": format_count(new),
            "converted": format_count(paid),
            "rate": format_rate(paid / new) if new else "–",
            "url": url,
        }

    total_new = sum(sum(series) for series in counts.values())
    return {
        "computed_at": _computed_at_text(figures["computed_at"]),
        "period_text": _period_text(computed_period.start, computed_period.end),
        "rows": [
            table_row(
                _channel_label(channel),
                sum(counts[channel]),
                converted[channel],
                f"{changelist}?source_channel__exact={channel}" if channel else None,
            )
            for channel in channels
        ],
        "total": table_row(gettext("Total"), total_new, sum(converted.values()), None),
        "chart": {
            "buckets": [label for _bucket, label in buckets],
            "series": [
                {"name": _channel_label(channel), "channel": channel, "counts": counts[channel]}
                for channel in channels
            ],
        },
    }


def _pinned_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    # Keyed by the pinned segments too: a segment just pinned or unpinned shows at once.
    pinned = ",".join(str(pk) for pk in overview_pinned_segment_ids())
    key = f"console:overview:pinned:{period.days}:{period.business_day.isoformat()}:{pinned}"
    figures = _computed(
        key,
        fresh=fresh,
        compute=lambda: {"period": period, "segments": overview_pinned_segments(period=period)},
    )
    computed_period: Period = figures["period"]
    days = _days(computed_period)
    segments: list[PinnedSegment] = figures["segments"]
    lines = []
    for segment in segments:
        size = segment.sizes.get(days[0] - timedelta(days=1))
        sizes: list[int | None] = []
        for day in days:  # each day's last size, or the one before it when not refreshed
            size = segment.sizes.get(day, size)
            sizes.append(size)
        lines.append(
            {
                "name": segment.name,
                "url": reverse("admin:segments_segment_change", args=[segment.segment_id]),
                "member_count": format_count(segment.member_count),
                "sizes": sizes,
            }
        )
    return {
        "computed_at": _computed_at_text(figures["computed_at"]),
        "segments": lines,
        "changelist": reverse("admin:segments_segment_changelist"),
        "chart": {
            "days": [_day_label(day) for day in days],
            "lines": [{key: line[key] for key in ("name", "url", "sizes")} for line in lines],
        },
    }


def _campaigns_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    key = f"console:overview:campaigns:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key, fresh=fresh, compute=lambda: {"campaigns": overview_campaigns(period=period)}
    )
    campaigns: list[CampaignFigures] = figures["campaigns"]
    rows = []
    for campaign in campaigns:
        summary = campaign.summary
        rows.append(
            {
                "name": campaign.name,
                "url": reverse("admin:campaigns_campaign_change", args=[campaign.campaign_id]),
                "state": campaign.state_label,
                "finished_at": (
                    _business_time(campaign.finished_at) if campaign.finished_at else "–"
                ),
                "sent": format_count(summary.sent),
                "conversion_rate": format_percent(summary.conversion_rate),
                "lift": format_points(summary.lift.absolute),
                "interval": format_interval(summary.lift.ci_low, summary.lift.ci_high),
                # Points, for the chart: None where the lift cannot be computed.
                "lift_points": _points(summary.lift.absolute),
                "low_points": _points(summary.lift.ci_low),
                "high_points": _points(summary.lift.ci_high),
            }
        )
    measured = [row for row in rows if row["lift_points"] is not None]
    return {
        "computed_at": _computed_at_text(figures["computed_at"]),
        "rows": rows,
        "most": MAX_CAMPAIGNS,
        "interval_header": gettext("%(level)s%% confidence interval") % {"level": 95},
        "changelist": reverse("admin:campaigns_campaign_changelist"),
        "chart": {
            "names": [row["name"] for row in measured],
            "urls": [row["url"] for row in measured],
            "lift": [row["lift_points"] for row in measured],
            "low": [row["low_points"] for row in measured],
            "high": [row["high_points"] for row in measured],
            "tooltips": [
                gettext("%(name)s: lift %(lift)s (95%% interval %(interval)s)")
                % {"name": row["name"], "lift": row["lift"], "interval": row["interval"]}
                for row in measured
            ],
            "axis_name": gettext("Lift against the holdout (pp)"),
        },
    }


def _points(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 2)


def weekly_limit(rule: FrequencyRule) -> int:
    """The most sends `rule` lets one customer receive in a calendar week (Monday to
    Sunday): its count per week, seven times its count per day, its count per month (a week
    within one month), or its count per rolling window times the windows a week holds."""
    if rule.window_kind == WindowKind.ROLLING:
        assert rule.window_hours is not None
        return rule.max_count * math.ceil(7 * 24 / rule.window_hours)
    if rule.calendar_unit == CalendarUnit.DAY:
        return rule.max_count * 7
    return rule.max_count


def _rule_scope(rule: FrequencyRule) -> str:
    if rule.scope == RuleScope.CHANNEL:
        return str(rule.get_channel_display())
    if rule.scope == RuleScope.LABEL:
        return gettext("Campaigns labelled %(label)s") % {"label": rule.label}
    return str(rule.get_scope_display())


def _rule_window(rule: FrequencyRule) -> str:
    if rule.window_hours is not None:
        return gettext("At most %(count)d in %(hours)d hours") % {
            "count": rule.max_count,
            "hours": rule.window_hours,
        }
    return gettext("At most %(count)d per %(unit)s") % {
        "count": rule.max_count,
        "unit": {
            CalendarUnit.DAY: gettext("day"),
            CalendarUnit.WEEK: gettext("week"),
            CalendarUnit.MONTH: gettext("month"),
        }[CalendarUnit(rule.calendar_unit)],
    }


def _pressure_panel(period: Period, *, fresh: bool = False) -> dict[str, Any]:
    key = f"console:overview:pressure:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key,
        fresh=fresh,
        compute=lambda: {
            "period": period,
            "pressure": overview_contact_pressure(period=period),
            "rules": overview_frequency_rules(),
        },
    )
    pressure: ContactPressure = figures["pressure"]
    rules: list[FrequencyRule] = figures["rules"]
    sent = {week.week: week for week in pressure.weeks}
    caps = [
        {
            "name": rule.name,
            "scope": _rule_scope(rule),
            "window": _rule_window(rule),
            "weekly": weekly_limit(rule),
            "weekly_text": gettext("%(count)d a week") % {"count": weekly_limit(rule)},
        }
        for rule in rules
    ]
    weeks = [
        {
            "label": label,
            "messages": format_count(week.messages),
            "customers": format_count(week.customers),
            "per_customer": (f"{week.per_customer:.2f}" if week.per_customer is not None else "–"),
            "value": round(week.per_customer, 2) if week.per_customer is not None else None,
        }
        # Every week of the period, those without a message too.
        for monday, label in _weeks(figures["period"])
        for week in [sent.get(monday, WeekPressure(week=monday, messages=0, customers=0))]
    ]
    # The bars go one past the highest cap, so that a customer over it shows.
    most = max([*pressure.received, *(weekly_limit(rule) + 1 for rule in rules), 1])
    shown = min(most, MAX_RECEIVED_SHOWN)
    reached = sum(pressure.received.values())
    return {
        "computed_at": _computed_at_text(figures["computed_at"]),
        "days": PRESSURE_DAYS,
        "weeks": weeks,
        "caps": caps,
        "reached": format_count(reached),
        "rules_changelist": reverse("admin:campaigns_frequencyrule_changelist"),
        "chart": {
            "weeks": [week["label"] for week in weeks],
            "per_customer": [week["value"] for week in weeks],
            "per_customer_name": gettext("Messages per reached customer"),
            "received_labels": [
                (
                    gettext("%(count)d or more") % {"count": count}
                    if count == MAX_RECEIVED_SHOWN
                    else str(count)
                )
                for count in range(1, shown + 1)
            ],
            "received": [pressure.received.get(count, 0) for count in range(1, shown + 1)],
            "received_name": gettext("Customers by messages received"),
            "received_axis": gettext("Messages received in the last %(days)d days")
            % {"days": PRESSURE_DAYS},
            "caps": [
                {
                    "name": gettext("%(rule)s: %(count)d a week")
                    % {"rule": cap["name"], "count": cap["weekly"]},
                    "weekly": cap["weekly"],
                }
                for cap in caps
            ],
        },
    }


# Channel QR codes (渠道活码) -------------------------------------------------------------------

CONTACT_WAYS_PERMISSIONS = ("crm.view_contactway", "crm.view_customer", "crm.view_order")
# The codes shown: those that brought the most customers in the past 7 days.
CONTACT_WAYS_SHOWN = 10


def _contact_ways_panel(*, now: datetime | None = None, fresh: bool = False) -> dict[str, Any]:
    """Yesterday's and the past 7 days' contacts per channel QR code and the first orders of
    the customers they first brought (the same for every period: always yesterday and the
    past 7 whole days, in business time)."""
    now = now or timezone.now()
    yesterday = report_window(1, now=now)
    week = report_window(7, now=now)
    key = f"console:overview:contact_ways:{week[1].date().isoformat()}"

    def compute() -> dict[str, Any]:
        # Two statements over every code (crm.selectors.contact_ways), not one per code.
        by_day = contact_way_reports(added_since=yesterday[0], added_before=yesterday[1], now=now)
        by_week = contact_way_reports(added_since=week[0], added_before=week[1], now=now)
        shown = sorted(
            (r for r in by_week.values() if r.added or r.acquired),
            key=lambda r: (-r.added, -r.acquired, r.contact_way_id),
        )[:CONTACT_WAYS_SHOWN]
        names = dict(
            ContactWay.objects.filter(pk__in=[r.contact_way_id for r in shown]).values_list(
                "pk", "name"
            )
        )
        return {
            "rows": [
                {
                    "id": r.contact_way_id,
                    "name": names.get(r.contact_way_id, ""),
                    "added_yesterday": by_day[r.contact_way_id].added
                    if r.contact_way_id in by_day
                    else 0,
                    "added_week": r.added,
                    "acquired_week": r.acquired,
                    "first_orders_week": r.first_orders_30,
                    "revenue_week": r.first_order_revenue_30,
                }
                for r in shown
            ]
        }

    figures = _computed(key, compute, fresh=fresh)
    rows = [
        {
            "label": row["name"],
            "url": reverse("admin:crm_contactway_change", args=[row["id"]]),
            "added_yesterday": format_count(row["added_yesterday"]),
            "added_week": format_count(row["added_week"]),
            "acquired_week": format_count(row["acquired_week"]),
            "first_orders": format_count(row["first_orders_week"]),
            "revenue": format_money(row["revenue_week"]),
            "rate": format_rate(row["first_orders_week"] / row["acquired_week"])
            if row["acquired_week"]
            else "–",
        }
        for row in figures["rows"]
    ]
    return {
        "computed_at": _computed_at_text(figures["computed_at"]),
        "period_text": _period_text(week[0], week[1]),
        "rows": rows,
        "list_url": reverse("admin:crm_contactway_changelist"),
    }


def _more_panels(user: Any, period: Period) -> dict[str, Any]:
    """The acquisition, pinned segments, campaigns and contact pressure panels the user may
    see."""
    panels: dict[str, Any] = {}
    if user.has_perms(ACQUISITION_PERMISSIONS):
        panels["acquisition"] = _acquisition_panel(period)
    if user.has_perms(CONTACT_WAYS_PERMISSIONS):
        panels["contact_ways"] = _contact_ways_panel()
    if user.has_perms(PINNED_PERMISSIONS):
        panels["pinned"] = _pinned_panel(period)
    if user.has_perms(CAMPAIGNS_PERMISSIONS):
        panels["campaigns"] = _campaigns_panel(period)
    if user.has_perms(PRESSURE_PERMISSIONS):
        panels["pressure"] = _pressure_panel(period)
    return panels


def overview_refresh(*, now: datetime | None = None) -> None:
    """Compute every panel of every period afresh and cache it, with the portraits' figures
    of all customers: what beat runs every REFRESH_SECONDS (console.tasks), so that visitors
    read figures at most that old and never wait for them. The lifecycle and the RFM tiers,
    the same for every period, are computed once."""
    now = now or timezone.now()
    for days in PERIOD_DAYS:
        period = overview_period(days=days, now=now)
        _kpis_panel(period, fresh=True)
        _lifecycle_flow_panel(period, fresh=True)
        _acquisition_panel(period, fresh=True)
        _pinned_panel(period, fresh=True)
        _campaigns_panel(period, fresh=True)
        _pressure_panel(period, fresh=True)
    _contact_ways_panel(now=now, fresh=True)
    period = overview_period(days=DEFAULT_PERIOD_DAYS, now=now)
    _lifecycle_panel(period, fresh=True)
    _rfm_panel(period, fresh=True)
    portrait_base(fresh=True)
