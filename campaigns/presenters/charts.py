"""The report page's charts as SVG geometry its template draws: bars of conversion rate per
arm, and the lift of each arm against the holdout with its confidence interval."""

from dataclasses import dataclass

from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from campaigns.presenters.formatting import (
    UNKNOWN,
    format_percent,
    format_points,
    format_signed,
    round_half_up,
)
from campaigns.services.report import ArmReport

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
    rounded = round_half_up(share * 100, 1)
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


def rate_chart(arms: list[tuple[str, float | None, bool]]) -> Chart:
    """Bars of conversion rate: (name, rate, is_holdout) per arm."""
    bound = _scale(max((rate for _name, rate, _h in arms if rate is not None), default=0))
    rows = [
        ChartRow(
            name=name,
            label=_short(name),
            value=format_percent(rate),
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


def lift_chart(arms: list[tuple[str, ArmReport]]) -> Chart:
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
            "lift": format_points(lift.absolute),
            "low": format_signed(lift.ci_low * 100),
            "high": format_signed(lift.ci_high * 100),
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
