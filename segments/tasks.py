"""Celery entry points of segmentation: thin wrappers that call one service each. All are safe
to run twice: a recomputation or a scoring writes only what differs, and runs never overlap."""

import logging
from datetime import date

from celery import shared_task

from crm.models import DirtyMark
from segments.models import Segment
from segments.services.recompute import RunSkipped, recompute_customers, recompute_full
from segments.services.retention import retention_after_run, retention_recompute
from segments.services.segments import (
    segment_refresh,
    segment_refresh_failed,
    segments_refresh_after_run,
    segments_refresh_all,
)

logger = logging.getLogger(__name__)


@shared_task(name="segments.recompute_full")
def recompute_full_task(trigger: str = "schedule", as_of: str | None = None) -> int:
    """The nightly run (and on-demand runs from the admin and the API): waits for a run in
    progress rather than skipping the night."""
    run = recompute_full(
        trigger=trigger, as_of=date.fromisoformat(as_of) if as_of else None, wait=True
    )
    segments_refresh_after_run(run)
    retention_after_run(run)
    return run.pk


@shared_task(name="segments.recompute_customers")
def recompute_customers_task(
    customer_ids: list[int], trigger: str = "api", as_of: str | None = None
) -> int:
    """Recompute the named customers (waits for a run in progress)."""
    run = recompute_customers(
        customer_ids=customer_ids,
        trigger=trigger,
        as_of=date.fromisoformat(as_of) if as_of else None,
        wait=True,
    )
    segments_refresh_after_run(run)
    retention_after_run(run)
    return run.pk


@shared_task(name="segments.recompute_dirty")
def recompute_dirty_task() -> int | None:
    """The every-minute sweep of customers marked by ingestion. Skips (and says so) while
    another run holds the lock: the marks wait for the next sweep."""
    if not DirtyMark.objects.exists():
        return None
    try:
        run = recompute_customers(trigger="sweep", wait=False)
    except RunSkipped as skipped:
        logger.info("recompute_dirty.skipped", extra={"run_id": skipped.run.pk})
        return None
    segments_refresh_after_run(run)
    retention_after_run(run)
    return run.pk


@shared_task(name="segments.retention_recompute")
def retention_recompute_task() -> None:
    """The first retention figures, asked for by a page that found none (the nightly run
    computes them after; a copy queued twice computes once)."""
    retention_recompute(if_missing=True)


@shared_task(name="segments.segment_refresh")
def segment_refresh_task(segment_id: int) -> int | None:
    """Materialise one segment now (after a change of its rule, or on demand)."""
    if not Segment.objects.filter(pk=segment_id).exists():
        return None
    try:
        return segment_refresh(segment_id=segment_id).size
    except Exception as error:
        logger.exception("segment_refresh.failed", extra={"segment_id": segment_id})
        segment_refresh_failed(segment_id=segment_id, error=error)
        raise


# The predictive services load scikit-learn and scipy: imported in the tasks that need them,
# so that a web process, which imports this module to enqueue its tasks by name (apps.py),
# does not load them.


@shared_task(name="segments.fit_models")
def fit_models_task(
    trigger: str = "schedule", as_of: str | None = None, wait: bool = True
) -> list[int]:
    """The weekly refit of the predictive models (waits for a fit or scoring in progress) and
    on-demand fits from the admin and the API (`wait` false: skipped, and logged, while one
    runs), followed by a refresh of the dynamic segments when customers were scored."""
    from segments.services.predictions import FitSkipped, models_fit

    try:
        fits = models_fit(
            trigger=trigger, as_of=date.fromisoformat(as_of) if as_of else None, wait=wait
        )
    except FitSkipped:
        logger.info("fit_models.skipped", extra={"trigger": trigger})
        return []
    if any(fit.scored_at is not None for fit in fits):
        segments_refresh_all()
    return [fit.pk for fit in fits]


@shared_task(name="segments.score_models")
def score_models_task() -> int | None:
    """The nightly scoring of every buyer with the latest fitted models (after the nightly
    recomputation), followed by a refresh of the dynamic segments if a score changed."""
    from segments.services.predictions import NothingFitted, predictions_score

    try:
        outcome = predictions_score()
    except NothingFitted:
        logger.info("score_models.nothing_fitted")
        return None
    if outcome.rows_changed:
        segments_refresh_all()
    return outcome.rows_changed
