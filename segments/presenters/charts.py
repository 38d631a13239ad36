"""The calibration chart of a model fit's page: predicted against observed values per bin, as
the SVG geometry its template draws."""

from dataclasses import dataclass

# The calibration chart's geometry, in SVG user units (a square plot with axes).
CALIBRATION_SIZE = 240
CALIBRATION_MARGIN = 36


@dataclass(frozen=True)
class CalibrationSeries:
    name: str
    css_class: str
    points: str  # "x,y x,y ..." in SVG units
    dots: list[tuple[float, float, str]]  # x, y, tooltip


@dataclass(frozen=True)
class CalibrationChart:
    """Predicted (x) against observed (y) per bin, with the diagonal of perfect calibration."""

    title: str
    x_label: str
    y_label: str
    series: list[CalibrationSeries]
    ticks: list[tuple[float, str]]  # position along either axis, label
    bound: float
    size: int = CALIBRATION_SIZE
    margin: int = CALIBRATION_MARGIN

    @property
    def width(self) -> int:
        return self.size + 2 * self.margin

    @property
    def bottom(self) -> int:
        return self.margin + self.size


def calibration_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    series: list[tuple[str, str, list[dict[str, float]]]],
) -> CalibrationChart | None:
    """`series`: (name, css class, bins of {"predicted", "observed"}) each."""
    values = [v for _n, _c, bins in series for b in bins for v in (b["predicted"], b["observed"])]
    if not values:
        return None
    bound = max(max(values), 1e-9)
    if bound <= 1:
        bound = 1.0  # probabilities: the whole 0-1 scale
    size, margin = CALIBRATION_SIZE, CALIBRATION_MARGIN

    def x_of(value: float) -> float:
        return round(margin + value / bound * size, 1)

    def y_of(value: float) -> float:
        return round(margin + size - value / bound * size, 1)

    drawn = []
    for name, css_class, bins in series:
        dots = [
            (
                x_of(b["predicted"]),
                y_of(b["observed"]),
                f"{b['predicted']:.3g} → {b['observed']:.3g}",
            )
            for b in bins
        ]
        drawn.append(
            CalibrationSeries(
                name=name,
                css_class=css_class,
                points=" ".join(f"{x},{y}" for x, y, _t in dots),
                dots=dots,
            )
        )
    ticks = [(round(size * i / 4, 1), f"{bound * i / 4:.2g}") for i in range(5)]
    return CalibrationChart(
        title=title, x_label=x_label, y_label=y_label, series=drawn, ticks=ticks, bound=bound
    )
