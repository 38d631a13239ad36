"""The segment portrait (人群画像) as operators read it: per dimension, a table (customers,
share of the segment, share of all customers, TGI) and the data of its chart (the two shares
side by side, the TGI as the segment bar's label), a TGI above HIGH_TGI marked. Figures come
from segments.portrait; here they are only formatted. The same data serves the segment's
portrait page and the builder's live portrait (JSON)."""

from typing import Any

from django.utils import timezone
from django.utils.dateformat import format as format_date
from django.utils.translation import gettext

from console.formatting import format_count, format_rate, zone_label
from segments.portrait import CATEGORY_SAMPLE, Portrait, PortraitCell

# A value over-represented by more than a fifth: what operators look for in a portrait.
HIGH_TGI = 120


def _cell_row(cell: PortraitCell, min_cell_size: int) -> dict[str, Any]:
    few = gettext("Fewer than %(count)d") % {"count": min_cell_size}
    return {
        "label": cell.label,
        "count": few if cell.count is None else format_count(cell.count),
        "share": "–" if cell.share is None else format_rate(cell.share),
        "base_count": few if cell.base_count is None else format_count(cell.base_count),
        "base_share": "–" if cell.base_share is None else format_rate(cell.base_share),
        "tgi": "–" if cell.tgi is None else str(cell.tgi),
        "is_high": cell.tgi is not None and cell.tgi > HIGH_TGI,
        "is_suppressed": cell.is_suppressed,
    }


def _bar_label(cell: PortraitCell, row: dict[str, Any]) -> str:
    """The segment bar's label: its share and TGI ("少于 5 人" when suppressed, the share
    alone when there is no TGI to give or nobody)."""
    if cell.is_suppressed:
        return str(row["count"])
    if cell.tgi is None or not cell.count:
        return str(row["share"])
    return f"{row['share']} · TGI {cell.tgi}"


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 2)


def portrait_context(portrait: Portrait) -> dict[str, Any]:
    """What the page and the builder show: the sizes, when all customers' figures were
    computed, and per dimension its rows and its chart's data."""
    computed = format_date(timezone.localtime(portrait.base_computed_at), "Y-m-d H:i")
    dimensions = []
    for dimension in portrait.dimensions:
        rows = [_cell_row(cell, portrait.min_cell_size) for cell in dimension.cells]
        dimensions.append(
            {
                "name": dimension.name,
                "label": dimension.label,
                "is_multi_valued": dimension.is_multi_valued,
                "estimate_note": (
                    gettext("Estimated from a sample of %(count)s customers.")
                    % {"count": format_count(CATEGORY_SAMPLE)}
                    if dimension.is_estimated
                    else None
                ),
                "rows": rows,
                "chart": {
                    "labels": [row["label"] for row in rows],
                    "shares": [_percent(cell.share) for cell in dimension.cells],
                    "base_shares": [_percent(cell.base_share) for cell in dimension.cells],
                    "tgis": [cell.tgi for cell in dimension.cells],
                    "share_labels": [row["share"] for row in rows],
                    "base_share_labels": [row["base_share"] for row in rows],
                    "bar_labels": [
                        _bar_label(cell, row)
                        for cell, row in zip(dimension.cells, rows, strict=True)
                    ],
                },
            }
        )
    return {
        "size": format_count(portrait.size),
        "exact_size": f"{portrait.size:,}",
        "base_size": format_count(portrait.base_size),
        "is_empty": portrait.size == 0,
        "computed_at": gettext("All customers' figures computed at %(time)s (%(zone)s)")
        % {"time": computed, "zone": zone_label()},
        "min_cell_size": portrait.min_cell_size,
        "high_tgi": HIGH_TGI,
        "dimensions": dimensions,
        "series_names": {
            "segment": gettext("This segment"),
            "base": gettext("All customers"),
        },
    }
