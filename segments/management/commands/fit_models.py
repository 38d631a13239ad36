"""`fit_models [--as-of YYYY-MM-DD] [--no-wait] [--if-never-fitted]`: fit the predictive models
(lifetime value, churn risk, behaviour clusters) now, score every buyer with them and refresh
the dynamic segments, saying what each step is doing.

`--as-of` fits as of the end of that day (default: yesterday, the last complete day; not a
future one). A date before that of the fits in use is a backfill or an audit: its fits are
recorded, but customers are not scored with them. A fit or scoring in progress is waited
for unless `--no-wait`."""

import time
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from segments.models import ModelFit, ModelFitStatus
from segments.services.fits import fit_reason
from segments.services.predictions import FitSkipped, models_fit
from segments.services.segments import segments_refresh_all

STEPS = {
    "features": "Reading every buyer's behaviour",
    "lifetime_value": "Fitting lifetime value (BG/NBD + Gamma-Gamma)",
    "churn_risk": "Fitting churn risk (gradient boosting, with its baselines)",
    "behaviour_clusters": "Fitting behaviour clusters (K-means)",
    "scores": "Scoring every buyer",
}


class Command(BaseCommand):
    help = "Fit the predictive models, score every buyer and refresh the dynamic segments."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help=(
                "Fit as of the end of this day (YYYY-MM-DD). Default: yesterday, the last "
                "complete day. A date before that of the fits in use is a backfill: recorded, "
                "never used for scoring."
            ),
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Skip instead of waiting for a fit in progress."
        )
        parser.add_argument(
            "--if-never-fitted",
            action="store_true",
            help="Do nothing if any model has been fitted (or tried) before.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["as_of"] is not None and options["as_of"] > timezone.localdate():
            raise CommandError("--as-of cannot be in the future.")
        if options["if_never_fitted"] and ModelFit.objects.exists():
            self.stdout.write("The predictive models have been fitted before: nothing to do.")
            return
        started = time.monotonic()

        def progress(step: str) -> None:
            elapsed = time.monotonic() - started
            self.stdout.write(f"[{elapsed:6.1f} s] {STEPS.get(step, step)}...")

        def on_wait() -> None:
            self.stdout.write("Another fit or scoring is running: waiting for it to end...")

        try:
            fits = models_fit(
                trigger="command",
                as_of=options["as_of"],
                wait=not options["no_wait"],
                progress=progress,
                on_wait=on_wait,
            )
        except FitSkipped:
            raise CommandError("Skipped: another fit or scoring is running.") from None
        if any(fit.scored_at is not None for fit in fits):
            progress("Refreshing the dynamic segments")
            segments_refresh_all()
        else:
            self.stdout.write("Customers were not scored (a backfill, or nothing fitted).")
        for fit in fits:
            line = f"{fit.name} v{fit.version}: {fit.status}"
            if fit.status == ModelFitStatus.FITTED:
                line += f" on {fit.training_rows} customers"
            else:
                line += f" ({fit_reason(fit)})"
            self.stdout.write(line)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f} s.")
