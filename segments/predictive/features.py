"""The behaviour of every buyer as of one business date, read in one statement into numpy
arrays, and the scores written back in sets.

`features_as_of(as_of)` aggregates the orders (one pass, as the recomputation does),
interactions and group stays of every customer who paid an order up to the end of `as_of`, as
they stood then, so that a model sees at a past cutoff what it sees today:
- an order counts from the moment it was paid, at its full amount, whatever happened to it
  later (a refund or cancellation after the cutoff must not change what the model saw at the
  cutoff; the recomputation's metrics net refunds out, these features do not);
- interactions by when they occurred, group stays by when they began and ended;
- nothing after the cutoff is read, except the paid orders of the following `label_days` when
  asked for (the outcome a model learns); tags are not read at all (removed tags leave no
  history).
The spend per category (for the clusters, which are fitted on the present only) comes from the
items of orders that count as purchases now. The rows travel as PostgreSQL's binary COPY,
parsed by numpy in one step (no Python object per value), in customer id order.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
from django.db import connection

from crm.models import InteractionKind
from segments.rules.values import start_of_day

INTERACTION_KINDS = tuple(kind.value for kind in InteractionKind)

# (column, SQL expression over the aggregates below). Every expression is a float8 that is never
# NULL ('NaN' where a value does not exist, as the gap between orders of a one-order customer).
_ORDER_COLUMNS = (
    ("recency_days", "extract(epoch FROM %(end)s - o.last_paid_at) / 86400"),
    ("tenure_days", "extract(epoch FROM %(end)s - o.first_paid_at) / 86400"),
    ("repeat_span_days", "extract(epoch FROM o.last_paid_at - o.first_paid_at) / 86400"),
    ("orders", "o.orders"),
    ("orders_90d", "o.orders_90d"),
    ("orders_365d", "o.orders_365d"),
    ("spend", "o.spend"),
    ("spend_365d", "o.spend_365d"),
    ("avg_order_value", "o.spend / o.orders"),
    # The mean of the orders after the first (Gamma-Gamma's monetary value). The first order's
    # amount is the remainder of the smallest key (paid second) * 1e14 + amount in cents: one
    # pass, no sort per customer (amounts are below 1e12, NUMERIC(14,2)).
    (
        "repeat_order_value",
        "CASE WHEN o.orders > 1 THEN (o.spend - mod(o.first_key, 1e14) / 100) / (o.orders - 1)"
        " ELSE 'NaN' END",
    ),
    (
        "avg_gap_days",
        "CASE WHEN o.orders > 1 THEN extract(epoch FROM o.last_paid_at - o.first_paid_at)"
        " / 86400 / (o.orders - 1) ELSE 'NaN' END",
    ),
    ("future_orders", "o.future_orders"),
)
_OTHER_COLUMNS = (
    ("interactions_90d", "coalesce(i.recent, 0)"),
    ("interactions_365d", "coalesce(i.total, 0)"),
    *((f"interactions_{kind}", f"coalesce(i.{kind}, 0)") for kind in INTERACTION_KINDS),
    ("groups", "coalesce(g.groups, 0)"),
)
BASE_COLUMNS = tuple(name for name, _ in _ORDER_COLUMNS + _OTHER_COLUMNS)

# Orders paid up to the end of as_of (and in the label period after it), per customer, whatever
# their status now (refunded or cancelled after payment): a parallel sequential scan.
_ORDERS_SQL = """
    SELECT o.customer_id,
           min(o.paid_at) FILTER (WHERE o.paid_at < %(end)s) AS first_paid_at,
           max(o.paid_at) FILTER (WHERE o.paid_at < %(end)s) AS last_paid_at,
           min(floor(extract(epoch FROM o.paid_at))::numeric * 1e14 + o.total_amount * 100)
               FILTER (WHERE o.paid_at < %(end)s) AS first_key,
           count(*) FILTER (WHERE o.paid_at < %(end)s) AS orders,
           count(*) FILTER (WHERE o.paid_at >= %(start_90d)s AND o.paid_at < %(end)s)
               AS orders_90d,
           count(*) FILTER (WHERE o.paid_at >= %(start_365d)s AND o.paid_at < %(end)s)
               AS orders_365d,
           coalesce(sum(o.total_amount) FILTER (WHERE o.paid_at < %(end)s), 0) AS spend,
           coalesce(sum(o.total_amount)
                    FILTER (WHERE o.paid_at >= %(start_365d)s AND o.paid_at < %(end)s), 0)
               AS spend_365d,
           count(*) FILTER (WHERE o.paid_at >= %(end)s) AS future_orders
    FROM crm_order o
    WHERE o.paid_at < %(label_end)s
      AND o.customer_id IS NOT NULL  -- NULL: orders of erased customers, nobody's
    GROUP BY o.customer_id
    HAVING min(o.paid_at) < %(end)s
"""
_KIND_COUNTS = ", ".join(
    f"count(*) FILTER (WHERE kind = '{kind}') AS {kind}" for kind in INTERACTION_KINDS
)
_INTERACTIONS_SQL = f"""
    SELECT customer_id, count(*) AS total,
           count(*) FILTER (WHERE occurred_at >= %(start_90d)s) AS recent, {_KIND_COUNTS}
    FROM crm_interaction
    WHERE occurred_at >= %(start_365d)s AND occurred_at < %(end)s
    GROUP BY customer_id
"""  # noqa: S608 - constants only
_GROUPS_SQL = """
    SELECT customer_id, count(*) AS groups FROM crm_groupmembership
    WHERE joined_at < %(end)s AND (left_at IS NULL OR left_at >= %(end)s)
    GROUP BY customer_id
"""
# Spend per category of the items of paid orders (purchased_at is set only for those).
_CATEGORIES_SQL = """
    SELECT customer_id, sum(quantity * unit_price) AS item_spend{shares}
    FROM crm_orderitem
    WHERE purchased_at IS NOT NULL AND purchased_at < %(end)s
    GROUP BY customer_id
"""
_TOP_CATEGORIES_SQL = """
    SELECT category FROM crm_orderitem
    WHERE purchased_at IS NOT NULL AND purchased_at < %(end)s AND category <> ''
    GROUP BY category ORDER BY sum(quantity * unit_price) DESC, category LIMIT %(limit)s
"""


@dataclass(frozen=True)
class Features:
    """One row per buyer, in customer id order: `columns` names the columns of `values`."""

    as_of: date
    customer_ids: np.ndarray
    columns: tuple[str, ...]
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.customer_ids)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def matrix(self, names: Sequence[str]) -> np.ndarray:
        return self.values[:, [self.columns.index(name) for name in names]]


def _parameters(as_of: date, label_days: int) -> dict[str, Any]:
    end = start_of_day(as_of + timedelta(days=1))
    return {
        "end": end,
        "label_end": end + timedelta(days=label_days),
        "start_90d": end - timedelta(days=90),
        "start_365d": end - timedelta(days=365),
    }


def category_column(index: int) -> str:
    return f"category_{index}_spend"


def top_categories(*, as_of: date, limit: int) -> list[str]:
    """The `limit` categories with the most spend in paid orders up to the end of `as_of`."""
    with connection.cursor() as cursor:
        cursor.execute(_TOP_CATEGORIES_SQL, {**_parameters(as_of, 0), "limit": limit})
        return [row[0] for row in cursor.fetchall()]


def features_as_of(
    as_of: date, *, label_days: int = 0, categories: Sequence[str] | None = None
) -> Features:
    """Every buyer's features as of the end of business day `as_of`. `label_days` > 0 also
    counts each one's paid orders in the days after (`future_orders`); `categories` (a list,
    maybe empty) adds the spend in all items (`item_spend`) and in each of those categories
    (`category_<i>_spend`)."""
    columns = list(_ORDER_COLUMNS + _OTHER_COLUMNS)
    sources = [
        f"FROM ({_ORDERS_SQL}) o",
        f"LEFT JOIN ({_INTERACTIONS_SQL}) i USING (customer_id)",
        f"LEFT JOIN ({_GROUPS_SQL}) g USING (customer_id)",
    ]
    parameters = _parameters(as_of, label_days)
    if categories is not None:
        shares = "".join(
            f", sum(quantity * unit_price) FILTER (WHERE category = %(category_{i})s) AS s{i}"
            for i in range(len(categories))
        )
        sources.append(f"LEFT JOIN ({_CATEGORIES_SQL.format(shares=shares)}) k USING (customer_id)")
        columns.append(("item_spend", "coalesce(k.item_spend, 0)"))
        columns.extend((category_column(i), f"coalesce(k.s{i}, 0)") for i in range(len(categories)))
        parameters.update({f"category_{i}": name for i, name in enumerate(categories)})
    select = ", ".join(f"({expression})::float8" for _, expression in columns)
    query = f"SELECT o.customer_id::int8, {select} " + " ".join(sources) + " ORDER BY o.customer_id"
    with connection.cursor() as cursor:
        # Room for the hash aggregates of a million customers in memory, as the
        # recomputation gives its own; and no JIT, whose compilation the planner's estimate
        # of the chained outer joins (far above the buyers there are) makes cost more than
        # the statement. For this session only.
        cursor.execute("SET work_mem = '256MB'")
        cursor.execute("SET jit = off")
        try:
            ids, values = copy_out(query, parameters, float_columns=len(columns))
        finally:
            cursor.execute("RESET work_mem")
            cursor.execute("RESET jit")
    return Features(
        as_of=as_of,
        customer_ids=ids,
        columns=tuple(name for name, _ in columns),
        values=values,
    )


# PostgreSQL's binary COPY: an 11-byte signature, flags and header extension length (int32
# each), then per row a field count (int16) and per field its length (int32) and bytes, then
# an int16 -1. Rows of fixed-width, never NULL fields are therefore one numpy record each.
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_HEADER = _COPY_SIGNATURE + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_COPY_TRAILER = b"\xff\xff"


def _row_type(float_columns: int) -> np.dtype:
    fields: list[tuple[str, str]] = [("count", ">i2"), ("id_length", ">i4"), ("id", ">i8")]
    for k in range(float_columns):
        fields += [(f"length_{k}", ">i4"), (f"value_{k}", ">f8")]
    return np.dtype(fields)


def copy_out(query: str, params: object, *, float_columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Run `query` (an int8 id, then `float_columns` float8 columns, none NULL) and return the
    ids and a (rows, float_columns) float64 matrix."""
    connection.ensure_connection()
    cursor = connection.connection.cursor()
    with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)", params) as copy:
        data = b"".join(bytes(block) for block in copy)
    if not data.startswith(_COPY_HEADER) or not data.endswith(_COPY_TRAILER):
        raise ValueError("unexpected COPY BINARY framing")
    row_type = _row_type(float_columns)
    body_length = len(data) - len(_COPY_HEADER) - len(_COPY_TRAILER)
    if body_length % row_type.itemsize:
        raise ValueError("COPY rows are not of the expected width (a NULL value?)")
    rows = np.frombuffer(
        data, dtype=row_type, offset=len(_COPY_HEADER), count=body_length // row_type.itemsize
    )
    values = np.empty((len(rows), float_columns), dtype=np.float64)
    for k in range(float_columns):
        values[:, k] = rows[f"value_{k}"]
    return rows["id"].astype(np.int64), values


def copy_in(table: str, columns: Sequence[str], ids: np.ndarray, values: np.ndarray) -> None:
    """Write ids (int8) and a float matrix (float8 columns, NaN for none) into `table`, an
    existing table of those columns, with one binary COPY."""
    row_type = _row_type(values.shape[1])
    rows = np.empty(len(ids), dtype=row_type)
    rows["count"] = 1 + values.shape[1]
    rows["id_length"] = 8
    rows["id"] = ids
    for k in range(values.shape[1]):
        rows[f"length_{k}"] = 8
        rows[f"value_{k}"] = values[:, k]
    cursor = connection.connection.cursor()
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with cursor.copy(statement) as copy:
        copy.write(_COPY_HEADER + rows.tobytes() + _COPY_TRAILER)
