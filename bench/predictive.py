"""The predictive models (lifetime value, churn risk, behaviour clusters): fitting and scoring
every buyer, against the bare SQL aggregation floor.

    python bench/predictive.py [--customers 1000000] [--reuse] [--database-url URL]

The database is the one bench/segmentation.py prepares, with its own functions:
`<name>_seg_<customers>` on the server of `--database-url` (default BENCH_DATABASE_URL, else
postgres://postgres@127.0.0.1:5432/crm_bench, so crm_bench_seg_1000000), dropped, created,
migrated and filled by `devstack.demo.generate` (seed 7, 10 orders per customer on average, history
up to AS_OF) unless `--reuse` finds it complete; a database either script prepared serves both.
The preparation runs in a child process, so that the peak memory reported is that of the models
alone, not of the data generation. Then the stages of STAGES, in order, each timed on its own:

- floor: segmentation's floor (FLOOR_SQL, the bare per-customer aggregation of paid orders,
  with its parameters and work_mem), best of FLOOR_RUNS;
- fit: `models_fit` as of AS_OF over no earlier fit and no prediction: features (3 dates),
  lifetime value, churn risk, behaviour clusters, then every buyer scored (each row written).
  Each step is timed from the service's progress callbacks;
- score_first: `predictions_score` after every prediction row is deleted (then vacuumed,
  untimed): every row written again;
- score_again: `predictions_score` again on unchanged data (after a VACUUM ANALYZE, untimed,
  as autovacuum would have run by the next night): every row compared, none written;
- score_next_day: `predictions_score` as of the day after AS_OF, the nightly case: every
  buyer's recency moved, so nearly every row is updated.

Reported per stage: seconds, ratio to the floor of the same run, customers scored, rows
changed and the peak resident memory of the process so far, next to the product target; per
fit step, its seconds and ratio to the floor; per model, its status and the figures that say
whether it is any good (churn ROC AUC against the recency-only baseline, the number of
clusters and their silhouette, lifetime value's expected purchases in the holdout period
against the actual ones). Results go to stdout and bench/results/predictive.json; progress
goes to stderr.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# bench/ for the sibling script, however this file is loaded (Python adds it only to a script's
# own path).
sys.path.insert(1, str(ROOT / "bench"))
# The project root first: imports resolve to the apps, not to files next to this script.
sys.path.insert(0, str(ROOT))

import segmentation  # noqa: E402 - found through the paths above
from segmentation import AS_OF, FLOOR_RUNS, ORDERS_PER_CUSTOMER, SEED, Outcome, say  # noqa: E402

if TYPE_CHECKING:
    from segments.models import ModelFit

FIT_TARGET_SECONDS = 300.0
SCORE_TARGET_SECONDS = 60.0
# The code under test, hashed into the report: the working tree may differ from HEAD.
CODE_FILES = ("segments/services/predictions.py", "segments/predictive")


@dataclass(frozen=True)
class Stage:
    """One timed step: `run` prepares what it needs (untimed) and times its own work."""

    name: str
    run: Callable[[int], Outcome]
    target_seconds: float | None = None

    @property
    def target(self) -> str | None:
        return f"≤ {self.target_seconds:g} s" if self.target_seconds is not None else None


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def stage_floor(customers: int) -> Outcome:
    return segmentation.stage_floor(
        segmentation.Bench(customers=customers, rng=np.random.default_rng(SEED))
    )


def model_summary(fit: "ModelFit") -> dict[str, Any]:
    """A fit's status and the quality figures that matter for reading the benchmark."""
    from segments.models import ModelName
    from segments.services.fits import fit_reason

    summary: dict[str, Any] = {
        "name": fit.name,
        "version": fit.version,
        "status": fit.status,
        "reason": fit.reason or None,
        "reason_text": fit_reason(fit) or None,
        "training_rows": fit.training_rows,
    }
    metrics, parameters = fit.metrics or {}, fit.parameters or {}
    if fit.name == ModelName.LIFETIME_VALUE and "holdout" in metrics:
        holdout = metrics["holdout"]
        summary["quality"] = {
            key: holdout.get(key)
            for key in (
                "holdout_days",
                "customers",
                "predicted_purchases",
                "actual_purchases",
                "mean_absolute_error",
                "correlation",
            )
        }
    elif fit.name == ModelName.CHURN_RISK and "model" in metrics:
        summary["quality"] = {
            "roc_auc": metrics["model"]["roc_auc"],
            "recency_baseline_roc_auc": metrics["recency_baseline"]["roc_auc"],
            "logistic_baseline_roc_auc": metrics["logistic_baseline"]["roc_auc"],
            "brier": metrics["model"]["brier"],
            "beats_baseline": metrics.get("beats_baseline"),
            "test_rows": metrics.get("test_rows"),
            "test_churn_rate": metrics.get("test_churn_rate"),
            "iterations": parameters.get("iterations"),
        }
    elif fit.name == ModelName.BEHAVIOUR_CLUSTERS and "k" in parameters:
        silhouettes = metrics.get("silhouette", {})
        summary["quality"] = {
            "k": parameters["k"],
            "silhouette": silhouettes.get(str(parameters["k"])),
            "silhouettes": silhouettes,
            "sizes": [cluster["size"] for cluster in parameters.get("clusters", [])],
        }
    return summary


def stage_fit(customers: int) -> Outcome:
    from segments.services.predictions import models_fit

    # No earlier fit and no prediction: a first fit, whatever an earlier run left (--reuse).
    segmentation.execute("TRUNCATE segments_modelfit, segments_customerprediction")
    marks: list[tuple[str, float]] = []
    started = time.perf_counter()

    def progress(step: str) -> None:
        marks.append((step, time.perf_counter()))
        say(f"{customers:,} customers: fit step {step}")

    fits = models_fit(trigger="bench", as_of=AS_OF, progress=progress)
    seconds = time.perf_counter() - started
    # Each step runs from its callback to the next (the last to the return); "lock" is the time
    # before the first (the advisory lock taken, interrupted fits reset).
    bounds = [("lock", started), *marks]
    ends = [at for _, at in bounds[1:]] + [started + seconds]
    steps = {step: round(end - at, 3) for (step, at), end in zip(bounds, ends, strict=True)}
    scored = segmentation.fetch_one("SELECT count(*) FROM segments_customerprediction")[0]
    return Outcome(
        seconds=seconds,
        customers=scored,
        rows_changed=scored,
        details={"steps": steps, "models": [model_summary(fit) for fit in fits]},
    )


def timed_score(as_of: date = AS_OF) -> Outcome:
    from segments.services.predictions import predictions_score

    started = time.perf_counter()
    outcome = predictions_score(as_of=as_of)
    seconds = time.perf_counter() - started
    return Outcome(
        seconds=seconds,
        customers=outcome.customers,
        rows_changed=outcome.rows_changed,
        # The service's own figure covers scoring and writing; the rest of the wall time is
        # the lock, the latest fits and reading the features.
        details={"service_seconds": outcome.seconds},
    )


def stage_score_first(customers: int) -> Outcome:
    segmentation.execute("DELETE FROM segments_customerprediction")
    segmentation.execute("VACUUM ANALYZE segments_customerprediction")
    return timed_score()


def stage_score_again(customers: int) -> Outcome:
    segmentation.execute("VACUUM ANALYZE segments_customerprediction")
    outcome = timed_score()
    if outcome.rows_changed:
        # Not fatal (the times still stand), but a scoring of unchanged data must write nothing.
        say(f"score_again changed {outcome.rows_changed:,} rows on unchanged data")
    return outcome


def stage_score_next_day(customers: int) -> Outcome:
    """The nightly case: a day later, every buyer's recency moved, so nearly every row is
    updated (no order arrived in between)."""
    segmentation.execute("VACUUM ANALYZE segments_customerprediction")
    return timed_score(AS_OF + timedelta(days=1))


STAGES = [
    Stage("floor", stage_floor),
    Stage("fit", stage_fit, FIT_TARGET_SECONDS),
    Stage("score_first", stage_score_first, SCORE_TARGET_SECONDS),
    Stage("score_again", stage_score_again, SCORE_TARGET_SECONDS),
    Stage("score_next_day", stage_score_next_day, SCORE_TARGET_SECONDS),
]


def prepare_in_child(url: str, customers: int, reuse: bool) -> dict[str, Any]:
    """segmentation.prepare_database in a fresh process (the environment is inherited)."""
    import django

    django.setup()
    return segmentation.prepare_database(url, customers, reuse=reuse)


def run(url: str, customers: int, *, reuse: bool) -> dict[str, Any]:
    # Generating a million customers takes memory of its own: done in a child process, it
    # leaves this process's peak to the models.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as child:
        setup = child.submit(prepare_in_child, url, customers, reuse).result()
    segmentation.use_database(url)
    settings_used = predictive_settings()
    results: list[dict[str, Any]] = []
    floor_seconds = 0.0
    for stage in STAGES:
        say(f"{customers:,} customers: stage {stage.name}")
        outcome = stage.run(customers)
        if stage.name == "floor":
            floor_seconds = outcome.seconds
        say(f"{customers:,} customers: stage {stage.name} took {outcome.seconds:.3f} s")
        limit = stage.target_seconds
        results.append(
            {
                "stage": stage.name,
                "seconds": round(outcome.seconds, 3),
                "ratio_to_floor": round(outcome.seconds / floor_seconds, 2),
                "customers": outcome.customers,
                "rows_changed": outcome.rows_changed,
                "peak_rss_mb": peak_rss_mb(),
                "target": stage.target,
                "target_seconds": limit,
                "target_met": outcome.seconds <= limit if limit is not None else None,
                **outcome.details,
            }
        )
    fit = next(row for row in results if row["stage"] == "fit")
    fit["steps"] = [
        {
            "step": step,
            "seconds": seconds,
            "ratio_to_floor": round(seconds / floor_seconds, 2),
        }
        for step, seconds in fit["steps"].items()
    ]
    return {
        "customers": customers,
        **setup,
        "settings": settings_used,
        "stages": results,
        "peak_rss_mb": peak_rss_mb(),
    }


def predictive_settings() -> dict[str, Any]:
    """The settings that decide how much work a fit does."""
    from django.conf import settings

    return {
        name: getattr(settings, name) for name in dir(settings) if name.startswith("PREDICTIVE_")
    }


def print_result(result: dict[str, Any]) -> None:
    def count(value: int | None) -> str:
        return f"{value:,}" if value is not None else "-"

    print(
        f"\n{result['customers']:,} customers, {result['orders']:,} orders"
        f" ({result['paid_orders']:,} paid), database {result['database']}"
    )
    header = (
        f"{'stage':<12} {'seconds':>8} {'× floor':>8} {'customers':>10} {'rows changed':>13}"
        f" {'peak RSS MB':>12}  target"
    )
    print(header)
    print("-" * len(header))
    for row in result["stages"]:
        target = ""
        if row["target"]:
            target = f"{row['target']}: {'met' if row['target_met'] else 'MISSED'}"
        print(
            f"{row['stage']:<12} {row['seconds']:>8.3f} {row['ratio_to_floor']:>8.2f}"
            f" {count(row['customers']):>10} {count(row['rows_changed']):>13}"
            f" {row['peak_rss_mb']:>12,.0f}  {target}"
        )
    fit = next(row for row in result["stages"] if row["stage"] == "fit")
    print(f"\n{'fit step':<20} {'seconds':>8} {'× floor':>8}")
    print("-" * 38)
    for step in fit["steps"]:
        print(f"{step['step']:<20} {step['seconds']:>8.3f} {step['ratio_to_floor']:>8.2f}")
    print()
    for model in fit["models"]:
        line = f"{model['name']} v{model['version']}: {model['status']}"
        if model["reason"]:
            line += f" ({model['reason']}: {model['reason_text']})"
        line += f", {model['training_rows']:,} training rows"
        quality = model.get("quality")
        if quality and model["name"] == "lifetime_value":
            line += (
                f"; holdout {quality['holdout_days']} days, {quality['customers']:,} customers:"
                f" predicted {quality['predicted_purchases']:,} purchases,"
                f" actual {quality['actual_purchases']:,}, correlation {quality['correlation']}"
            )
        elif quality and model["name"] == "churn_risk":
            line += (
                f"; ROC AUC {quality['roc_auc']} vs recency baseline"
                f" {quality['recency_baseline_roc_auc']}"
                f" (logistic {quality['logistic_baseline_roc_auc']}), Brier {quality['brier']}"
            )
        elif quality and model["name"] == "behaviour_clusters":
            line += f"; k = {quality['k']}, silhouette {quality['silhouette']}"
        print(line)


def code_identity() -> dict[str, str]:
    digest = hashlib.sha256()
    for name in CODE_FILES:
        path = ROOT / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(ROOT).as_posix().encode())
            digest.update(file.read_bytes())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {"commit": commit, "predictive_sha256": digest.hexdigest()[:12]}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a complete database of that size (either benchmark's) instead of"
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
    # The services log every batch and fit at INFO; the figures here say more.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()

    code = code_identity()
    # What else the machine was running (1, 5 and 15-minute load averages): wall times on two
    # cores depend on it.
    load_before = os.getloadavg()
    result = run(url, args.customers, reuse=args.reuse)
    load_after = os.getloadavg()
    print_result(result)
    print(
        f"\nload average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
        f" (1 minute; {os.cpu_count()} CPUs)"
    )
    report: dict[str, Any] = {
        "as_of": AS_OF.isoformat(),
        "seed": SEED,
        "orders_per_customer": ORDERS_PER_CUSTOMER,
        "floor_runs": FLOOR_RUNS,
        "cpus": os.cpu_count(),
        "load_average": {"before": load_before, "after": load_after},
        "code": code,
        **result,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "predictive.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False, default=str)
    )
    print(f"\nwritten to {out / 'predictive.json'}")


if __name__ == "__main__":
    main()
