"""Segmentation recomputation, stage by stage, against the bare SQL aggregation floor.

    python bench/segmentation.py [--customers 1000000 | --sizes 10000,100000,1000000] [--reuse]
                             [--database-url URL]

For each size: a scratch database `<name>_seg_<customers>` on the server of
`--database-url` (default BENCH_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/crm_bench,
so crm_bench_seg_1000000), dropped, created and migrated unless `--reuse` finds it complete;
demo data from `devstack.demo.generate` (10 orders per customer on average, history up to AS_OF);
VACUUM ANALYZE. Then the stages of STAGES, in order, each timed on its own:

- floor: the bare aggregation of the paid orders that recomputation needs (FLOOR_SQL), in one
  statement with work_mem room for its hash aggregate, best of FLOOR_RUNS;
- first_full: `recompute_full` as of AS_OF over an empty metrics table;
- nightly: one day of activity (new paid orders for 1 % of customers, marked as ingestion
  marks them), then `recompute_full` as of the next day;
- incremental: INCREMENTAL_ORDERS orders of that day through the ingestion service, then the
  sweep `recompute_customers(trigger="sweep")`.

Only the recomputation call of a stage is timed; the writes that prepare it are not. Reported
per stage: seconds, ratio to the floor of the same run, rows changed, lifecycle transitions,
customers covered and microseconds per customer, next to the product target; then, when
several sizes ran, how each stage grows from the smallest size to the largest. Results go to
stdout and bench/results/segments.json; progress goes to stderr.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# The project root first: imports resolve to the apps, not to files next to this script.
sys.path.insert(0, str(ROOT))

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/crm_bench"
# A fixed business date: the same seed and date give the same data, hence comparable runs.
AS_OF = date(2026, 11, 23)
NEXT_DAY = AS_OF + timedelta(days=1)
SEED = 7
ORDERS_PER_CUSTOMER = 10
FLOOR_RUNS = 3
NIGHTLY_SHARE = 0.01
INCREMENTAL_ORDERS = 10_000
INGEST_BATCH = 1000  # what the bulk API accepts at most per request (API_BULK_MAX_ROWS)
# Orders and identities this script adds, removed again before a --reuse run.
NIGHTLY_SOURCE = "bench_nightly"
INCREMENTAL_SOURCE = "bench_sweep"
IDENTITY_NAMESPACE = "bench"

# The aggregates recomputation needs from the orders, without scoring, comparing or writing.
FLOOR_SQL = """
SELECT count(*), max(first_paid_at), max(last_paid_at), sum(lifetime_orders),
       sum(lifetime_net_spend), sum(orders_in_window), sum(net_spend_in_window)
FROM (SELECT customer_id, min(paid_at) AS first_paid_at, max(paid_at) AS last_paid_at,
             count(*) AS lifetime_orders,
             sum(total_amount - refunded_amount) AS lifetime_net_spend,
             count(*) FILTER (WHERE paid_at >= %(window_start)s) AS orders_in_window,
             coalesce(sum(total_amount - refunded_amount)
                      FILTER (WHERE paid_at >= %(window_start)s), 0) AS net_spend_in_window
      FROM crm_order WHERE status IN ('paid', 'partially_refunded') AND paid_at < %(end)s
      GROUP BY customer_id) s
"""

# One day of activity, set-based: a random NIGHTLY_SHARE of customers (setseed makes random()
# repeatable) each pay one order at a random second of the day, and one mark names them all,
# as an ingested batch does (crm.services.marks.customers_mark_dirty).
NIGHTLY_SQL = """
WITH chosen AS (
    SELECT id AS customer_id FROM crm_customer ORDER BY random() LIMIT %(count)s
),
priced AS (
    SELECT customer_id, (39 + floor(random() * 600))::numeric(14, 2) AS amount,
           %(day_start)s::timestamptz + floor(random() * 86400) * interval '1 second' AS paid_at
    FROM chosen
),
inserted AS (
    INSERT INTO crm_order (customer_id, source, external_id, status, total_amount,
                           refunded_amount, currency, paid_at, channel, store, content_hash,
                           created_at, updated_at)
    SELECT customer_id, %(source)s, 'N' || customer_id, 'paid', amount, 0, 'CNY', paid_at,
           'miniprogram', '', md5(%(source)s || customer_id || amount || paid_at), now(), now()
    FROM priced
    RETURNING customer_id
)
INSERT INTO crm_dirtymark (customer_ids, marked_at)
SELECT array_agg(customer_id ORDER BY customer_id), now() FROM inserted
"""

# Existing customers get an external id, so that ingested orders can name them (their other
# identity values are encrypted, so unknown to this script).
ATTACH_IDENTITIES_SQL = """
INSERT INTO crm_identity (customer_id, provider, namespace, value_hash, value_encrypted,
                          value_masked, is_sensitive, created_at)
SELECT customer_id, 'external', %s, value_hash, value_encrypted, value_masked, false, now()
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[])
    AS t(customer_id, value_hash, value_encrypted, value_masked)
"""


def say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def fetch_one(sql: str, params: Any = None) -> tuple[Any, ...]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return tuple(row)


def execute(sql: str, params: Any = None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def day_start(day: date) -> datetime:
    from django.conf import settings

    return datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(settings.TIME_ZONE))


@dataclass
class Bench:
    """What the stages of one size share."""

    customers: int
    rng: np.random.Generator
    segment_id: int = 0  # the segment the materialisation stages share


@dataclass
class Outcome:
    """The timed figures of one stage. `customers` is how many customers the timed work covers
    (the microseconds per customer are over them)."""

    seconds: float
    customers: int
    rows_changed: int | None = None
    transitions: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A product target: its wording, and the seconds it allows given the floor's."""

    text: str
    limit: Callable[[float], float]


@dataclass(frozen=True)
class Stage:
    """One timed step: `run` prepares what it needs (untimed) and times its own work."""

    name: str
    run: Callable[[Bench], Outcome]
    target: Target | None = None


def timed_recompute(call: Callable[[], Any]) -> Outcome:
    from segments.models import RecomputeStatus

    started = time.perf_counter()
    run = call()
    seconds = time.perf_counter() - started
    if run.status != RecomputeStatus.SUCCEEDED:
        raise SystemExit(f"recomputation run {run.pk} {run.status}: {run.error}")
    return Outcome(
        seconds=seconds,
        customers=run.customers_processed,
        rows_changed=run.rows_changed,
        transitions=run.transitions_written,
        details={"run_id": run.pk, "kind": run.kind},
    )


def stage_floor(bench: Bench) -> Outcome:
    from segments.services.policies import lifecycle_policy_active, rfm_policy_active
    from segments.services.recompute import _parameters

    params = _parameters(
        as_of=AS_OF, rfm=rfm_policy_active(), lifecycle=lifecycle_policy_active(), run_id=0
    )
    bounds = {"window_start": params["window_start"], "end": params["end"]}
    runs = []
    execute("SET work_mem = '256MB'")
    for _ in range(FLOOR_RUNS):
        started = time.perf_counter()
        buyers = fetch_one(FLOOR_SQL, bounds)[0]
        runs.append(time.perf_counter() - started)
    execute("RESET work_mem")
    return Outcome(
        seconds=min(runs),
        customers=bench.customers,
        details={"runs": [round(s, 3) for s in runs], "customers_with_paid_orders": buyers},
    )


def stage_first_full(bench: Bench) -> Outcome:
    from segments.services.recompute import recompute_full

    execute(
        "TRUNCATE segments_customermetrics, segments_lifecycletransition, segments_recomputerun,"
        " segments_backfillcount"
    )
    return timed_recompute(lambda: recompute_full(trigger="bench", as_of=AS_OF))


def stage_nightly(bench: Bench) -> Outcome:
    from segments.services.recompute import recompute_full

    count = round(bench.customers * NIGHTLY_SHARE)
    execute("SELECT setseed(0.7)")
    execute(
        NIGHTLY_SQL, {"count": count, "day_start": day_start(NEXT_DAY), "source": NIGHTLY_SOURCE}
    )
    # A day has passed since the last full run: autovacuum has been through the rows it wrote.
    execute(
        "VACUUM ANALYZE crm_order, crm_dirtymark, segments_customermetrics,"
        " segments_lifecycletransition"
    )
    outcome = timed_recompute(lambda: recompute_full(trigger="bench", as_of=NEXT_DAY))
    outcome.details["customers_with_new_orders"] = count
    return outcome


def stage_incremental(bench: Bench) -> Outcome:
    from crm.inputs import CustomerRefIn, IdentityIn, OrderIn, OrderItemIn
    from crm.personal_data import encrypt, hash_identity, mask
    from crm.services.orders import orders_bulk_upsert
    from devstack.demo import CATALOGUE
    from segments.services.recompute import recompute_customers

    rng = bench.rng
    low, high = fetch_one("SELECT min(id), max(id) FROM crm_customer")
    # Ids are dense (devstack.demo reserves them in blocks); with replacement, as some customers do
    # order twice a day.
    buyers = rng.integers(low, high + 1, size=INCREMENTAL_ORDERS)
    distinct = sorted({int(c) for c in buyers})
    values = [f"c{customer_id}" for customer_id in distinct]
    execute(
        ATTACH_IDENTITIES_SQL,
        [
            IDENTITY_NAMESPACE,
            distinct,
            [hash_identity("external", IDENTITY_NAMESPACE, v) for v in values],
            [encrypt(v) for v in values],
            [mask("external", v) for v in values],
        ],
    )
    start = day_start(NEXT_DAY)
    seconds_of_day = rng.integers(0, 86400, size=INCREMENTAL_ORDERS)
    orders = []
    for n, (customer_id, second) in enumerate(zip(buyers, seconds_of_day, strict=True)):
        items = [
            OrderItemIn(
                sku=sku,
                name=name,
                category=category,
                quantity=int(rng.integers(1, 3)),
                unit_price=Decimal(f"{price:.2f}"),
            )
            for sku, name, category, _interest, price in (
                CATALOGUE[int(i)]
                for i in rng.choice(len(CATALOGUE), size=rng.integers(1, 4), replace=False)
            )
        ]
        orders.append(
            OrderIn(
                source=INCREMENTAL_SOURCE,
                external_id=f"S{n:06d}",
                customer=CustomerRefIn(
                    identities=[
                        IdentityIn(
                            provider="external",
                            namespace=IDENTITY_NAMESPACE,
                            value=f"c{customer_id}",
                        )
                    ]
                ),
                status="paid",
                total_amount=sum((i.unit_price * i.quantity for i in items), Decimal(0)),
                paid_at=start + timedelta(seconds=int(second)),
                channel="miniprogram",
                items=items,
            )
        )
    started = time.perf_counter()
    created = 0
    for offset in range(0, len(orders), INGEST_BATCH):
        result = orders_bulk_upsert(orders=orders[offset : offset + INGEST_BATCH], actor="bench")
        created += result.created
    ingest_seconds = time.perf_counter() - started
    if created != INCREMENTAL_ORDERS:
        raise SystemExit(f"ingestion created {created} of {INCREMENTAL_ORDERS} orders")
    outcome = timed_recompute(lambda: recompute_customers(trigger="sweep", as_of=NEXT_DAY))
    outcome.details.update(
        orders_ingested=created,
        customers_with_new_orders=len(distinct),
        ingest_seconds_untimed=round(ingest_seconds, 2),
    )
    return outcome


# Everyone not opted out of WeCom messages: a segment of nearly every customer, read from the
# customers, their metrics and their consent.
MATERIALISE_RULE: dict[str, Any] = {
    "all": [
        {"field": "order_count", "op": "gte", "value": 0},
        {"not": {"field": "consent.wecom", "op": "eq", "value": "opted_out"}},
    ]
}
# Under 1 % of the members leave: they opt out of WeCom messages.
OPT_OUT_SHARE = 0.005
OPT_OUT_SQL = """
INSERT INTO crm_consent (customer_id, channel, status, source, changed_at)
SELECT id, 'wecom', 'opted_out', 'bench', now()
FROM crm_customer WHERE random() < %(share)s
ON CONFLICT (customer_id, channel) DO UPDATE SET status = 'opted_out', changed_at = now()
"""
# What an operator builds: recent buyers of skincare with an interest tag, reachable on WeCom.
PREVIEW_RULE: dict[str, Any] = {
    "all": [
        {"field": "lifecycle_state", "op": "in", "value": ["new", "active", "reactivated"]},
        {
            "field": "tag",
            "op": "has_any",
            "value": [{"group": "兴趣偏好", "name": "护肤"}, {"group": "兴趣偏好", "name": "彩妆"}],
        },
        {
            "field": "purchased",
            "op": "gte",
            "value": 1,
            "params": {"category": ["护肤"], "within_days": 90},
        },
        {"not": {"field": "consent.wecom", "op": "eq", "value": "opted_out"}},
    ]
}


def stage_materialise(bench: Bench) -> Outcome:
    from segments.models import Segment
    from segments.services.segments import segment_refresh

    execute("DELETE FROM segments_segmentmembershipevent")
    execute("DELETE FROM segments_segmentmembership")
    Segment.objects.all().delete()
    segment = Segment.objects.create(name="bench", kind="dynamic", rule=MATERIALISE_RULE)
    bench.segment_id = segment.pk
    started = time.perf_counter()
    outcome = segment_refresh(segment_id=segment.pk)
    seconds = time.perf_counter() - started
    return Outcome(
        seconds=seconds,
        customers=bench.customers,
        rows_changed=outcome.entered,
        details={"size": outcome.size},
    )


def stage_rematerialise(bench: Bench) -> Outcome:
    from segments.services.segments import segment_refresh

    execute("SELECT setseed(0.3)")
    execute(OPT_OUT_SQL, {"share": OPT_OUT_SHARE})
    execute("VACUUM ANALYZE crm_consent, segments_segmentmembership")
    started = time.perf_counter()
    outcome = segment_refresh(segment_id=bench.segment_id)
    seconds = time.perf_counter() - started
    return Outcome(
        seconds=seconds,
        customers=bench.customers,
        rows_changed=outcome.entered + outcome.exited,
        details={"size": outcome.size, "entered": outcome.entered, "exited": outcome.exited},
    )


def stage_preview(bench: Bench) -> Outcome:
    from segments.services.segments import segment_preview

    started = time.perf_counter()
    preview = segment_preview(rule=PREVIEW_RULE)
    seconds = time.perf_counter() - started
    return Outcome(
        seconds=seconds,
        customers=bench.customers,
        details={"size": preview.size, "condition_counts": preview.condition_counts},
    )


STAGES = [
    Stage("floor", stage_floor),
    Stage("first_full", stage_first_full, Target("≤ 15 s", lambda floor: 15.0)),
    Stage("nightly", stage_nightly, Target("≤ 2× floor", lambda floor: 2 * floor)),
    Stage("incremental", stage_incremental, Target("≤ 1 s", lambda floor: 1.0)),
    Stage("materialise", stage_materialise, Target("≤ 5 s", lambda floor: 5.0)),
    Stage("rematerialise", stage_rematerialise, Target("≤ 3 s", lambda floor: 3.0)),
    Stage("preview", stage_preview, Target("≤ 2 s", lambda floor: 2.0)),
]


def database_url_for(base_url: str, customers: int) -> str:
    parts = urlsplit(base_url)
    name = parts.path.lstrip("/") or "crm_bench"
    return urlunsplit(parts._replace(path=f"/{name}_seg_{customers}"))


def use_database(url: str) -> None:
    """Point Django at `url`'s database. New connections, those of the recomputation's worker
    threads included, are built from settings.DATABASES, so changing it there is enough once
    the open ones are closed (as Django's test runner does to switch to the test database)."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = urlsplit(url).path.lstrip("/")


def is_complete(customers: int) -> bool:
    """Whether the current database holds a whole generated data set of this size (devstack.demo
    commits chunk by chunk, so an interrupted generation leaves fewer customers)."""
    if fetch_one("SELECT to_regclass('crm_customer') IS NULL")[0]:
        return False
    return bool(fetch_one("SELECT count(*) FROM crm_customer")[0] == customers)


def prepare_database(url: str, customers: int, *, reuse: bool) -> dict[str, Any]:
    """Create, migrate and fill the scratch database of one size (or reuse it when complete),
    and leave it vacuumed, without anything an earlier run of this script added."""
    import psycopg
    from django.db import connections

    name = urlsplit(url).path.lstrip("/")
    admin_url = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    use_database(url)
    reusing = bool(reuse and exists and is_complete(customers))
    if not reusing:
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
    say(f"{'reusing' if reusing else 'created'} {name}, migrating")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": url},
    )
    if reusing:
        sources = [NIGHTLY_SOURCE, INCREMENTAL_SOURCE]
        execute(
            "DELETE FROM crm_orderitem WHERE order_id IN"
            " (SELECT id FROM crm_order WHERE source = ANY(%s))",
            [sources],
        )
        execute("DELETE FROM crm_order WHERE source = ANY(%s)", [sources])
        execute(
            "DELETE FROM crm_identity WHERE provider = 'external' AND namespace = %s",
            [IDENTITY_NAMESPACE],
        )
        execute("TRUNCATE crm_dirtymark")
        # Opt-outs of the rematerialise stage (a demo decision they replaced goes too: its
        # customer has no decision on WeCom, which the rules treat alike).
        execute("DELETE FROM crm_consent WHERE source = 'bench'")
    else:
        from devstack.demo import generate

        say(f"generating {customers:,} customers")
        started = time.perf_counter()
        generate(
            customers=customers, seed=SEED, orders_per_customer=ORDERS_PER_CUSTOMER, as_of=AS_OF
        )
        say(f"generated in {time.perf_counter() - started:.0f} s")
    say("VACUUM ANALYZE")
    execute("VACUUM ANALYZE")
    orders, paid = fetch_one(
        "SELECT count(*), count(*) FILTER (WHERE status IN ('paid', 'partially_refunded'))"
        " FROM crm_order"
    )
    return {"database": name, "reused": reusing, "orders": orders, "paid_orders": paid}


def run_size(url: str, customers: int, *, reuse: bool) -> dict[str, Any]:
    setup = prepare_database(url, customers, reuse=reuse)
    bench = Bench(customers=customers, rng=np.random.default_rng(SEED))
    results: list[dict[str, Any]] = []
    floor_seconds = 0.0
    for stage in STAGES:
        say(f"{customers:,} customers: stage {stage.name}")
        outcome = stage.run(bench)
        if stage.name == "floor":
            floor_seconds = outcome.seconds
        say(f"{customers:,} customers: stage {stage.name} took {outcome.seconds:.3f} s")
        limit = stage.target.limit(floor_seconds) if stage.target else None
        results.append(
            {
                "stage": stage.name,
                "seconds": round(outcome.seconds, 3),
                "ratio_to_floor": round(outcome.seconds / floor_seconds, 2),
                "rows_changed": outcome.rows_changed,
                "transitions": outcome.transitions,
                "customers": outcome.customers,
                "us_per_customer": round(outcome.seconds * 1e6 / max(outcome.customers, 1), 2),
                "target": stage.target.text if stage.target else None,
                "target_seconds": round(limit, 3) if limit is not None else None,
                "target_met": outcome.seconds <= limit if limit is not None else None,
                **outcome.details,
            }
        )
    return {"customers": customers, **setup, "stages": results}


def print_size(result: dict[str, Any]) -> None:
    print(
        f"\n{result['customers']:,} customers, {result['orders']:,} orders"
        f" ({result['paid_orders']:,} paid), database {result['database']}"
    )
    header = (
        f"{'stage':<12} {'seconds':>8} {'× floor':>8} {'rows changed':>13} {'transitions':>12}"
        f" {'customers':>10} {'µs/customer':>12}  target"
    )
    print(header)
    print("-" * len(header))
    for row in result["stages"]:
        target = ""
        if row["target"]:
            verdict = "met" if row["target_met"] else "MISSED"
            target = f"{row['target']} ({row['target_seconds']:.2f} s): {verdict}"

        def count(value: int | None) -> str:
            return f"{value:,}" if value is not None else "-"

        print(
            f"{row['stage']:<12} {row['seconds']:>8.3f} {row['ratio_to_floor']:>8.2f}"
            f" {count(row['rows_changed']):>13} {count(row['transitions']):>12}"
            f" {row['customers']:>10,} {row['us_per_customer']:>12.2f}  {target}"
        )


def scaling(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per stage, seconds and µs per customer at each size, and how much the time grew from
    the smallest size to the largest against how much the data grew."""
    smallest, largest = results[0], results[-1]
    rows = []
    for position, stage in enumerate(STAGES):
        rows.append(
            {
                "stage": stage.name,
                "seconds": {r["customers"]: r["stages"][position]["seconds"] for r in results},
                "us_per_customer": {
                    r["customers"]: r["stages"][position]["us_per_customer"] for r in results
                },
                "time_growth": round(
                    largest["stages"][position]["seconds"]
                    / smallest["stages"][position]["seconds"],
                    1,
                ),
                "data_growth": round(largest["customers"] / smallest["customers"], 1),
            }
        )
    return rows


def print_scaling(rows: list[dict[str, Any]]) -> None:
    sizes = list(rows[0]["seconds"])
    first, last = sizes[0], sizes[-1]
    print(f"\nscaling from {first:,} to {last:,} customers (data × {last / first:g})")
    header = (
        f"{'stage':<12}"
        + "".join(f" {f'{n:,} s':>12}" for n in sizes)
        + "".join(f" {f'µs/cust {n:,}':>18}" for n in sizes)
        + f" {'time ×':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['stage']:<12}"
            + "".join(f" {row['seconds'][n]:>12.3f}" for n in sizes)
            + "".join(f" {row['us_per_customer'][n]:>18.2f}" for n in sizes)
            + f" {row['time_growth']:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--sizes",
        type=lambda text: sorted(int(n) for n in text.split(",")),
        default=None,
        help="several sizes, comma-separated (replaces --customers)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a complete database of that size instead of generating it again",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="server and base name: each size gets its own database <name>_seg_<customers>",
    )
    args = parser.parse_args()
    sizes: list[int] = args.sizes or [args.customers]
    urls = [database_url_for(args.database_url, n) for n in sizes]

    os.environ["DATABASE_URL"] = urls[0]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query (and its parameters)
    # The services log every batch and run at INFO; the figures here say more.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from segments.services import recompute

    # The code under test as imported for this run (the working tree may differ from HEAD).
    code = {
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "recompute_sha256": hashlib.sha256(Path(recompute.__file__).read_bytes()).hexdigest()[:12],
    }

    results = [run_size(url, n, reuse=args.reuse) for url, n in zip(urls, sizes, strict=True)]
    for result in results:
        print_size(result)
    report: dict[str, Any] = {
        "as_of": AS_OF.isoformat(),
        "seed": SEED,
        "orders_per_customer": ORDERS_PER_CUSTOMER,
        "cpus": os.cpu_count(),
        "code": code,
        "sizes": results,
    }
    if len(results) > 1:
        report["scaling"] = scaling(results)
        print_scaling(report["scaling"])
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "segments.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nwritten to {out / 'segments.json'}")


if __name__ == "__main__":
    main()
