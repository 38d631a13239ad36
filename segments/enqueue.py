"""The tasks segmentation's services queue, each published once the caller's transaction
commits (`core.enqueue`): one typed function per task of `segments.tasks`, by its stable name,
with ids and ISO dates only. Services import this module, never the tasks module."""

from collections.abc import Sequence
from datetime import date

from core.enqueue import enqueue_on_commit


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def recompute_full(*, trigger: str, as_of: date | None = None) -> None:
    """`segments.recompute_full`: recompute everyone (a backfill for an `as_of` in the past)."""
    enqueue_on_commit("segments.recompute_full", trigger=trigger, as_of=_iso(as_of))


def recompute_customers(
    *, customer_ids: Sequence[int], trigger: str, as_of: date | None = None
) -> None:
    """`segments.recompute_customers`: recompute the named customers."""
    enqueue_on_commit(
        "segments.recompute_customers", list(customer_ids), trigger=trigger, as_of=_iso(as_of)
    )


def segment_refresh(*, segment_id: int) -> None:
    """`segments.segment_refresh`: materialise one segment."""
    enqueue_on_commit("segments.segment_refresh", segment_id)


def models_fit(*, trigger: str, as_of: date | None = None, wait: bool) -> None:
    """`segments.fit_models`: fit every model (`wait` false: skipped while a fit runs)."""
    enqueue_on_commit("segments.fit_models", trigger=trigger, as_of=_iso(as_of), wait=wait)


def retention_recompute() -> None:
    """`segments.retention_recompute`: compute the retention figures if none are there yet."""
    enqueue_on_commit("segments.retention_recompute")
