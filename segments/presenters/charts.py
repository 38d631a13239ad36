"""The calibration chart of a model fit's page as data for segments/model_fit_charts.js (Apache
ECharts): predicted against observed values per bin, one line per model, with the diagonal of
perfect calibration; and the clusters of a behaviour clustering by size."""

from typing import Any

from django.utils.translation import gettext


def calibration_chart(
    *,
    title: str,
    x_label: str,
    y_label: str,
    series: list[tuple[str, str, list[dict[str, float]]]],
) -> dict[str, Any] | None:
    """`series`: (name, role, bins of {"predicted", "observed"}) each, the role "model" or
    "baseline" (drawn as a dashed line). None when no series has a bin."""
    values = [v for _n, _r, bins in series for b in bins for v in (b["predicted"], b["observed"])]
    if not values:
        return None
    # Probabilities on the whole 0-1 scale; counts up to their largest value.
    bound = max(max(values), 1.0) if max(values) > 1 else 1.0
    return {
        "title": title,
        "x_label": x_label,
        "y_label": y_label,
        "bound": round(bound, 4),
        "diagonal_name": gettext("perfect calibration"),
        "series": [
            {
                "name": name,
                "role": role,
                "points": [[round(b["predicted"], 4), round(b["observed"], 4)] for b in bins],
            }
            for name, role, bins in series
        ],
    }


def cluster_chart(clusters: list[dict[str, Any]]) -> dict[str, Any]:
    """Customers per cluster, named by its description: bars, largest share first as fitted."""
    return {
        "title": gettext("Customers per cluster"),
        "names": [f"#{c['number']} {c['description']}".strip() for c in clusters],
        "sizes": [int(c["size"]) for c in clusters],
        "shares": [round(float(c["share"]) * 100, 1) for c in clusters],
        "axis_label": gettext("Number of customers"),
    }
