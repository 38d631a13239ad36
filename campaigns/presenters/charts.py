"""The report page's charts as data for campaigns/report_charts.js (Apache ECharts): the
conversion rate per arm, and the lift of each arm against the holdout with its confidence
interval. Values are in percent (rates) and percentage points (lifts), rounded half up to two
decimals; each value comes with its label as the tables write it."""

from typing import Any

from django.utils.translation import gettext

from campaigns.presenters.formatting import (
    UNKNOWN,
    format_percent,
    format_points,
    format_signed,
    round_half_up,
)
from campaigns.services.report import ArmReport


def _percent(share: float) -> float:
    return float(round_half_up(share * 100, 2))


def rate_chart(arms: list[tuple[str, float | None, bool]]) -> dict[str, Any]:
    """Bars of conversion rate: (name, rate, is_holdout) per arm; an arm nobody was sent to
    has no bar (None)."""
    return {
        "title": gettext("Conversion rate"),
        "names": [name for name, _rate, _holdout in arms],
        "values": [None if rate is None else _percent(rate) for _name, rate, _h in arms],
        "labels": [format_percent(rate) for _name, rate, _holdout in arms],
        "holdout": [is_holdout for _name, _rate, is_holdout in arms],
        "axis_label": gettext("Conversion rate (%)"),
    }


def lift_chart(arms: list[tuple[str, ArmReport]]) -> dict[str, Any]:
    """The difference of conversion rate against the holdout, in percentage points, with its
    95 % interval; None for an arm whose lift or interval is not known (an empty arm, no
    holdout, or nobody converted)."""
    estimates: list[list[float] | None] = []
    labels = []
    for _name, arm in arms:
        lift = arm.lift
        if lift is None or lift.absolute is None or lift.ci_low is None or lift.ci_high is None:
            estimates.append(None)
            labels.append(UNKNOWN)
            continue
        estimates.append([_percent(lift.ci_low), _percent(lift.absolute), _percent(lift.ci_high)])
        labels.append(
            gettext("%(lift)s [%(low)s, %(high)s]")
            % {
                "lift": format_points(lift.absolute),
                "low": format_signed(lift.ci_low * 100),
                "high": format_signed(lift.ci_high * 100),
            }
        )
    return {
        "title": gettext("Lift against the holdout"),
        "names": [name for name, _arm in arms],
        "estimates": estimates,  # [low, estimate, high] per arm
        "labels": labels,
        "axis_label": gettext("Lift in percentage points, %(level)s%% confidence interval")
        % {"level": 95},
    }
