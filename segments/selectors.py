"""Segmentation reads: active policies, tier and lifecycle distributions, the transition feed,
recomputation runs, predictive model fits, and what a customer page or the customer lookup
shows. Reads only."""

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from crm.models import ContactWay, Customer, Group, StaffMember, Tag, TagGroup
from crm.selectors.customers import customer_list
from segments.feeds import Feed, feed_end
from segments.models import (
    CustomerMetrics,
    CustomerPrediction,
    LifecycleState,
    LifecycleTransition,
    ModelFit,
    ModelFitStatus,
    ModelName,
    RecomputeKind,
    RecomputeRun,
    RfmTier,
    Segment,
    SegmentMembership,
    SegmentSizeSnapshot,
)
from segments.predictive.descriptions import cluster_description


def _distribution(column: str, key: str, choices: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    """Customers per value of a metrics column, every choice listed in order (one query)."""
    counts = dict(CustomerMetrics.objects.values_list(column).annotate(n=Count("pk")).order_by())
    return _shares(counts, key, choices)


def _shares(
    counts: dict[Any, int], key: str, choices: list[tuple[Any, Any]]
) -> list[dict[str, Any]]:
    """Every choice in order with its count and share of the total."""
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


def backfill_distributions(run: RecomputeRun) -> dict[str, list[dict[str, Any]]] | None:
    """What a backfill run found, in the shape of the live distributions (`rfm_tiers` as
    rfm_tier_distribution, `lifecycle` as lifecycle_distribution); None for a live run. Reads
    `run.backfill_counts` (prefetched by recompute_run_list; at most 54 rows)."""
    if run.kind != RecomputeKind.BACKFILL:
        return None
    tiers: dict[str | None, int] = {}
    states: dict[str, int] = {}
    for count in run.backfill_counts.all():
        tiers[count.rfm_tier] = tiers.get(count.rfm_tier, 0) + count.customers
        states[count.lifecycle_state] = states.get(count.lifecycle_state, 0) + count.customers
    return {
        "rfm_tiers": _shares(tiers, "tier", [*RfmTier.choices, (None, "-")]),
        "lifecycle": _shares(states, "state", LifecycleState.choices),
    }


def lifecycle_transition_list(
    *,
    customer_id: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    recorded_since: datetime | None = None,
    after_id: int | None = None,
) -> QuerySet[LifecycleTransition]:
    """The transition feed; readers page through it by id (ids only grow). It ends at the
    feed's end (one query, made now): no transition with a lower id can appear after a reader
    has moved past it (see `segments.feeds`)."""
    transitions = LifecycleTransition.objects.filter(pk__lte=feed_end(Feed.LIFECYCLE_TRANSITIONS))
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


def customers_moved(*, from_state: str, to_state: str, since: datetime) -> QuerySet[Any]:
    """The ids of the customers who moved from `from_state` to `to_state` at or after
    `since` (as a subquery, for a customers list). Served by the index transition_by_at."""
    return LifecycleTransition.objects.filter(
        from_state=from_state, to_state=to_state, at__gte=since
    ).values("customer_id")


def lifecycle_transition_feed_end() -> int:
    """The id a follower of the transition feed may read up to and move its cursor to."""
    return feed_end(Feed.LIFECYCLE_TRANSITIONS)


def segment_membership_event_feed_end() -> int:
    """The id a follower of the segment membership events may read up to and move to."""
    return feed_end(Feed.SEGMENT_MEMBERSHIP_EVENTS)


def recompute_run_list(*, kind: str | None = None, status: str | None = None) -> QuerySet:
    runs = RecomputeRun.objects.select_related("rfm_policy", "lifecycle_policy").prefetch_related(
        "backfill_counts"
    )
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


def customer_prediction(customer_id: int) -> dict[str, Any] | None:
    """The customer's predictions (None for a customer never scored: one who never paid), with
    the description of its behaviour cluster. One query, two with a cluster."""
    prediction = CustomerPrediction.objects.filter(customer_id=customer_id).first()
    if prediction is None:
        return None
    description = None
    if prediction.cluster is not None:
        clustering = model_fit_in_use(ModelName.BEHAVIOUR_CLUSTERS)
        description = cluster_descriptions(clustering).get(prediction.cluster)
    return {"prediction": prediction, "cluster_description": description}


def customer_scores_for_sidebar(customer_id: int) -> dict[str, Any]:
    """What the customer lookup adds about a customer: its metrics (None until its first
    recomputation), its predictions (None until scored) and its segments. Three queries,
    four for a customer in a behaviour cluster."""
    return {
        "metrics": customer_metrics(customer_id),
        "predictions": customer_prediction(customer_id),
        "segments": list(customer_memberships(customer_id)),
    }


def model_fit_latest(name: str) -> ModelFit | None:
    """The latest fit of model `name` (of any status), if any."""
    return ModelFit.objects.filter(name=name).order_by("-version").defer("artifact").first()


def model_fit_in_use(name: str) -> ModelFit | None:
    """The fit of model `name` customers are scored with: the fitted one as of the latest
    date, the latest version of those (as segments.services.predictions picks it)."""
    return (
        ModelFit.objects.filter(name=name, status=ModelFitStatus.FITTED)
        .order_by("-as_of", "-version")
        .defer("artifact")
        .first()
    )


def model_fits_latest() -> list[dict[str, Any]]:
    """Every model, with its latest fit and the version customers are scored with (two
    queries)."""
    fits = ModelFit.objects.defer("artifact")
    latest = {fit.name: fit for fit in fits.order_by("name", "-version").distinct("name")}
    in_use = {
        fit.name: fit.version
        for fit in fits.filter(status=ModelFitStatus.FITTED)
        .order_by("name", "-as_of", "-version")
        .distinct("name")
    }
    return [
        {
            "name": name,
            "label": str(label),
            "latest": latest.get(name),
            "scoring_version": in_use.get(name),
        }
        for name, label in ModelName.choices
    ]


def model_fit_list(name: str) -> QuerySet[ModelFit]:
    """Every fit of model `name`, newest first."""
    return ModelFit.objects.filter(name=name).defer("artifact").order_by("-version")


def cluster_descriptions(clustering: ModelFit | None) -> dict[int, str]:
    """Cluster number -> its description in words, for a fitted clustering."""
    if clustering is None or clustering.status != ModelFitStatus.FITTED:
        return {}
    return {
        cluster["number"]: cluster_description(cluster["traits"])
        for cluster in clustering.parameters.get("clusters", [])
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


# What a rule may name (segments.rules): the kinds of rows the segment builder picks by name.
# Staff members are named by their WeCom userid (the field `owner`), the others by id.
RULE_REFERENCE_KINDS = ("tag", "tag_group", "group", "segment", "staff", "contact_way")
RULE_REFERENCE_OPTIONS = 20


def rule_reference_options(
    kind: str, *, search: str = "", ids: Sequence[int | str] = ()
) -> list[dict[str, Any]]:
    """Rows of `kind` (one of RULE_REFERENCE_KINDS) a rule can name, as `{"id", "label"}`
    (`id` the value a rule holds): those with the given `ids` (to label a stored rule's
    references), else the first RULE_REFERENCE_OPTIONS whose name contains `search`, by name.
    One query."""
    rows: QuerySet[Any]
    if kind == "staff":
        staff = StaffMember.objects.only("wecom_userid", "name").order_by("name", "wecom_userid")
        if ids:
            staff = staff.filter(wecom_userid__in=ids)
        else:
            if search:
                staff = staff.filter(Q(name__icontains=search) | Q(wecom_userid__icontains=search))
            staff = staff[:RULE_REFERENCE_OPTIONS]
        return [{"id": member.wecom_userid, "label": str(member)} for member in staff]
    if kind == "tag":
        rows = (
            Tag.objects.select_related("group")
            .only("name", "group__name")
            .order_by("group__name", "name")
        )
        if search and not ids:
            rows = rows.filter(Q(name__icontains=search) | Q(group__name__icontains=search))
    else:
        named: dict[str, QuerySet[Any]] = {
            "tag_group": TagGroup.objects.all(),
            "group": Group.objects.all(),
            "segment": Segment.objects.all(),
            "contact_way": ContactWay.objects.all(),
        }
        rows = named[kind].only("name").order_by("name", "pk")
        if search and not ids:
            rows = rows.filter(name__icontains=search)
    rows = rows.filter(pk__in=ids) if ids else rows[:RULE_REFERENCE_OPTIONS]
    if kind == "tag":
        return [{"id": tag.pk, "label": f"{tag.group.name} / {tag.name}"} for tag in rows]
    return [{"id": row.pk, "label": row.name} for row in rows]
