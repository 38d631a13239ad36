"""Recomputation of per-customer metrics, RFM scores and tiers, and lifecycle states, in sets.

A run computes every value as a function of the paid orders and one business date (`as_of`):
1. Aggregate: one pass over the orders into an unlogged work table of per-customer aggregates
   (a table, not a temporary one, so that batches can run on several connections; runs never
   overlap, so one set of work tables serves them all). A full run reads them by customer id
   range, RECOMPUTE_WORKERS ranges at a time, each from index order_by_customer_paid alone (it
   covers every column read) in customer order, so each range is grouped as it is read: no
   hash table of a million customers, nothing spilled, and the rows land in customer order
   for the batches to read. An incremental run reads the marked customers' orders by index.
2. Breakpoints: a full run computes the RFM quintile breakpoints once, over every customer with
   a paid order in the window; an incremental run reuses those of the last full run.
3. Batches by customer id range, one transaction each, RECOMPUTE_WORKERS at a time: score,
   classify, compare with the stored row and write only rows whose values differ, with a
   lifecycle transition for each change of state. A re-run over unchanged data therefore
   writes nothing, and a crashed run can simply be run again.

Lifecycle (days are business dates in settings.TIME_ZONE; defaults of the policy in brackets):
prospect (never paid); new while the first paid order is at most `new_days` (30) old;
reactivated for `reactivated_days` (30) after an order that came more than `active_days` (90)
after the order before it; active while the last paid order is at most `active_days` old;
sleeping up to `sleeping_days` (180); churned after. Since `reactivated_days <= active_days`,
only the earliest order within the reactivation window can be a reactivating one, so the state
needs two aggregates (that order and the last one before the window) and no window function.

`lifecycle_since` is when the current state began by the same rules. For "active", that depends
on the latest reactivation ever, which needs each order's predecessor (a window function, twice
the cost of the aggregation over all orders): it is computed that way only for customers
entering "active" or whose orders changed, and carried over otherwise (it cannot change without
the state or the orders changing).

A backfill (a full run as of a date before that of the latest full run: "what did the tiers
look like on 11-11?") takes the same steps but writes none of the live state: it computes every
customer from the orders alone and records only the customers per tier and state
(BackfillCount); the metrics, the transition feed (which lifecycle-triggered campaigns follow),
the ingestion marks and the segments stay as they were. Some customers as of such a date, or a
date in the future, are refused (`recompute_check`, the one rule for the API, the command, the
admin and the run).

Runs never interleave: each holds a PostgreSQL advisory lock for its whole length (released by
PostgreSQL itself if the process dies). A second run waits or skips, and says so in its record.
"""

import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.locks import Lock, session_lock
from crm.models import PURCHASE_STATUSES, DirtyMark
from crm.services.customers import customers_pull_first_seen
from crm.services.removals import customers_removal_lock
from segments import enqueue
from segments.feeds import Feed, feed_writer_register
from segments.models import (
    BackfillCount,
    LifecyclePolicy,
    RecomputeKind,
    RecomputeRun,
    RecomputeStatus,
    RfmPolicy,
    RfmScoringMethod,
)
from segments.rules.values import start_of_day
from segments.services.policies import lifecycle_policy_active, rfm_policy_active

logger = logging.getLogger(__name__)

WORK_TABLES = (
    "segments_work_agg",
    "segments_work_dirty",
    "segments_work_scope",
    "segments_work_backfill",
)
# 50k customers a transaction: a few hundred milliseconds each, so progress moves and locks
# are short while per-statement overhead stays negligible, and a million customers make 20
# batches, enough to keep RECOMPUTE_WORKERS connections evenly busy to the end.
BATCH_SIZE = 50_000
ERROR_ANOTHER_RUN = "skipped: another run was in progress"
ERROR_INTERRUPTED = "interrupted: the process stopped before the run finished"
# Why a recomputation was refused (core.errors.ValidationFailed codes; the API answers 400).
CODE_AS_OF_IN_FUTURE = "as_of_in_future"
CODE_BACKFILL_NEEDS_EVERYONE = "backfill_needs_everyone"

Progress = Callable[[int, int], None]  # (batches done, batches in all)


@dataclass(frozen=True)
class Breakpoints:
    """Four ascending breakpoints per dimension, or None where nobody bought in the window."""

    recency: list[int] | None
    frequency: list[int] | None
    monetary: list[Decimal] | None

    def as_json(self) -> dict[str, list[Any] | None]:
        return {
            "recency": self.recency,
            "frequency": self.frequency,
            "monetary": [str(v) for v in self.monetary] if self.monetary is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Breakpoints":
        monetary = data.get("monetary")
        return cls(
            recency=data.get("recency"),
            frequency=data.get("frequency"),
            monetary=[Decimal(v) for v in monetary] if monetary is not None else None,
        )


def _parameters(
    *, as_of: date, rfm: RfmPolicy, lifecycle: LifecyclePolicy, run_id: int
) -> dict[str, Any]:
    return {
        "tz": settings.TIME_ZONE,
        "as_of": as_of,
        "end": start_of_day(as_of + timedelta(days=1)),
        "window_start": start_of_day(as_of - timedelta(days=rfm.lookback_days - 1)),
        "recent_start": start_of_day(as_of - timedelta(days=lifecycle.reactivated_days)),
        "new_days": lifecycle.new_days,
        "active_days": lifecycle.active_days,
        "sleeping_days": lifecycle.sleeping_days,
        "reactivated_days": lifecycle.reactivated_days,
        "high_score": rfm.high_score_threshold,
        "statuses": list(PURCHASE_STATUSES),
        "run_id": run_id,
    }


# Per-customer aggregates of paid orders up to the end of the as-of day.
_AGGREGATES = """
           min(o.paid_at) AS first_paid_at,
           max(o.paid_at) AS last_paid_at,
           count(*) AS lifetime_orders,
           sum(o.total_amount - o.refunded_amount) AS lifetime_net_spend,
           count(*) FILTER (WHERE o.paid_at >= %(window_start)s) AS orders_in_window,
           coalesce(sum(o.total_amount - o.refunded_amount)
                    FILTER (WHERE o.paid_at >= %(window_start)s), 0) AS net_spend_in_window,
           min(o.paid_at) FILTER (WHERE o.paid_at >= %(recent_start)s) AS first_recent_paid_at,
           max(o.paid_at) FILTER (WHERE o.paid_at < %(recent_start)s) AS last_earlier_paid_at
"""
# A full run: one customer id range (see the module's docstring).
AGGREGATE_RANGE_SQL = f"""
    SELECT o.customer_id, {_AGGREGATES}
    FROM crm_order o  -- index order_by_customer_paid, in customer order
    WHERE o.customer_id >= %(id_low)s AND o.customer_id < %(id_high)s
      AND o.status = ANY(%(statuses)s) AND o.paid_at < %(end)s
    GROUP BY o.customer_id
"""  # noqa: S608 - constants only
# An incremental run reads each scope customer's orders through order_by_customer_paid (a
# lateral lookup: a join would let a misestimate of orders per customer pick a full scan).
_AGGREGATE_SCOPE_SQL = f"""
    SELECT s.customer_id, x.*
    FROM segments_work_scope s
    CROSS JOIN LATERAL (
        SELECT {_AGGREGATES}
        FROM crm_order o
        WHERE o.customer_id = s.customer_id
          AND o.status = ANY(%(statuses)s) AND o.paid_at < %(end)s
    ) x
    WHERE x.lifetime_orders > 0
"""  # noqa: S608 - constants only

_BREAKPOINTS_SQL = """
    SELECT percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY recency_days),
           percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY orders_in_window),
           percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (ORDER BY net_spend_in_window)
    FROM (
        SELECT %(as_of)s::date - (last_paid_at AT TIME ZONE %(tz)s)::date AS recency_days,
               orders_in_window, net_spend_in_window
        FROM segments_work_agg WHERE orders_in_window > 0
    ) buyers
"""

# Scores: 4 ascending breakpoints b1..b4. Recency (days) scores 5 at most b1 down to 1 above
# b4; frequency and monetary score 1 at most b1 up to 5 above b4. Equal values, equal scores.
# The metrics columns in the order the statement writes and compares them.
METRIC_COLUMNS = (
    "first_paid_at",
    "last_paid_at",
    "orders_in_window",
    "net_spend_in_window",
    "lifetime_orders",
    "lifetime_net_spend",
    "avg_order_value",
    "avg_days_between_orders",
    "r_score",
    "f_score",
    "m_score",
    "rfm_tier",
    "lifecycle_state",
    "lifecycle_since",
    "previous_lifecycle_state",
)
_COLUMNS = ", ".join(METRIC_COLUMNS)
_SET_CHANGED = ", ".join(f"{c} = n.{c}" for c in METRIC_COLUMNS)


def _day(expression: str) -> str:
    """The start of business day `expression` (a date) as a timestamp."""
    return f"(({expression})::timestamp AT TIME ZONE %(tz)s)"


_OLD_COLUMNS = ", ".join(f"m.{c} AS old_{c}" for c in METRIC_COLUMNS)
_OLD_VALUES = ", ".join(f"old_{c}" for c in METRIC_COLUMNS)

# One batch: the customers of an id range (all of them, or those in segments_work_scope), their
# new values, and the rows that differ from the stored ones, written with their transitions.
# Every table is read by its primary key within the range (no scan of a whole table).
# _SCORE_TEMPLATE computes the values (CTE `new`); a live run compares and writes them, a
# backfill only counts them (BACKFILL_SQL).
_SCORE_TEMPLATE = f"""
WITH base AS (
    SELECT c.id AS customer_id, a.first_paid_at, a.last_paid_at, a.first_recent_paid_at,
           coalesce(a.lifetime_orders, 0) AS lifetime_orders,
           coalesce(a.lifetime_net_spend, 0) AS lifetime_net_spend,
           coalesce(a.orders_in_window, 0) AS orders_in_window,
           coalesce(a.net_spend_in_window, 0) AS net_spend_in_window,
           (a.first_paid_at AT TIME ZONE %(tz)s)::date AS first_date,
           (a.last_paid_at AT TIME ZONE %(tz)s)::date AS last_date,
           %(as_of)s::date - (a.first_paid_at AT TIME ZONE %(tz)s)::date AS days_since_first,
           %(as_of)s::date - (a.last_paid_at AT TIME ZONE %(tz)s)::date AS days_since_last,
           (a.first_recent_paid_at AT TIME ZONE %(tz)s)::date
               - (a.last_earlier_paid_at AT TIME ZONE %(tz)s)::date AS recent_gap_days,
           m.customer_id IS NOT NULL AS has_row, {_OLD_COLUMNS},
           c.id IN (SELECT customer_id FROM segments_work_dirty) AS is_dirty
    {{candidates}}
),
classified AS (
    SELECT b.*,
        CASE WHEN b.last_paid_at IS NULL THEN 'prospect'
             WHEN b.days_since_first <= %(new_days)s THEN 'new'
             WHEN b.recent_gap_days > %(active_days)s THEN 'reactivated'
             WHEN b.days_since_last <= %(active_days)s THEN 'active'
             WHEN b.days_since_last <= %(sleeping_days)s THEN 'sleeping'
             ELSE 'churned'
        END AS lifecycle_state,
        CASE WHEN b.orders_in_window > 0 THEN 5
            - (b.days_since_last > %(r1)s)::int - (b.days_since_last > %(r2)s)::int
            - (b.days_since_last > %(r3)s)::int - (b.days_since_last > %(r4)s)::int
        END AS r_score,
        CASE WHEN b.orders_in_window > 0 THEN 1
            + (b.orders_in_window > %(f1)s)::int + (b.orders_in_window > %(f2)s)::int
            + (b.orders_in_window > %(f3)s)::int + (b.orders_in_window > %(f4)s)::int
        END AS f_score,
        CASE WHEN b.orders_in_window > 0 THEN 1
            + (b.net_spend_in_window > %(m1)s)::int + (b.net_spend_in_window > %(m2)s)::int
            + (b.net_spend_in_window > %(m3)s)::int + (b.net_spend_in_window > %(m4)s)::int
        END AS m_score
    FROM base b
),
-- The latest reactivating order of customers entering "active" or whose orders changed,
-- from each paid order's predecessor (order_by_customer_paid serves the lookup).
reactivations AS (
    SELECT r.customer_id,
           max(r.paid_date) FILTER (WHERE r.paid_date - r.previous_date > %(active_days)s)
               AS last_reactivated_date
    FROM (
        SELECT o.customer_id, (o.paid_at AT TIME ZONE %(tz)s)::date AS paid_date,
               lag((o.paid_at AT TIME ZONE %(tz)s)::date)
                   OVER (PARTITION BY o.customer_id ORDER BY o.paid_at) AS previous_date
        FROM crm_order o
        WHERE o.customer_id IN (
                SELECT customer_id FROM classified
                WHERE lifecycle_state = 'active'
                  AND (is_dirty OR %(policy_changed)s
                       OR old_lifecycle_state IS DISTINCT FROM 'active'))
          AND o.status = ANY(%(statuses)s) AND o.paid_at < %(end)s
    ) r
    GROUP BY r.customer_id
),
new AS (
    SELECT s.customer_id, s.has_row, {_OLD_VALUES},
        coalesce(s.old_lifecycle_state, 'prospect') AS from_state,
        s.first_paid_at, s.last_paid_at, s.orders_in_window,
        s.net_spend_in_window, s.lifetime_orders, s.lifetime_net_spend,
        round(s.lifetime_net_spend / nullif(s.lifetime_orders, 0), 2) AS avg_order_value,
        CASE WHEN s.lifetime_orders > 1 THEN round((extract(epoch FROM
            s.last_paid_at - s.first_paid_at) / 86400 / (s.lifetime_orders - 1))::numeric, 1)
        END AS avg_days_between_orders,
        s.r_score, s.f_score, s.m_score,
        CASE WHEN s.orders_in_window = 0 THEN NULL
             ELSE (ARRAY['general_winback', 'important_winback', 'general_retain',
                         'important_retain', 'general_develop', 'important_develop',
                         'general_value', 'important_value'])[
                 1 + 4 * (s.r_score >= %(high_score)s)::int
                   + 2 * (s.f_score >= %(high_score)s)::int
                   + (s.m_score >= %(high_score)s)::int]
        END AS rfm_tier,
        s.lifecycle_state,
        CASE s.lifecycle_state
            WHEN 'prospect' THEN NULL
            WHEN 'new' THEN s.first_paid_at
            WHEN 'reactivated' THEN s.first_recent_paid_at
            WHEN 'sleeping' THEN {_day("s.last_date + %(active_days)s + 1")}
            WHEN 'churned' THEN {_day("s.last_date + %(sleeping_days)s + 1")}
            ELSE CASE
                WHEN r.customer_id IS NOT NULL THEN {
    _day(
        "greatest(s.first_date + %(new_days)s + 1, "
        "r.last_reactivated_date + %(reactivated_days)s + 1)"
    )
}
                ELSE s.old_lifecycle_since
            END
        END AS lifecycle_since,
        CASE WHEN s.lifecycle_state = coalesce(s.old_lifecycle_state, 'prospect')
             THEN coalesce(s.old_previous_lifecycle_state, '')
             ELSE coalesce(s.old_lifecycle_state, 'prospect')
        END AS previous_lifecycle_state
    FROM classified s
    LEFT JOIN reactivations r ON r.customer_id = s.customer_id
)"""  # noqa: S608 - composed of constants only
_LIVE_WRITES = f""",
changed AS (
    SELECT * FROM new
    WHERE NOT has_row OR ({_COLUMNS}) IS DISTINCT FROM ({_OLD_VALUES})
),
-- Rows are new or updated, never both: only a run writes them, and runs never overlap.
inserted AS (
    INSERT INTO segments_customermetrics (customer_id, {_COLUMNS}, changed_at)
    SELECT customer_id, {_COLUMNS}, now() FROM changed WHERE NOT has_row
    RETURNING 1
),
updated AS (
    UPDATE segments_customermetrics t SET {_SET_CHANGED}, changed_at = now()
    FROM changed n
    -- Rows found by primary key (the planner cannot tell how few rows changed).
    WHERE t.customer_id = ANY(ARRAY(SELECT customer_id FROM changed WHERE has_row))
      AND n.has_row AND t.customer_id = n.customer_id
    RETURNING 1
),
transitions AS (
    INSERT INTO segments_lifecycletransition
        (customer_id, from_state, to_state, at, recorded_at, run_id)
    SELECT customer_id, from_state, lifecycle_state, coalesce(lifecycle_since, now()), now(),
           %(run_id)s
    FROM changed WHERE lifecycle_state <> from_state
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) + (SELECT count(*) FROM updated),
       (SELECT count(*) FROM transitions)
"""  # noqa: S608 - composed of constants only
_BATCH_TEMPLATE = _SCORE_TEMPLATE + _LIVE_WRITES

# The customers of a batch: a full run takes an id range of all customers, reading each table
# by its primary key within the range; an incremental run starts from its scope.
BATCH_ALL_SQL = _BATCH_TEMPLATE.format(
    candidates="""FROM crm_customer c
    LEFT JOIN segments_work_agg a ON a.customer_id = c.id
        AND a.customer_id >= %(id_low)s AND a.customer_id < %(id_high)s
    LEFT JOIN segments_customermetrics m ON m.customer_id = c.id
        AND m.customer_id >= %(id_low)s AND m.customer_id < %(id_high)s
    WHERE c.id >= %(id_low)s AND c.id < %(id_high)s"""
)
BATCH_SCOPE_SQL = _BATCH_TEMPLATE.format(
    candidates="""FROM segments_work_scope k
    JOIN crm_customer c ON c.id = k.customer_id
    LEFT JOIN segments_work_agg a ON a.customer_id = k.customer_id
    LEFT JOIN segments_customermetrics m ON m.customer_id = k.customer_id
    WHERE k.customer_id >= %(id_low)s AND k.customer_id < %(id_high)s"""
)
# A backfill batch: the customers of an id range seen by the end of the as-of day (or who had
# paid by then), computed from the orders alone, counted per tier and state into
# segments_work_backfill. It reads no live row (`m` joins nothing, and the run sets
# policy_changed so that every active spell's start comes from the orders) and writes nothing
# but that work table: no metrics, no transitions.
_BACKFILL_COUNTS = """,
counted AS (
    INSERT INTO segments_work_backfill (rfm_tier, lifecycle_state, customers)
    SELECT rfm_tier, lifecycle_state, count(*) FROM new GROUP BY rfm_tier, lifecycle_state
    RETURNING 1
)
SELECT 0, 0 FROM (SELECT count(*) FROM counted) written"""
BACKFILL_SQL = (
    _SCORE_TEMPLATE.format(
        candidates="""FROM crm_customer c
    LEFT JOIN segments_work_agg a ON a.customer_id = c.id
        AND a.customer_id >= %(id_low)s AND a.customer_id < %(id_high)s
    LEFT JOIN segments_customermetrics m ON false
    WHERE c.id >= %(id_low)s AND c.id < %(id_high)s
      AND (c.first_seen_at < %(end)s OR a.customer_id IS NOT NULL)"""
    )
    + _BACKFILL_COUNTS
)


class RunSkipped(Exception):
    """Another recomputation holds the lock and the caller chose not to wait."""

    def __init__(self, run: RecomputeRun) -> None:
        super().__init__(f"recomputation run {run.pk} skipped: another run is in progress")
        self.run = run


def _reset_interrupted_runs() -> None:
    """Runs still marked running while this process holds the lock died on the way."""
    RecomputeRun.objects.filter(status=RecomputeStatus.RUNNING).update(
        status=RecomputeStatus.FAILED, error=ERROR_INTERRUPTED, finished_at=timezone.now()
    )


def _last_full_run() -> RecomputeRun | None:
    return (
        RecomputeRun.objects.filter(kind=RecomputeKind.FULL, status=RecomputeStatus.SUCCEEDED)
        .select_related("rfm_policy", "lifecycle_policy")
        .order_by("-id")
        .first()
    )


def recompute_check(*, as_of: date | None, everyone: bool) -> bool:
    """The rule on the date of a recomputation, for the API, the command and the admin before
    they ask for one (the run applies it again under its lock: a full run may have finished
    since). True when the run is a backfill: every customer (`everyone`) as of a date before
    that of the latest full run, which is recorded apart (BackfillCount) and never changes the
    live metrics, the transition feed or the segments. Raises ValidationFailed for a date in
    the future, and for some customers as of a date before the latest full run (their rows
    would go back in time while everyone else's stay). No date: today, a live run."""
    if as_of is None:
        return False
    return _backfill_decision(as_of=as_of, everyone=everyone, last_full=_last_full_run())


def _backfill_decision(*, as_of: date, everyone: bool, last_full: RecomputeRun | None) -> bool:
    if as_of > timezone.localdate():
        message = _("A date in the future cannot be computed yet.")
        raise ValidationFailed(CODE_AS_OF_IN_FUTURE, message, detail={"as_of": [message]})
    if last_full is None or as_of >= last_full.as_of:
        return False
    if not everyone:
        message = _(
            "The current scores are as of %(date)s, the date of the latest full "
            "recomputation. An earlier date is computed for every customer and recorded "
            "apart, without changing the current scores: leave out the customers."
        ) % {"date": last_full.as_of.isoformat()}
        raise ValidationFailed(
            CODE_BACKFILL_NEEDS_EVERYONE, message, detail={"customer_ids": [message]}
        )
    return True


def _marks_seen() -> list[int]:
    """Ids of the recomputation marks committed so far (later ones stay for the next run)."""
    return list(DirtyMark.objects.order_by("id").values_list("id", flat=True))


def _prepare_tables(
    *, mark_ids: Sequence[int], customer_ids: Sequence[int] | None, scoped: bool
) -> None:
    """Work tables: the customers whose orders changed (segments_work_dirty: those named,
    or those the marks name) and, for an incremental run, the customers to recompute
    (segments_work_scope)."""
    with connection.cursor() as cursor:
        for table in WORK_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        if customer_ids is not None:
            cursor.execute(
                "CREATE UNLOGGED TABLE segments_work_dirty AS "
                "SELECT DISTINCT unnest(%s::bigint[]) AS customer_id",
                [list(customer_ids)],
            )
        else:
            cursor.execute(
                "CREATE UNLOGGED TABLE segments_work_dirty AS SELECT DISTINCT unnest(customer_ids) "
                "AS customer_id FROM crm_dirtymark WHERE id = ANY(%s::bigint[])",
                [list(mark_ids)],
            )
        cursor.execute("ALTER TABLE segments_work_dirty ADD PRIMARY KEY (customer_id)")
        cursor.execute(
            "CREATE UNLOGGED TABLE segments_work_scope AS SELECT customer_id "
            "FROM segments_work_dirty WHERE %s",
            [scoped],
        )
        cursor.execute("ALTER TABLE segments_work_scope ADD PRIMARY KEY (customer_id)")
        cursor.execute("ANALYZE segments_work_dirty")
        cursor.execute("ANALYZE segments_work_scope")


def _scope_ids() -> list[int]:
    """The customers an incremental run recomputed, for the segment refresh after it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT array_agg(customer_id ORDER BY customer_id) FROM segments_work_scope"
        )
        return list(cursor.fetchone()[0] or [])  # type: ignore[index]


def _aggregate(params: dict[str, Any], *, scoped: bool) -> None:
    with connection.cursor() as cursor:
        if scoped:
            cursor.execute(
                "CREATE UNLOGGED TABLE segments_work_agg AS " + _AGGREGATE_SCOPE_SQL, params
            )
        else:
            cursor.execute(
                f"CREATE UNLOGGED TABLE segments_work_agg AS {AGGREGATE_RANGE_SQL} WITH NO DATA",
                {**params, "id_low": 0, "id_high": 0},
            )
    if not scoped:
        _in_parallel(_id_ranges(scoped=False), functools.partial(_aggregate_range, params))
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE segments_work_agg ADD PRIMARY KEY (customer_id)")
        cursor.execute("ANALYZE segments_work_agg")


def _aggregate_range(params: dict[str, Any], low: int, high: int) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            f"INSERT INTO segments_work_agg {AGGREGATE_RANGE_SQL}",
            {**params, "id_low": low, "id_high": high},
        )


def _first_paid_of_dirty() -> list[tuple[int, datetime]]:
    """The first paid order of each customer whose orders changed, from the aggregates."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.customer_id, a.first_paid_at FROM segments_work_agg a "
            "JOIN segments_work_dirty d ON d.customer_id = a.customer_id"
        )
        return [(customer_id, first_paid_at) for customer_id, first_paid_at in cursor.fetchall()]


def _quantile_breakpoints(params: dict[str, Any]) -> Breakpoints:
    with connection.cursor() as cursor:
        cursor.execute(_BREAKPOINTS_SQL, params)
        recency, frequency, monetary = cursor.fetchone()  # type: ignore[misc]
    return Breakpoints(recency=recency, frequency=frequency, monetary=monetary)


def _policy_breakpoints(policy: RfmPolicy, params: dict[str, Any]) -> Breakpoints:
    if policy.scoring_method == RfmScoringMethod.THRESHOLDS:
        return Breakpoints(
            recency=list(policy.recency_breakpoints),
            frequency=list(policy.frequency_breakpoints),
            monetary=list(policy.monetary_breakpoints),
        )
    return _quantile_breakpoints(params)


def _breakpoint_params(breakpoints: Breakpoints) -> dict[str, Any]:
    """Bound as parameters; a dimension nobody bought in has no breakpoints, and then nobody
    is scored (every score needs an order in the window), so zeros stand in."""
    params: dict[str, Any] = {}
    for letter, values in (
        ("r", breakpoints.recency),
        ("f", breakpoints.frequency),
        ("m", breakpoints.monetary),
    ):
        for position, value in enumerate(values or [0, 0, 0, 0], start=1):
            params[f"{letter}{position}"] = value
    return params


def _id_ranges(*, scoped: bool) -> list[tuple[int, int]]:
    """Half-open customer id ranges of at most BATCH_SIZE customers each: steps through the
    id space for a full run (customer ids are dense), every BATCH_SIZE-th id of the scope for
    an incremental one (its ids are sparse)."""
    with connection.cursor() as cursor:
        if not scoped:
            cursor.execute("SELECT min(id), max(id) FROM crm_customer")
            low, high = cursor.fetchone()  # type: ignore[misc]
            if low is None:
                return []
            return [(start, start + BATCH_SIZE) for start in range(low, high + 1, BATCH_SIZE)]
        cursor.execute(
            "SELECT customer_id FROM (SELECT customer_id, row_number() OVER "
            "(ORDER BY customer_id) AS n FROM segments_work_scope) t "
            "WHERE n %% %s = 1 ORDER BY customer_id",
            [BATCH_SIZE],
        )
        starts = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT max(customer_id) FROM segments_work_scope")
        last = cursor.fetchone()[0]  # type: ignore[index]
    if last is None:
        return []
    return list(zip(starts, [*starts[1:], last + 1], strict=True))


def _count(*, scoped: bool) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM segments_work_scope"
            if scoped
            else "SELECT count(*) FROM crm_customer"
        )
        return int(cursor.fetchone()[0])  # type: ignore[index]


def _batch(params: dict[str, Any], low: int, high: int, *, sql: str) -> tuple[int, int]:
    with transaction.atomic(), connection.cursor() as cursor:
        # No customer is merged away or deleted while its rows are written (their
        # customer_id has no foreign key): removals wait for the batch, or it sees them gone.
        customers_removal_lock(exclusive=False)
        cursor.execute("SET LOCAL jit = off")  # compiling costs more than running a batch
        cursor.execute("SET LOCAL work_mem = '64MB'")  # its hash joins stay in memory
        if sql is not BACKFILL_SQL:
            # Transitions are a feed read by id: readers stop below this batch's ids until it
            # ends. A backfill writes none, and holds no reader back.
            feed_writer_register(Feed.LIFECYCLE_TRANSITIONS)
        cursor.execute(sql, {**params, "id_low": low, "id_high": high})
        changed, transitions = cursor.fetchone()  # type: ignore[misc]
    return changed, transitions


RangeStep = Callable[[int, int], Any]  # work on customer ids low <= id < high


def _on_own_connection(step: RangeStep, low: int, high: int) -> Any:
    try:
        return step(low, high)
    finally:
        connection.close()  # this thread's connection


def _in_parallel(
    ranges: list[tuple[int, int]],
    step: RangeStep,
    record: Callable[[Any], None] = lambda _result: None,
) -> None:
    """Run `step` over each id range, RECOMPUTE_WORKERS at a time on their own connections,
    unless the caller holds a transaction (then the work tables are visible to this connection
    only); `record` is given each result as it comes."""
    workers = settings.RECOMPUTE_WORKERS
    if workers <= 1 or connection.in_atomic_block or len(ranges) <= 1:
        for low, high in ranges:
            record(step(low, high))
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_on_own_connection, step, low, high) for low, high in ranges]
        for future in as_completed(futures):
            record(future.result())


def _run_batches(
    run: RecomputeRun,
    params: dict[str, Any],
    *,
    scoped: bool,
    progress: Progress | None,
    sql: str | None = None,
) -> None:
    """Score, compare and write every batch (see `_in_parallel`), recording progress. `sql`:
    what a batch runs (default: the live comparison and writes of a full or incremental run)."""
    sql = sql or (BATCH_SCOPE_SQL if scoped else BATCH_ALL_SQL)
    ranges = _id_ranges(scoped=scoped)
    run.customers_processed = _count(scoped=scoped)
    if progress is not None:
        progress(0, len(ranges))
    done = 0

    def record(result: tuple[int, int]) -> None:
        nonlocal done
        changed, transitions = result
        run.rows_changed += changed
        run.transitions_written += transitions
        RecomputeRun.objects.filter(pk=run.pk).update(
            customers_processed=run.customers_processed,
            rows_changed=run.rows_changed,
            transitions_written=run.transitions_written,
        )
        done += 1
        if progress is not None:
            progress(done, len(ranges))

    _in_parallel(ranges, functools.partial(_batch, params, sql=sql), record)


def _drop_tables() -> None:
    with connection.cursor() as cursor:
        for table in WORK_TABLES:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


def _finish(run: RecomputeRun, status: str, error: str = "") -> RecomputeRun:
    run.status = status
    run.error = error
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at", "breakpoints"])
    return run


def recompute_full(
    *,
    trigger: str,
    as_of: date | None = None,
    wait: bool = True,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
) -> RecomputeRun:
    """Recompute every customer as of `as_of` (default: today in the business time zone).

    With `wait`, a run already in progress is waited for; without, this run is recorded as
    skipped and RunSkipped is raised. Marks committed before the run began are consumed."""
    return _recompute(
        kind=RecomputeKind.FULL,
        trigger=trigger,
        as_of=as_of,
        wait=wait,
        progress=progress,
        on_wait=on_wait,
        customer_ids=None,
    )


def recompute_customers(
    *,
    customer_ids: Sequence[int] | None = None,
    trigger: str,
    as_of: date | None = None,
    wait: bool = False,
    progress: Progress | None = None,
    on_wait: Callable[[], None] | None = None,
) -> RecomputeRun:
    """Recompute some customers with the breakpoints of the last full run: those named, or
    (when `customer_ids` is None) those marked by ingestion, whose marks are then consumed.
    Without a successful full run yet, a full run is made instead."""
    return _recompute(
        kind=RecomputeKind.INCREMENTAL,
        trigger=trigger,
        as_of=as_of,
        wait=wait,
        progress=progress,
        on_wait=on_wait,
        customer_ids=customer_ids,
    )


def _recompute(
    *,
    kind: str,
    trigger: str,
    as_of: date | None,
    wait: bool,
    progress: Progress | None,
    on_wait: Callable[[], None] | None,
    customer_ids: Sequence[int] | None,
) -> RecomputeRun:
    with session_lock(Lock.RECOMPUTE, wait=wait, on_wait=on_wait) as obtained:
        as_of = as_of or timezone.localdate()  # the day the run starts, after any wait
        if not obtained:
            run = RecomputeRun.objects.create(
                kind=kind,
                trigger=trigger,
                as_of=as_of,
                status=RecomputeStatus.SKIPPED,
                finished_at=timezone.now(),
                error=ERROR_ANOTHER_RUN,
            )
            logger.info("recompute.skipped", extra={"run_id": run.pk, "kind": kind})
            raise RunSkipped(run)
        _reset_interrupted_runs()
        last_full = _last_full_run()
        try:
            is_backfill = _backfill_decision(
                as_of=as_of, everyone=kind == RecomputeKind.FULL, last_full=last_full
            )
        except ValidationFailed as refusal:
            run = RecomputeRun.objects.create(
                kind=kind,
                trigger=trigger,
                as_of=as_of,
                status=RecomputeStatus.FAILED,
                finished_at=timezone.now(),
                error=f"{refusal.code}: {refusal.message}",
            )
            logger.info("recompute.refused", extra={"run_id": run.pk, "code": refusal.code})
            return run
        if is_backfill:
            kind, customer_ids = RecomputeKind.BACKFILL, None
        if kind == RecomputeKind.INCREMENTAL and (
            last_full is None or None in last_full.breakpoints.values()
        ):
            # No breakpoints to score with yet (no full run, or nobody had bought then).
            kind, customer_ids = RecomputeKind.FULL, None
        if kind != RecomputeKind.INCREMENTAL or last_full is None:
            rfm, lifecycle = rfm_policy_active(), lifecycle_policy_active()
        else:
            rfm, lifecycle = last_full.rfm_policy, last_full.lifecycle_policy  # type: ignore[assignment]
        run = RecomputeRun.objects.create(
            kind=kind, trigger=trigger, as_of=as_of, rfm_policy=rfm, lifecycle_policy=lifecycle
        )
        started = time.monotonic()
        logger.info("recompute.started", extra={"run_id": run.pk, "kind": kind})
        try:
            _execute(run, last_full, customer_ids=customer_ids, progress=progress)
        except Exception as error:
            logger.exception("recompute.failed", extra={"run_id": run.pk})
            _drop_tables()
            return _finish(run, RecomputeStatus.FAILED, f"{type(error).__name__}: {error}")
        _drop_tables()
        logger.info(
            "recompute.finished",
            extra={
                "run_id": run.pk,
                "kind": kind,
                "customers_processed": run.customers_processed,
                "rows_changed": run.rows_changed,
                "transitions_written": run.transitions_written,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return _finish(run, RecomputeStatus.SUCCEEDED)


def _execute(
    run: RecomputeRun,
    last_full: RecomputeRun | None,
    *,
    customer_ids: Sequence[int] | None,
    progress: Progress | None,
) -> None:
    assert run.rfm_policy is not None and run.lifecycle_policy is not None
    params = _parameters(
        as_of=run.as_of, rfm=run.rfm_policy, lifecycle=run.lifecycle_policy, run_id=run.pk
    )
    if run.kind == RecomputeKind.BACKFILL:
        _execute_backfill(run, params, progress=progress)
        return
    # The start of an active spell is carried over only under the policy that computed it.
    params["policy_changed"] = (
        last_full is None or last_full.lifecycle_policy_id != run.lifecycle_policy_id
    )
    mark_ids = _marks_seen() if customer_ids is None else []
    scoped = run.kind == RecomputeKind.INCREMENTAL
    _prepare_tables(mark_ids=mark_ids, customer_ids=customer_ids, scoped=scoped)
    _aggregate(params, scoped=scoped)
    if mark_ids:
        customers_pull_first_seen(first_paid=_first_paid_of_dirty())
    if scoped:
        assert last_full is not None
        breakpoints = Breakpoints.from_json(last_full.breakpoints)
    else:
        breakpoints = _policy_breakpoints(run.rfm_policy, params)
    run.breakpoints = breakpoints.as_json()
    RecomputeRun.objects.filter(pk=run.pk).update(breakpoints=run.breakpoints)
    _run_batches(
        run, {**params, **_breakpoint_params(breakpoints)}, scoped=scoped, progress=progress
    )
    if mark_ids:
        DirtyMark.objects.filter(pk__in=mark_ids).delete()
    run.recomputed_customer_ids = _scope_ids() if scoped else None


def _execute_backfill(
    run: RecomputeRun, params: dict[str, Any], *, progress: Progress | None
) -> None:
    """Every customer as of the run's date, counted per tier and state into BackfillCount,
    in the same set-based steps as a full run (aggregation by id range, breakpoints of that
    date, batches). The live metrics, the transitions and the marks left by ingestion are
    neither read nor written, and no segment is refreshed after it (segments_refresh_after_run)."""
    assert run.rfm_policy is not None
    params["policy_changed"] = True  # every active spell's start from the orders, none carried
    _prepare_tables(mark_ids=[], customer_ids=None, scoped=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE UNLOGGED TABLE segments_work_backfill (rfm_tier varchar(20), "
            "lifecycle_state varchar(12) NOT NULL, customers bigint NOT NULL)"
        )
    _aggregate(params, scoped=False)
    breakpoints = _policy_breakpoints(run.rfm_policy, params)
    run.breakpoints = breakpoints.as_json()
    RecomputeRun.objects.filter(pk=run.pk).update(breakpoints=run.breakpoints)
    _run_batches(
        run,
        {**params, **_breakpoint_params(breakpoints)},
        scoped=False,
        progress=progress,
        sql=BACKFILL_SQL,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO segments_backfillcount (run_id, rfm_tier, lifecycle_state, customers) "
            "SELECT %s, rfm_tier, lifecycle_state, sum(customers) FROM segments_work_backfill "
            "GROUP BY rfm_tier, lifecycle_state",
            [run.pk],
        )
        run.customers_processed = sum(
            BackfillCount.objects.filter(run=run).values_list("customers", flat=True)
        )
        RecomputeRun.objects.filter(pk=run.pk).update(customers_processed=run.customers_processed)


def recompute_enqueue(
    *, trigger: str, as_of: date | None = None, customer_ids: Sequence[int] | None = None
) -> None:
    """Queue a recomputation once the caller's transaction commits (admin, API)."""
    if customer_ids is not None:
        enqueue.recompute_customers(
            customer_ids=sorted(set(customer_ids)), trigger=trigger, as_of=as_of
        )
    else:
        enqueue.recompute_full(trigger=trigger, as_of=as_of)
