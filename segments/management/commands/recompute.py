"""`recompute [--as-of YYYY-MM-DD] [--customers ID ...] [--no-wait]`: recompute metrics, RFM
scores and tiers and lifecycle states now, with a progress bar.

Without `--customers`, every customer (a full run: new quintile breakpoints). With it, only
those customers, with the breakpoints of the last full run. `--as-of` computes as if today were
that date (not a future one). A date before that of the latest full run is a backfill: every
customer, its tiers and states recorded apart, the current scores, transitions and segments
untouched (with `--customers` it is refused: segments.services.recompute.recompute_check). A
run in progress is waited for unless `--no-wait`. Dynamic segments are refreshed after a live
run."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation
from tqdm import tqdm

from core.errors import ValidationFailed
from segments.models import RecomputeKind, RecomputeStatus
from segments.selectors import backfill_distributions
from segments.services.recompute import (
    RunSkipped,
    recompute_check,
    recompute_customers,
    recompute_full,
)
from segments.services.retention import retention_after_run
from segments.services.segments import segments_refresh_after_run


class Command(BaseCommand):
    help = "Recompute customer metrics, RFM scores and tiers, and lifecycle states."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="Compute as if today were this date (YYYY-MM-DD). Default: today. A date "
            "before the latest full run is a backfill of every customer, recorded apart.",
        )
        parser.add_argument(
            "--customers",
            type=int,
            nargs="+",
            default=None,
            metavar="ID",
            help="Recompute only these customer ids.",
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Skip instead of waiting for a run in progress."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with translation.override("en"):  # the command speaks English, as its output
                recompute_check(as_of=options["as_of"], everyone=not options["customers"])
        except ValidationFailed as refusal:
            raise CommandError(refusal.message) from None
        bar = None if options["no_progress"] else tqdm(unit="batch", file=self.stderr)
        waited = False

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        def on_wait() -> None:
            nonlocal waited
            if not waited:
                self.stdout.write("Another recomputation is running: waiting for it to end...")
                waited = True

        common: dict[str, Any] = {
            "trigger": "command",
            "as_of": options["as_of"],
            "wait": not options["no_wait"],
            "progress": progress,
            "on_wait": on_wait,
        }
        try:
            if options["customers"]:
                run = recompute_customers(customer_ids=options["customers"], **common)
            else:
                run = recompute_full(**common)
        except RunSkipped as skipped:
            raise CommandError(
                f"Skipped (run #{skipped.run.pk}): another recomputation is running."
            ) from None
        finally:
            if bar is not None:
                bar.close()
        if run.status != RecomputeStatus.SUCCEEDED:
            raise CommandError(f"Run #{run.pk} failed: {run.error}")
        if run.kind == RecomputeKind.BACKFILL:
            self._report_backfill(run)
            return
        segments_refresh_after_run(run)
        retention_after_run(run)
        self.stdout.write(
            f"Run #{run.pk} ({run.kind}, as of {run.as_of}): {run.customers_processed} customers, "
            f"{run.rows_changed} rows changed, {run.transitions_written} lifecycle transitions, "
            f"{run.duration_seconds:.1f} s."
        )

    def _report_backfill(self, run: Any) -> None:
        lifecycle = (backfill_distributions(run) or {}).get("lifecycle", [])
        states = ", ".join(f"{row['state']} {row['count']}" for row in lifecycle if row["count"])
        self.stdout.write(
            f"Run #{run.pk} (backfill, as of {run.as_of}): {run.customers_processed} customers "
            f"recorded apart ({states}); the current scores, lifecycle transitions and "
            "segments are unchanged."
        )
