"""`recompute [--as-of YYYY-MM-DD] [--customers ID ...] [--no-wait]`: recompute metrics, RFM
scores and tiers and lifecycle states now, with a progress bar.

Without `--customers`, every customer (a full run: new quintile breakpoints). With it, only
those customers, with the breakpoints of the last full run. `--as-of` computes as if today were
that date (backfills, audits; not a future one). A run in progress is waited for unless
`--no-wait`. Dynamic segments are refreshed after the run."""

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from segments.models import RecomputeStatus
from segments.services.recompute import RunSkipped, recompute_customers, recompute_full
from segments.services.segments import segments_refresh_after_run


class Command(BaseCommand):
    help = "Recompute customer metrics, RFM scores and tiers, and lifecycle states."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="Compute as if today were this date (YYYY-MM-DD). Default: today.",
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
        if options["as_of"] is not None and options["as_of"] > timezone.localdate():
            raise CommandError("--as-of cannot be in the future.")
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
        segments_refresh_after_run(run)
        self.stdout.write(
            f"Run #{run.pk} ({run.kind}, as of {run.as_of}): {run.customers_processed} customers, "
            f"{run.rows_changed} rows changed, {run.transitions_written} lifecycle transitions, "
            f"{run.duration_seconds:.1f} s."
        )
