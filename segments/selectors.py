"""Segmentation reads: active policies, tier and lifecycle distributions, the transition feed,
recomputation runs, and what a customer page or the customer lookup shows. Reads only."""

from datetime import date, datetime
from typing import Any

from django.db.models import Count, QuerySet
from django.utils import timezone

from crm.models import Customer
from crm.selectors.customers import customer_list
from segments.models import (
    CustomerMetrics,
    LifecycleState,
    LifecycleTransition,
    RecomputeRun,
    RfmTier,
    Segment,
    SegmentMembership,
    SegmentSizeSnapshot,
)


def _distribution(column: str, key: str, choices: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Customers per value of a metrics column, every choice listed in order (one query)."""
    counts = dict(CustomerMetrics.objects.values_list(column).annotate(n=Count("pk")).order_by())
    total = sum(counts.values())
    return [
        {
            key: value,
            "label": str(label),
            "count": counts.get(value, 0),
            "share": round(counts.get(value, 0) / total, 4) if total else 0.0,
        }
        for value, label in choices
    ]


def rfm_tier_distribution() -> list[dict[str, Any]]:
    """Customers per RFM tier; `tier: None` counts those without a paid order in the window."""
    return _distribution("rfm_tier", "tier", [*RfmTier.choices, (None, "-")])


def lifecycle_distribution() -> list[dict[str, Any]]:
    """Customers per lifecycle state."""
    return _distribution("lifecycle_state", "state", LifecycleState.choices)


def lifecycle_transition_list(
    *,
    customer_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    recorded_since: datetime | None = None,
    after_id: int | None = None,
) -> QuerySet[LifecycleTransition]:
    """The transition feed; readers page through it by id (ids only grow)."""
    transitions = LifecycleTransition.objects.all()
    if after_id is not None:
        transitions = transitions.filter(pk__gt=after_id)
    if customer_id is not None:
        transitions = transitions.filter(customer_id=customer_id)
    if from_state:
        transitions = transitions.filter(from_state=from_state)
    if to_state:
        transitions = transitions.filter(to_state=to_state)
    if recorded_since is not None:
        transitions = transitions.filter(recorded_at__gte=recorded_since)
    return transitions


def recompute_run_list(*, kind: str | None = None, status: str | None = None) -> QuerySet:
    runs = RecomputeRun.objects.select_related("rfm_policy", "lifecycle_policy")
    if kind:
        runs = runs.filter(kind=kind)
    if status:
        runs = runs.filter(status=status)
    return runs


def days_since(moment: datetime | None, *, today: date | None = None) -> int | None:
    """Business days from `moment` to today (both in the business time zone)."""
    if moment is None:
        return None
    today = today or timezone.localdate()
    return (today - timezone.localtime(moment).date()).days


def customer_metrics(customer_id: int) -> CustomerMetrics | None:
    return CustomerMetrics.objects.filter(customer_id=customer_id).first()


def customer_scores_for_sidebar(customer_id: int) -> dict[str, Any]:
    """What the customer lookup adds about a customer: its metrics (None until its first
    recomputation) and its segments. Two queries."""
    return {
        "metrics": customer_metrics(customer_id),
        "segments": list(customer_memberships(customer_id)),
    }


def segment_list(*, kind: str | None = None, search: str | None = None) -> QuerySet[Segment]:
    segments = Segment.objects.all()
    if kind:
        segments = segments.filter(kind=kind)
    if search:
        segments = segments.filter(name__icontains=search)
    return segments


def segment_members(segment_id: int) -> QuerySet[Customer]:
    """The members of a segment as customers with identities (two queries a page; the
    membership subquery is served by segment_membership_unique)."""
    return customer_list().filter(
        pk__in=SegmentMembership.objects.filter(segment_id=segment_id).values("customer_id")
    )


def segment_size_history(segment_id: int) -> QuerySet[SegmentSizeSnapshot]:
    return SegmentSizeSnapshot.objects.filter(segment_id=segment_id)


def customer_memberships(customer_id: int) -> QuerySet[SegmentMembership]:
    """A customer's segments with when it entered each (index membership_by_customer_seg)."""
    return (
        SegmentMembership.objects.filter(customer_id=customer_id)
        .select_related("segment")
        .order_by("segment__name")
    )
