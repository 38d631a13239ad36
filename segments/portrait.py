"""The segment portrait (人群画像): how a group of customers is distributed over gender,
province, city, source channel, lifecycle state, RFM tier, lifetime spend, predicted value and
the categories they bought, each next to every customer's distribution, with the over-index
TGI = share in the group ÷ share in all customers × 100. Reads only.

A group is a segment's current members (its membership rows, as the last refresh left them)
or the customers a rule matches now (the builder's live portrait, nothing saved). Its figures
are ONE statement of two parts, which run side by side on parallel workers (a rule is
evaluated once first): one pass over the members' customer, metrics and prediction rows
grouped by GROUPING SETS (every single-valued dimension at once), and one over the items of a
sample of them (customers per category). The figures of every customer (the base) are
the same statement without the member set, plus the quintile breakpoints of predicted value;
they are the same for every segment, so they are cached for BASE_CACHE_SECONDS with the time
they were computed.

Shares are of the group's size (of every customer's, for the base); a category's share is the
share of the group that bought it at least once (a customer counts under every category
bought, so these shares add up to more than 100 %), estimated from a fixed sample of
CATEGORY_SAMPLE customers in a larger group (and in the base), its counts scaled to the
group. Missing values (a blank province, no paid order, never scored) are cells of their own.

Small cells: a cell of 1 to MIN_CELL_SIZE - 1 customers is reported without its count, share
or TGI (`count` None, `is_suppressed` True), in the group and in the base alike. A handful of
customers says nothing about a segment, and a segment narrowed down to a few people would
otherwise disclose their gender, city and spend to whoever may read portraits but not those
customers. A cell of 0 is shown. This is a guard against casual identification, not a formal
guarantee: a suppressed cell can still be worked out from the group's size and its other
cells."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.models import Gender, SourceChannel
from segments.models import LifecycleState, RfmTier
from segments.rules import RULE_SESSION_SQL, rule_members_sql
from segments.rules.sql import Sql

MIN_CELL_SIZE = 5
# Long enough that an afternoon of portraits shares a handful of base computations (the
# base reads every customer and every purchased item), short enough to stay close to live.
BASE_CACHE_SECONDS = 300
BASE_CACHE_KEY = "segments:portrait:base:v1"
# Provinces, cities and categories: the most frequent in the group, the rest in one cell.
TOP_VALUES = 10
# Categories bought are counted over at most this many customers of a group (a fixed sample,
# by a hash of their ids), each read through its orders: the shares of a larger group are
# estimates, within about 1.4 points (95 %) of the exact ones.
CATEGORY_SAMPLE = 5000
# Lifetime net spend bands (yuan): under 200, 200-500, ..., 3000 and over; no paid order apart.
SPEND_BREAKPOINTS = (200, 500, 1000, 3000)
# Predicted value bands: quintiles of every scored customer's value, in whole yuan.
VALUE_QUANTILES = (0.2, 0.4, 0.6, 0.8)

OTHERS = "__others__"  # the cell of the values beyond TOP_VALUES


@dataclass(frozen=True)
class _Dimension:
    name: str
    label: Promise
    expression: str  # SQL over c (customer), m (metrics) and pv (prediction), or "" (items)
    is_multi_valued: bool = False  # a customer counts under several values


_DIMENSIONS = (
    _Dimension("gender", _("Gender"), "c.gender"),
    _Dimension("province", _("Province"), "NULLIF(c.province, '')"),
    _Dimension("city", _("City"), "NULLIF(c.city, '')"),
    _Dimension("source_channel", _("Source channel"), "NULLIF(c.source_channel, '')"),
    _Dimension("lifecycle_state", _("Lifecycle state"), "coalesce(m.lifecycle_state, 'prospect')"),
    _Dimension("rfm_tier", _("RFM tier"), "m.rfm_tier"),
    # Bands as text, as every grouped value: width_bucket numbers them from 0 (under the first
    # breakpoint); NULL: no paid order, or never scored.
    _Dimension(
        "spend_band",
        _("Lifetime spend"),
        "CASE WHEN m.lifetime_orders > 0"
        " THEN width_bucket(m.lifetime_net_spend, %s::numeric[])::text END",
    ),
    _Dimension(
        "value_band",
        _("Predicted value"),
        "width_bucket(pv.predicted_value, %s::numeric[])::text",
    ),
    _Dimension("category", _("Purchased categories"), "", is_multi_valued=True),
)
_GROUPED = [dimension for dimension in _DIMENSIONS if dimension.expression]


@dataclass(frozen=True)
class PortraitCell:
    """One value of a dimension: the group's customers with it and their share, every
    customer's, and the TGI (None when the base has none, or either side is suppressed)."""

    value: str | None  # the code; None: missing (unknown, no order, not scored)
    label: str
    count: int | None  # None: suppressed (fewer than MIN_CELL_SIZE)
    share: float | None
    base_count: int | None
    base_share: float | None
    tgi: int | None

    @property
    def is_suppressed(self) -> bool:
        return self.count is None


@dataclass(frozen=True)
class PortraitDimension:
    name: str
    label: str
    is_multi_valued: bool
    is_estimated: bool  # from a sample of the group or of all customers (CATEGORY_SAMPLE)
    cells: list[PortraitCell]


@dataclass(frozen=True)
class Portrait:
    size: int
    base_size: int
    base_computed_at: datetime
    min_cell_size: int
    dimensions: list[PortraitDimension]


@dataclass(frozen=True)
class _Counts:
    """Customers per dimension and value (value None: missing), and the group's size."""

    size: int
    by_dimension: dict[str, dict[str | None, int]]


# --- The statements ------------------------------------------------------------------------


# One statement: every single-valued dimension grouped in one pass (GROUPING SETS; the empty
# set is the size), then customers per category, each counted once however often it bought.
# Built from this module's names only; every value is a parameter.
_COUNTS_SQL = """
SELECT CASE {dimension_of_row} END, CASE {value_of_row} END, count(*)
FROM (SELECT {columns}
      {customers}
      LEFT JOIN segments_customermetrics m ON m.customer_id = c.id
      LEFT JOIN segments_customerprediction pv ON pv.customer_id = c.id) AS g
GROUP BY GROUPING SETS ((), {sets})
UNION ALL
SELECT 'category', bought.category, count(*)
FROM (SELECT customer_id FROM {sampled} ORDER BY hashint8(customer_id) LIMIT %s) AS sample
CROSS JOIN LATERAL (
    SELECT DISTINCT i.category
    FROM crm_order o JOIN crm_orderitem i ON i.order_id = o.id
    WHERE o.customer_id = sample.customer_id
      AND i.purchased_at IS NOT NULL AND i.category <> '') AS bought
GROUP BY bought.category
"""


def _counts_sql(
    members: Sql | None, value_breakpoints: list[Decimal], *, is_rule: bool = False
) -> Sql:
    """The group's figures, rows (dimension, value, customers); the row of dimension NULL
    holds the size. `members` selects `customer_id`s; None: every customer. Categories are
    counted over the CATEGORY_SAMPLE members first by a hash of their id (all of them in a
    smaller group), each member's items found through its orders (order_by_customer_paid,
    then order_item_unique_line): items have no index by customer, and reading all of them
    takes seconds at a million customers."""
    text = _COUNTS_SQL.format(
        dimension_of_row=" ".join(
            f"WHEN GROUPING(g.{d.name}) = 0 THEN '{d.name}'" for d in _GROUPED
        ),
        value_of_row=" ".join(f"WHEN GROUPING(g.{d.name}) = 0 THEN g.{d.name}" for d in _GROUPED),
        columns=", ".join(f"{d.expression} AS {d.name}" for d in _GROUPED),
        customers="FROM crm_customer c"
        if members is None
        else "FROM members s JOIN crm_customer c ON c.id = s.customer_id",
        sets=", ".join(f"(g.{d.name})" for d in _GROUPED),
        sampled="(SELECT id AS customer_id FROM crm_customer) AS everyone"
        if members is None
        else "members",
    )
    # A segment's members are inlined into each part (a materialised CTE is read by the leader
    # only, which would keep the two parts off the parallel workers); a rule is evaluated once,
    # materialised: it costs more than the parallelism saves (3.3 s against 4.8 s for a rule
    # of 169k customers at 1M, bench/portrait.py).
    materialised = "MATERIALIZED" if is_rule else "NOT MATERIALIZED"
    with_members = (
        Sql("") if members is None else f"WITH members AS {materialised} (" + members + ")"
    )
    spend = [Decimal(point) for point in SPEND_BREAKPOINTS]
    return with_members + Sql(text, (spend, value_breakpoints, CATEGORY_SAMPLE))


def _counts(
    members: Sql | None, value_breakpoints: list[Decimal], *, is_rule: bool = False
) -> _Counts:
    sql = _counts_sql(members, value_breakpoints, is_rule=is_rule)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)  # room for the hash aggregates and a rule's subplans
        cursor.execute("SET LOCAL jit = off")
        # Both parts on parallel workers, as the preview runs (segments.services.segments).
        cursor.execute("SET LOCAL parallel_setup_cost = 100")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")
        cursor.execute(sql.text, sql.params)
        rows = cursor.fetchall()
    size = 0
    by_dimension: dict[str, dict[str | None, int]] = {d.name: {} for d in _DIMENSIONS}
    for dimension, value, customers in rows:
        if dimension is None:
            size = customers
        else:
            by_dimension[dimension][value] = customers
    if size > CATEGORY_SAMPLE:  # the sample's counts, scaled to the group
        by_dimension["category"] = {
            category: round(customers * size / CATEGORY_SAMPLE)
            for category, customers in by_dimension["category"].items()
        }
    return _Counts(size=size, by_dimension=by_dimension)


def _value_breakpoints() -> list[Decimal]:
    """The quintiles of every scored customer's predicted value, in whole yuan, without
    repeats (a value shared by many customers makes one band of them)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY predicted_value)"
            " FROM segments_customerprediction WHERE predicted_value IS NOT NULL",
            [list(VALUE_QUANTILES)],
        )
        row = cursor.fetchone()
    quantiles = row[0] if row and row[0] else []
    return sorted({Decimal(round(value)) for value in quantiles})


# --- The base --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PortraitBase:
    """Every customer's figures, as cached."""

    counts: _Counts
    value_breakpoints: list[Decimal]
    computed_at: datetime


def portrait_base(*, fresh: bool = False) -> PortraitBase:
    """Every customer's figures: from the cache when they are at most BASE_CACHE_SECONDS old,
    else computed (two queries) and cached; `fresh` computes them anyway."""
    base = None if fresh else cache.get(BASE_CACHE_KEY)
    if base is None:
        breakpoints = _value_breakpoints()
        base = PortraitBase(
            counts=_counts(None, breakpoints),
            value_breakpoints=breakpoints,
            computed_at=timezone.now(),
        )
        cache.set(BASE_CACHE_KEY, base, BASE_CACHE_SECONDS)
    return base


# --- Cells and labels ----------------------------------------------------------------------


def _money(value: Decimal | int) -> str:
    return f"¥{int(value):,}"


def _band_labels(breakpoints: Iterable[Decimal | int]) -> dict[str, str]:
    """Band number (width_bucket's, as text) to its range: under the first breakpoint, from
    one to the next, the last and over."""
    points = list(breakpoints)
    if not points:
        return {}
    labels = {"0": gettext("Under %(high)s") % {"high": _money(points[0])}}
    for number, (low, high) in enumerate(pairwise(points), start=1):
        labels[str(number)] = gettext("%(low)s to %(high)s") % {
            "low": _money(low),
            "high": _money(high),
        }
    labels[str(len(points))] = gettext("%(low)s and over") % {"low": _money(points[-1])}
    return labels


def _choices(choices: Iterable[tuple[Any, Any]], missing: str | None) -> list[tuple[Any, str]]:
    values = [(value, str(label)) for value, label in choices]
    return [*values, (None, missing)] if missing is not None else values


def _fixed_values(name: str, base: PortraitBase) -> list[tuple[str | None, str]] | None:
    """The values of a dimension with a fixed list, in the order shown; None: the most
    frequent values of the group (provinces, cities, categories)."""
    unknown = gettext("Unknown")
    if name == "gender":
        return [
            (Gender.FEMALE, str(Gender.FEMALE.label)),
            (Gender.MALE, str(Gender.MALE.label)),
            (Gender.UNKNOWN, str(Gender.UNKNOWN.label)),
        ]
    if name == "source_channel":
        return _choices(SourceChannel.choices, unknown)
    if name == "lifecycle_state":
        return _choices(LifecycleState.choices, None)
    if name == "rfm_tier":
        return _choices(RfmTier.choices, gettext("No tier (no paid order in the window)"))
    if name == "spend_band":
        bands = _band_labels(SPEND_BREAKPOINTS).items()
        return [*bands, (None, gettext("No paid order"))]
    if name == "value_band":
        bands = _band_labels(base.value_breakpoints).items()
        return [*bands, (None, gettext("Not predicted (never paid)"))]
    return None


def _top_values(
    counts: dict[str | None, int], base_counts: dict[str | None, int], *, with_rest: bool
) -> list[tuple[str | None, str]]:
    """The TOP_VALUES values most frequent in the group (ties: in the base, then by name),
    then, `with_rest`, the others as one cell and the missing value."""
    named = [value for value in {*counts, *base_counts} if value is not None]
    named.sort(key=lambda value: (-counts.get(value, 0), -base_counts.get(value, 0), value))
    shown: list[tuple[str | None, str]] = [(value, value) for value in named[:TOP_VALUES]]
    if not with_rest:
        return shown
    if len(named) > TOP_VALUES:
        shown.append((OTHERS, gettext("Others")))
    return [*shown, (None, gettext("Unknown"))]


def _count_of(value: str | None, counts: dict[str | None, int], shown: set[str | None]) -> int:
    if value != OTHERS:
        return counts.get(value, 0)
    return sum(n for key, n in counts.items() if key is not None and key not in shown)


def _is_small(count: int) -> bool:
    return 0 < count < MIN_CELL_SIZE


def _cell(
    value: str | None, label: str, count: int, size: int, base_count: int, base_size: int
) -> PortraitCell:
    share = count / size if size else 0.0
    base_share = base_count / base_size if base_size else 0.0
    small, base_small = _is_small(count), _is_small(base_count)
    tgi = None
    if base_share and not small and not base_small:
        tgi = round(share / base_share * 100)
    return PortraitCell(
        value=value,
        label=label,
        count=None if small else count,
        share=None if small else round(share, 4),
        base_count=None if base_small else base_count,
        base_share=None if base_small else round(base_share, 4),
        tgi=tgi,
    )


def _portrait(counts: _Counts, base: PortraitBase) -> Portrait:
    dimensions = []
    for dimension in _DIMENSIONS:
        group = counts.by_dimension[dimension.name]
        everyone = base.counts.by_dimension[dimension.name]
        values = _fixed_values(dimension.name, base)
        if values is None:
            values = _top_values(group, everyone, with_rest=not dimension.is_multi_valued)
        shown = {value for value, _label in values}
        cells = [
            _cell(
                value,
                label,
                _count_of(value, group, shown),
                counts.size,
                _count_of(value, everyone, shown),
                base.counts.size,
            )
            for value, label in values
        ]
        dimensions.append(
            PortraitDimension(
                name=dimension.name,
                label=str(dimension.label),
                is_multi_valued=dimension.is_multi_valued,
                is_estimated=dimension.is_multi_valued
                and max(counts.size, base.counts.size) > CATEGORY_SAMPLE,
                cells=cells,
            )
        )
    return Portrait(
        size=counts.size,
        base_size=base.counts.size,
        base_computed_at=base.computed_at,
        min_cell_size=MIN_CELL_SIZE,
        dimensions=dimensions,
    )


# --- The selectors -------------------------------------------------------------------------


def segment_portrait(*, segment_id: int) -> Portrait:
    """The portrait of a segment's current members (of none for no such segment: callers
    look the segment up first)."""
    base = portrait_base()
    members = Sql(
        "SELECT customer_id FROM segments_segmentmembership WHERE segment_id = %s", (segment_id,)
    )
    return _portrait(_counts(members, base.value_breakpoints), base)


def rule_portrait(*, rule: object, as_of: datetime | None = None) -> Portrait:
    """The portrait of the customers a rule matches now, nothing saved (InvalidRule for a
    wrong rule, before anything else is read)."""
    members_sql, params = rule_members_sql(rule, as_of=as_of or timezone.now())
    base = portrait_base()
    members = Sql(members_sql, tuple(params))
    return _portrait(_counts(members, base.value_breakpoints, is_rule=True), base)
