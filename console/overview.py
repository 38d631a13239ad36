"""The overview (运营看板) at the top of the admin's first page: the panels a user may see
(each needs the view permissions of the data it counts), their figures formatted for the
reader, and the data of their charts. A panel's figures are cached per period and business
day for a few minutes; each panel says when they were computed."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext, pgettext

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
    overview_period,
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


def _computed(key: str, compute: Any) -> dict[str, Any]:
    """The cached figures under `key`, or `compute()`'s, stored with when they were made."""
    figures = cache.get(key)
    if figures is None:
        figures = {"computed_at": timezone.now(), **compute()}
        cache.set(key, figures, CACHE_SECONDS)
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
    return context
