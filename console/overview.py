"""The overview (运营看板) at the top of the admin's first page: the panels a user may see
(each needs the view permissions of the data it counts), their figures formatted for the
reader, and the data of their charts. A panel's figures are cached per period and business
day for a few minutes; each panel says when they were computed."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext, pgettext

from console.formatting import (
    format_count,
    format_money,
    format_points_change,
    format_rate,
    format_relative_change,
    zone_label,
)
from console.selectors import (
    DEFAULT_PERIOD_DAYS,
    PERIOD_DAYS,
    Kpis,
    Period,
    overview_kpis,
    overview_lifecycle,
    overview_lifecycle_flow,
    overview_period,
    overview_retention,
    overview_rfm_tiers,
)
from crm.models import SourceChannel
from segments.models import LifecycleState, RfmTier
from segments.presenters.lifecycle_moves import LIFECYCLE_MOVE_PARAMETER, LifecycleMove
from segments.services.retention import (
    REPEAT_WITHIN_DAYS,
    RETENTION_COHORTS,
    retention_compute_missing,
)

# Long enough that a morning's visits share one computation of the heavy panels, short
# enough that the figures of today stay close to live.
CACHE_SECONDS = 300
PERIOD_PARAMETER = "period"

KPIS_PERMISSIONS = ("crm.view_customer", "crm.view_order")
LIFECYCLE_PERMISSIONS = ("segments.view_customermetrics",)

_TIME_FORMAT = "Y-m-d H:i"


def period_days(request: HttpRequest) -> int:
    """The period the page asks for (`?period=7|30|90`); 30 days when it asks for none or
    another."""
    value = request.GET.get(PERIOD_PARAMETER, "")
    return int(value) if value in {str(days) for days in PERIOD_DAYS} else DEFAULT_PERIOD_DAYS


def _business_time(moment: datetime) -> str:
    return format_date(timezone.localtime(moment), _TIME_FORMAT)


def _computed(key: str, compute: Any, seconds: int = CACHE_SECONDS) -> dict[str, Any]:
    """The cached figures under `key`, or `compute()`'s, stored with when they were made."""
    figures = cache.get(key)
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


def _kpis_panel(period: Period) -> dict[str, Any]:
    key = f"console:overview:kpis:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(key, lambda: {"period": period, "kpis": overview_kpis(period=period)})
    computed_period: Period = figures["period"]
    return {
        "cards": kpi_cards(figures["kpis"]),
        "period_text": _period_text(computed_period.start, computed_period.end),
        "previous_text": _period_text(computed_period.previous_start, computed_period.previous_end),
        "computed_at": _computed_at_text(figures["computed_at"]),
    }


def _lifecycle_panel(period: Period) -> dict[str, Any]:
    key = f"console:overview:lifecycle:{period.business_day.isoformat()}"
    figures = _computed(key, lambda: {"states": overview_lifecycle()})
    changelist = reverse("admin:segments_customermetrics_changelist")
    states = [
        {
            "label": state["label"],
            "count": format_count(state["count"]),
            "exact": f"{state['count']:,}",
            "share": format_rate(state["share"]),
            "url": f"{changelist}?lifecycle_state__exact={state['state']}",
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
RFM_PERMISSIONS = ("segments.view_customermetrics",)
RETENTION_PERMISSIONS = ("segments.view_customermetrics", "crm.view_customer", "crm.view_order")


def _count_cell(count: int, url: str | None) -> dict[str, Any]:
    return {"count": format_count(count), "exact": f"{count:,}", "url": url if count else None}


def _lifecycle_flow_panel(period: Period) -> dict[str, Any]:
    """The customers who moved between lifecycle states in the period: a Sankey (states
    where they came from on the left, where they went on the right, named apart so that the
    chart has no cycle) and a from × to table, each count linking to those customers."""
    key = f"console:overview:lifecycle_flow:{period.days}:{period.business_day.isoformat()}"
    figures = _computed(
        key,
        lambda: {
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


def _rfm_panel(period: Period) -> dict[str, Any]:
    """The eight RFM tiers now: customers, their share, their share of the revenue (net
    spend in the RFM window) and their average spend, each tier linking to its customers."""
    key = f"console:overview:rfm:{period.business_day.isoformat()}"
    figures = _computed(key, lambda: {"tiers": overview_rfm_tiers()})
    tiered = [tier for tier in figures["tiers"] if tier.tier is not None]
    untiered = sum(tier.customers for tier in figures["tiers"] if tier.tier is None)
    customers = sum(tier.customers for tier in tiered)
    revenue = sum((tier.revenue for tier in tiered), Decimal(0))
    metrics = reverse("admin:segments_customermetrics_changelist")
    rows = [
        {
            "label": str(RfmTier(tier.tier).label),
            "count": format_count(tier.customers),
            "exact": f"{tier.customers:,}",
            "share": _share_text(tier.customers, customers),
            "revenue_share": _share_text(tier.revenue, revenue),
            "average": (format_money(tier.revenue / tier.customers) if tier.customers else "–"),
            "url": f"{metrics}?rfm_tier__exact={tier.tier}",
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
    return context
