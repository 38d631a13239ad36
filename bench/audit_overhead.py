"""What counting API key use costs each request: `api_key_authenticate` timed without the count
(as before the audit trail) and with it, against the floor of a bare `SELECT 1` round trip in
the same run.

    python bench/audit_overhead.py [--calls 2000] [--rounds 5] [--database-url URL]
                                   [--cache-url redis://127.0.0.1:6379/13]

The database (default BENCH_DATABASE_URL, else DATABASE_URL) must be migrated; the script
creates one API key there (named bench-audit-overhead) and revokes it at the end. Without
`--cache-url` the counts go to the PostgreSQL cache table (the default setup); with it, to
Redis. Each stage is timed `--rounds` times and the best round kept (the least disturbed by
the machine's other work); results are microseconds per call and the ratio to the floor.
Results go to stdout and bench/results/audit_overhead.json.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _best_per_call(work: Callable[[], object], *, calls: int, rounds: int) -> float:
    """Microseconds per call of the best of `rounds` rounds of `calls` calls."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--cache-url", default="")
    args = parser.parse_args()

    database_url = args.database_url or os.environ.get("BENCH_DATABASE_URL")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    if args.cache_url:
        os.environ["CACHE_URL"] = args.cache_url
    else:
        os.environ.pop("CACHE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

    import django

    django.setup()

    from django.core.cache import cache
    from django.db import connection

    import core.services.api_keys as api_keys
    from core.services.api_key_usage import api_key_usage_fold

    api_key, raw_key = api_keys.api_key_create(
        name="bench-audit-overhead", scopes=["orders:read"], actor="command"
    )
    counted = api_keys.api_key_use_count

    def floor() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def authenticate() -> None:
        assert api_keys.api_key_authenticate(raw_key) is not None

    def without_count(**_kwargs: object) -> None:
        return None

    try:
        authenticate()  # warm: the key's row, the connection, the cache's first add
        results: dict[str, float] = {}
        for stage in ("floor", "before", "after", "floor_again"):
            if stage.startswith("floor"):
                results[stage] = _best_per_call(floor, calls=args.calls, rounds=args.rounds)
                continue
            api_keys.api_key_use_count = without_count if stage == "before" else counted  # type: ignore[assignment]
            results[stage] = _best_per_call(authenticate, calls=args.calls, rounds=args.rounds)
        api_keys.api_key_use_count = counted
        fold_started = time.perf_counter()
        folded = api_key_usage_fold(now=django.utils.timezone.now())
        fold_ms = (time.perf_counter() - fold_started) * 1e3
    finally:
        api_keys.api_key_use_count = counted
        api_keys.api_key_revoke(prefix=api_key.prefix, actor="command")

    floor_us = min(results["floor"], results["floor_again"])
    report = {
        "cache": "redis" if args.cache_url else "postgres cache table",
        "calls": args.calls,
        "rounds": args.rounds,
        "floor_select_1_us": round(floor_us, 1),
        "authenticate_before_us": round(results["before"], 1),
        "authenticate_after_us": round(results["after"], 1),
        "before_to_floor": round(results["before"] / floor_us, 2),
        "after_to_floor": round(results["after"] / floor_us, 2),
        "count_cost_us": round(results["after"] - results["before"], 1),
        "fold_rows": folded,
        "fold_ms": round(fold_ms, 2),
        "cache_backend": type(cache).__name__,
    }
    print(json.dumps(report, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "audit_overhead.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
