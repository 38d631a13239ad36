"""The segment portrait (人群画像) of 100k and 10k-member segments, against the bare SQL floor.

    python bench/portrait.py [--customers 1000000] [--reuse] [--database-url URL]

The database is the one bench/segmentation.py prepares, with its own functions:
`<name>_seg_<customers>` on the server of `--database-url` (default BENCH_DATABASE_URL, else
postgres://postgres@127.0.0.1:5432/crm_bench, so crm_bench_seg_1000000), dropped, created,
migrated and filled by `devstack.demo.generate` (seed 7, 10 orders per customer on average,
history up to AS_OF) unless `--reuse` finds it complete; a database any of these scripts
prepared serves the others. Then, untimed: the metrics (`recompute_full` as of AS_OF) and the
predictions (`models_fit`) when the database has none, and two static segments of random
customers (10 % and 1 % of them, a fixed seed), written through `segment_members_change`.

The stages of STAGES, each timed on its own, best of RUNS:

- floor: the bare SQL every portrait must at least run: the members' customer, metrics and
  prediction rows read and counted by one column (FLOOR_SQL);
- base: the portrait of every customer, as the cache is filled (`portrait_base` uncached);
- segment_<size>: `segment_portrait` of each segment, the base cached (what a visit costs);
- rule: `rule_portrait` of a rule matching about a tenth of the customers (the builder's
  live portrait), the base cached.

Reported per stage: seconds, ratio to the floor of the same size of segment (the rule: of the
larger one), the members covered and microseconds per member, next to the target (≤ 2 s for
the larger segment, 100k members at 1M customers).
Results go to stdout and bench/results/portrait.json; progress goes to stderr.
"""

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# bench/ for the sibling script, however this file is loaded (Python adds it only to a script's
# own path).
sys.path.insert(1, str(ROOT / "bench"))
# The project root first: imports resolve to the apps, not to files next to this script.
sys.path.insert(0, str(ROOT))

import segmentation  # noqa: E402 - found through the paths above
from segmentation import AS_OF, execute, fetch_one, say  # noqa: E402

RUNS = 3
# The segments timed, as shares of the customers (100k and 10k members at 1M); the target is
# about the first.
SEGMENT_SHARES = (0.1, 0.01)
TARGET_SECONDS = 2.0
SEGMENT_NAME = "bench portrait {size}"
# The bare reads of a portrait: each member's customer, metrics and prediction row, counted
# by one column (no other dimension, no items).
FLOOR_SQL = """
SELECT c.gender, count(*), count(m.customer_id), count(p.customer_id)
FROM segments_segmentmembership s
JOIN crm_customer c ON c.id = s.customer_id
LEFT JOIN segments_customermetrics m ON m.customer_id = c.id
LEFT JOIN segments_customerprediction p ON p.customer_id = c.id
WHERE s.segment_id = %s
GROUP BY c.gender
"""
# About a tenth of the customers: the recent buyers of skincare, a segment an operator builds.
RULE: dict[str, Any] = {
    "all": [
        {"field": "lifecycle_state", "op": "in", "value": ["new", "active", "reactivated"]},
        {
            "field": "purchased",
            "op": "gte",
            "value": 1,
            "params": {"category": ["护肤"], "within_days": 90},
        },
    ]
}


@dataclass
class Outcome:
    seconds: float
    members: int
    runs: list[float]


@dataclass(frozen=True)
class Stage:
    name: str
    run: Callable[[], Outcome]
    floor: str | None  # the floor stage its ratio is against
    target_seconds: float | None = None


def best_of(call: Callable[[], int]) -> Outcome:
    runs = []
    members = 0
    for _ in range(RUNS):
        started = time.perf_counter()
        members = call()
        runs.append(time.perf_counter() - started)
    return Outcome(seconds=min(runs), members=members, runs=[round(s, 3) for s in runs])


def prepare_in_child(url: str, customers: int, reuse: bool) -> dict[str, Any]:
    """segmentation.prepare_database in a fresh process (the environment is inherited)."""
    import django

    django.setup()
    return segmentation.prepare_database(url, customers, reuse=reuse)


def prepare_scores() -> dict[str, Any]:
    """The metrics and predictions the portrait reads, computed when missing (untimed)."""
    from segments.services.predictions import models_fit
    from segments.services.recompute import recompute_full

    customers = fetch_one("SELECT count(*) FROM crm_customer")[0]
    if fetch_one("SELECT count(*) FROM segments_customermetrics")[0] < customers:
        say("computing the metrics (recompute_full)")
        recompute_full(trigger="bench", as_of=AS_OF)
    if not fetch_one("SELECT count(*) FROM segments_customerprediction")[0]:
        say("fitting the predictive models (models_fit)")
        models_fit(trigger="bench", as_of=AS_OF)
    execute("VACUUM ANALYZE segments_customermetrics, segments_customerprediction")
    return {
        "metrics_rows": fetch_one("SELECT count(*) FROM segments_customermetrics")[0],
        "prediction_rows": fetch_one("SELECT count(*) FROM segments_customerprediction")[0],
    }


def prepare_segments(customers: int) -> dict[int, int]:
    """A static segment of random customers per share (a fixed seed): segment id by size."""
    from segments.models import Segment, SegmentKind
    from segments.services.segments import segment_members_change

    segment_ids = {}
    for share in SEGMENT_SHARES:
        size = round(customers * share)
        segment, _ = Segment.objects.get_or_create(
            name=SEGMENT_NAME.format(size=size), defaults={"kind": SegmentKind.STATIC}
        )
        execute("SELECT setseed(0.42)")
        ids = [
            row
            for (row,) in fetch_rows(
                "SELECT id FROM crm_customer ORDER BY random() LIMIT %s", [size]
            )
        ]
        segment_members_change(segment_id=segment.pk, replace=ids, actor="bench")
        segment_ids[size] = segment.pk
    execute("VACUUM ANALYZE segments_segmentmembership")
    return segment_ids


def fetch_rows(sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def stage_floor(segment_id: int) -> Callable[[], Outcome]:
    def run() -> Outcome:
        return best_of(lambda: sum(row[1] for row in fetch_rows(FLOOR_SQL, [segment_id])))

    return run


def stage_base() -> Outcome:
    from segments.portrait import portrait_base

    return best_of(lambda: portrait_base(fresh=True).counts.size)


def stage_segment(segment_id: int) -> Callable[[], Outcome]:
    def run() -> Outcome:
        from segments.portrait import portrait_base, segment_portrait

        portrait_base()  # cached, as for every visit but the first in five minutes
        return best_of(lambda: segment_portrait(segment_id=segment_id).size)

    return run


def stage_rule() -> Outcome:
    from segments.portrait import portrait_base, rule_portrait

    portrait_base()
    return best_of(lambda: rule_portrait(rule=RULE).size)


def stages(segment_ids: dict[int, int]) -> list[Stage]:
    listed = [Stage("base", stage_base, floor=None)]
    for size, segment_id in segment_ids.items():
        floor = f"floor_{size}"
        target = TARGET_SECONDS if size == max(segment_ids) else None
        listed += [
            Stage(floor, stage_floor(segment_id), floor=None),
            Stage(f"segment_{size}", stage_segment(segment_id), floor=floor, target_seconds=target),
        ]
    listed.append(Stage("rule", stage_rule, floor=f"floor_{max(segment_ids)}"))
    return listed


def run(url: str, customers: int, *, reuse: bool) -> dict[str, Any]:
    # The generation runs in a child process, as in bench/predictive.py.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        setup = child.submit(prepare_in_child, url, customers, reuse).result()
    segmentation.use_database(url)
    setup.update(prepare_scores())
    segment_ids = prepare_segments(customers)
    results: dict[str, dict[str, Any]] = {}
    for stage in stages(segment_ids):
        say(f"{customers:,} customers: stage {stage.name}")
        outcome = stage.run()
        say(f"{customers:,} customers: stage {stage.name} took {outcome.seconds:.3f} s")
        floor = results[stage.floor]["seconds"] if stage.floor else None
        results[stage.name] = {
            "stage": stage.name,
            "seconds": round(outcome.seconds, 3),
            "runs": outcome.runs,
            "ratio_to_floor": round(outcome.seconds / floor, 1) if floor else None,
            "members": outcome.members,
            "us_per_member": round(outcome.seconds * 1e6 / max(outcome.members, 1), 2),
            "target_seconds": stage.target_seconds,
            "target_met": (
                outcome.seconds <= stage.target_seconds if stage.target_seconds else None
            ),
        }
    return {"customers": customers, **setup, "stages": list(results.values())}


def print_result(result: dict[str, Any]) -> None:
    print(
        f"\n{result['customers']:,} customers, {result['orders']:,} orders"
        f" ({result['paid_orders']:,} paid), {result['prediction_rows']:,} predictions,"
        f" database {result['database']}"
    )
    header = (
        f"{'stage':<16} {'seconds':>8} {'× floor':>8} {'members':>10} {'µs/member':>10}  target"
    )
    print(header)
    print("-" * len(header))
    for row in result["stages"]:
        ratio = f"{row['ratio_to_floor']:.1f}" if row["ratio_to_floor"] else "-"
        target = ""
        if row["target_seconds"]:
            verdict = "met" if row["target_met"] else "MISSED"
            target = f"≤ {row['target_seconds']:g} s: {verdict}"
        print(
            f"{row['stage']:<16} {row['seconds']:>8.3f} {ratio:>8} {row['members']:>10,}"
            f" {row['us_per_member']:>10.2f}  {target}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a complete database of that size (any of the benchmarks') instead of"
        " generating it again",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", segmentation.DEFAULT_DATABASE_URL),
        help="server and base name: the database is <name>_seg_<customers>, as segmentation's",
    )
    args = parser.parse_args()
    url = segmentation.database_url_for(args.database_url, args.customers)

    # As segmentation.main sets up Django (the child that prepares the database inherits it).
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ["DJANGO_DEBUG"] = "0"  # DEBUG would keep every query (and its parameters)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    # Wall times on two cores depend on what else runs (1-minute load average).
    load_before = os.getloadavg()[0]
    result = run(url, args.customers, reuse=args.reuse)
    load_after = os.getloadavg()[0]
    print_result(result)
    print(
        f"\nload average before {load_before:.2f}, after {load_after:.2f} ({os.cpu_count()} CPUs)"
    )
    report = {
        "as_of": AS_OF.isoformat(),
        "runs": RUNS,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": load_after},
        "commit": commit,
        **result,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "portrait.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\nwritten to {out / 'portrait.json'}")


if __name__ == "__main__":
    main()
