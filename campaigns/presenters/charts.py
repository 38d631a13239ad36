"""The report page's charts as data for Apache ECharts (campaigns/campaign.js draws them, from
json_script): the conversion rate of each arm, and the lift of each arm against the holdout
with its confidence interval. Values in percent (or percentage points), with their words, and a
description in words of the whole chart for those who do not see it."""

from typing import Any

from django.utils.translation import gettext as _

from campaigns.presenters.formatting import (
    UNKNOWN,
    format_percent,
    format_points,
    format_signed,
    round_half_up,
)
from campaigns.services.report import ArmReport


def _percent(share: float | None) -> float | None:
    """A share as a percentage for the chart's scale, to 2 decimals (None stays unknown)."""
    return None if share is None else float(round_half_up(share * 100, 2))


def _described(names: list[str], labels: list[str]) -> str:
    return "; ".join(f"{name} {label}" for name, label in zip(names, labels, strict=True))


def rate_chart(arms: list[tuple[str, float | None, bool]]) -> dict[str, Any]:
    """Bars of conversion rate: (name, rate, is_holdout) per arm."""
    labels = [format_percent(rate) for _name, rate, _h in arms]
    names = [name for name, _r, _h in arms]
    return {
        "kind": "rate",
        "title": _("Conversion rate"),
        "description": _(
            "Conversion rate of each variant's recipients and of the holdout: %(values)s."
        )
        % {"values": _described(names, labels)},
        "names": names,
        "values": [_percent(rate) for _name, rate, _h in arms],
        "labels": labels,
        "is_holdout": [is_holdout for _name, _r, is_holdout in arms],
    }


def lift_chart(arms: list[tuple[str, ArmReport]]) -> dict[str, Any]:
    """The difference of conversion rate against the holdout, in percentage points, with its
    95 % interval, around the line of no difference."""
    names = [name for name, _arm in arms]
    estimates: list[float | None] = []
    lows: list[float | None] = []
    highs: list[float | None] = []
    labels: list[str] = []
    for _name, arm in arms:
        lift = arm.lift
        if lift is None or lift.absolute is None or lift.ci_low is None or lift.ci_high is None:
            estimates.append(None)
            lows.append(None)
            highs.append(None)
            labels.append(UNKNOWN)
            continue
        estimates.append(_percent(lift.absolute))
        lows.append(_percent(lift.ci_low))
        highs.append(_percent(lift.ci_high))
        labels.append(
            _("%(lift)s [%(low)s, %(high)s]")
            % {
                "lift": format_points(lift.absolute),
                "low": format_signed(lift.ci_low * 100),
                "high": format_signed(lift.ci_high * 100),
            }
        )
    return {
        "kind": "lift",
        "title": _("Lift against the holdout"),
        "description": _(
            "Difference between each arm's conversion rate and the holdout's, in "
            "percentage points, with its 95%% confidence interval in brackets: %(values)s."
        )
        % {"values": _described(names, labels)},
        "names": names,
        "estimates": estimates,
        "lows": lows,
        "highs": highs,
        "labels": labels,
        "axis_label": _("pp"),  # percentage points
    }
