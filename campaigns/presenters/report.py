"""The report page: what happened to each arm of a launched campaign (the campaign, each
variant, the holdout), what was held back and why, and the lift against the holdout, in words
and in charts."""

from collections.abc import Callable
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from campaigns.models import DeliveryReason
from campaigns.presenters.charts import lift_chart, rate_chart
from campaigns.presenters.formatting import (
    UNKNOWN,
    FigureLine,
    format_count,
    format_credit,
    format_interval,
    format_money,
    format_p_value,
    format_percent,
    format_points,
    format_relative,
)
from campaigns.services.report import ArmReport, CampaignReport


def _clicks(arm: ArmReport) -> str:
    if not arm.shared_clicks:
        return format_count(arm.clicks)
    return _("%(clicks)s (%(shared)s on links the whole message shared: clicker unknown)") % {
        "clicks": format_count(arm.clicks),
        "shared": format_count(arm.shared_clicks),
    }


# The report's table: what happened to each arm. The holdout has no variant, so it shows in
# the campaign's column only.
REPORT_METRICS: list[tuple[Promise, Callable[[ArmReport], str], bool]] = [
    (_("Audience planned"), lambda arm: format_count(arm.audience), False),
    (_("Holdout (control group)"), lambda arm: format_count(arm.holdout), True),
    (_("Suppressed"), lambda arm: format_count(sum(arm.suppressed.values())), False),
    (_("Waiting"), lambda arm: format_count(arm.waiting), False),
    (_("Cancelled"), lambda arm: format_count(arm.cancelled), False),
    (_("Sent"), lambda arm: format_count(arm.sent), False),
    (_("Failed"), lambda arm: format_count(arm.failed), False),
    (_("Recipients who clicked"), lambda arm: format_count(arm.clicked), False),
    (_("Clicks"), lambda arm: _clicks(arm), False),
    (_("Recipients who converted"), lambda arm: format_count(arm.converted), False),
    (_("Conversion rate"), lambda arm: format_percent(arm.conversion_rate), False),
    (_("Attributed orders"), lambda arm: format_credit(arm.attributed_orders), False),
    (_("Attributed revenue"), lambda arm: format_money(arm.revenue), False),
    (
        _("Attributed revenue per recipient"),
        lambda arm: format_money(arm.revenue_per_recipient),
        False,
    ),
    (_("Revenue in the conversion window"), lambda arm: format_money(arm.window_revenue), False),
]


def _breakdown(
    arms: list[ArmReport], counts_of: Callable[[ArmReport], dict[str, int]]
) -> list[FigureLine]:
    """One line per key of the arms' counts (by name), each arm's count in a column."""
    keys = sorted({key for arm in arms for key in counts_of(arm)})
    return [
        FigureLine(key, [format_count(counts_of(arm).get(key, 0)) for arm in arms]) for key in keys
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


def report_context(report: CampaignReport) -> dict[str, Any]:
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
                    format_percent(lift.treated_rate),
                    format_percent(lift.holdout_rate),
                    format_points(lift.absolute),
                    format_relative(lift.relative),
                    format_interval(lift.ci_low, lift.ci_high),
                    format_p_value(lift.p_value),
                    format_money(lift.incremental_revenue),
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
            FigureLine(_("Converted"), [format_count(report.holdout_converted)]),
            FigureLine(_("Conversion rate"), [format_percent(holdout_rate)]),
            FigureLine(
                _("Revenue in the conversion window"), [format_money(report.holdout_window_revenue)]
            ),
        ],
        "lift_lines": lift_lines,
        "rate_chart": rate_chart(
            [
                *((str(arm.variant), arm.conversion_rate, False) for arm in report.variants),
                (str(_("Holdout")), holdout_rate, True),
            ]
        ),
        "lift_chart": lift_chart(list(zip(names, arms, strict=True))),
    }
