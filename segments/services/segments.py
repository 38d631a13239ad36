"""Segments: create, change and delete them, materialise the membership of dynamic ones, keep
the lists of static ones, and preview a rule without saving it.

Materialising is one SQL statement per segment: the members the rule selects now, compared
with the stored ones by hashed anti-joins, leavers deleted and newcomers inserted, each with an
entered/exited event, kept members relabelled with the rule version when it changed. A refresh
that finds no change writes nothing but the size snapshot. Refreshes of one segment are
serialised by a row lock on the segment."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import Conflict, NotFound, ValidationFailed
from core.locks import Lock, xact_try_lock
from core.models import AuditAction, AuditEvent
from core.services.audit import audit_change, audit_values
from crm.services.removals import customers_removal_lock
from segments import enqueue
from segments.feeds import Feed, feed_writer_register
from segments.models import (
    ModelName,
    RecomputeKind,
    RecomputeRun,
    RecomputeStatus,
    Segment,
    SegmentKind,
    SegmentSizeSnapshot,
)
from segments.rules import (
    RULE_SESSION_SQL,
    rule_check,
    rule_members_sql,
    rule_preview_sql,
)
from segments.rules.compiler import FROM_CLAUSE, segments_naming, segments_reaching
from segments.selectors import model_fit_in_use

logger = logging.getLogger(__name__)

ERROR_SEGMENT_NOT_FOUND = "segment_not_found"
ERROR_SEGMENT_NAME_TAKEN = "segment_name_taken"
ERROR_NAME_REQUIRED = "segment_name_required"
ERROR_RULE_REQUIRED = "rule_required"
ERROR_NOT_STATIC = "segment_not_static"
ERROR_SEGMENT_REFERENCED = "segment_referenced"
ERROR_CLUSTER_NOT_IN_USE = "cluster_not_in_use"
ERROR_MODELS_BUSY = "models_busy"
PREVIEW_SAMPLE_SIZE = 20
# What the audit trail shows of a segment's changes (its members are not a change of it).
AUDITED_FIELDS = ("name", "kind", "description", "rule", "rule_version", "pinned")


@dataclass(frozen=True)
class RefreshOutcome:
    size: int
    entered: int
    exited: int


@dataclass(frozen=True)
class Preview:
    size: int
    condition_counts: list[int]  # one per top-level condition (empty for a single one)
    sample: list[dict[str, Any]]


def segment_get_or_404(segment_id: int, *, for_update: bool = False) -> Segment:
    segments = Segment.objects.select_for_update() if for_update else Segment.objects.all()
    segment = segments.filter(pk=segment_id).first()
    if segment is None:
        raise NotFound(ERROR_SEGMENT_NOT_FOUND, _("No such segment."))
    return segment


def _check_name(name: str, *, segment_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        message = _("A segment needs a name.")
        raise ValidationFailed(ERROR_NAME_REQUIRED, message, detail={"name": [message]})
    others = Segment.objects.filter(name=name)
    if segment_id is not None:
        others = others.exclude(pk=segment_id)
    if others.exists():
        message = _("A segment named %(name)s exists already.") % {"name": name}
        raise Conflict(ERROR_SEGMENT_NAME_TAKEN, message, detail={"name": [message]})
    return name


def segment_refresh_enqueue(segment_ids: Sequence[int]) -> None:
    """Queue refreshes once the caller's transaction commits."""
    for segment_id in sorted(set(segment_ids)):
        enqueue.segment_refresh(segment_id=segment_id)


@transaction.atomic
def segment_create(
    *, name: str, kind: str, rule: Any = None, description: str = "", actor: str
) -> Segment:
    """Create a segment; a dynamic one is materialised after commit."""
    name = _check_name(name)
    if kind == SegmentKind.DYNAMIC:
        if rule is None:
            raise ValidationFailed(
                ERROR_RULE_REQUIRED,
                _("A dynamic segment needs a rule."),
                detail={"rule": [_("Required.")]},
            )
        rule_check(rule)
    else:
        rule = None
    segment = Segment.objects.create(
        name=name, kind=kind, rule=rule, description=description, created_by=actor
    )
    if kind == SegmentKind.DYNAMIC:
        segment_refresh_enqueue([segment.pk])
    audit_change(
        actor=actor,
        action=AuditAction.CREATE,
        object_type="segment",
        object_id=segment.pk,
        after=audit_values(segment, AUDITED_FIELDS),
    )
    logger.info("segment.created", extra={"segment_id": segment.pk, "actor": actor})
    return segment


@transaction.atomic
def segment_update(
    *,
    segment_id: int,
    name: str | None = None,
    description: str | None = None,
    rule: Any = None,
    pinned: bool | None = None,
    actor: str,
) -> Segment:
    """Change a segment. A new rule (dynamic segments only) gets the next rule version and the
    segment is materialised again after commit."""
    segment = segment_get_or_404(segment_id, for_update=True)
    before = audit_values(segment, AUDITED_FIELDS)
    if pinned is not None:
        segment.pinned = pinned
    if name is not None:
        segment.name = _check_name(name, segment_id=segment.pk)
    if description is not None:
        segment.description = description
    if rule is not None and rule != segment.rule:
        if segment.kind != SegmentKind.DYNAMIC:
            raise ValidationFailed(
                ERROR_NOT_STATIC,
                _("A static segment has no rule."),
                detail={"rule": [_("A static segment has no rule.")]},
            )
        rule_check(rule, segment_id=segment.pk)
        segment.rule = rule
        segment.rule_version += 1
        segment_refresh_enqueue([segment.pk, *(s.pk for s in segments_reaching(segment.pk))])
    segment.updated_at = timezone.now()
    segment.save()
    audit_change(
        actor=actor,
        action=AuditAction.CHANGE,
        object_type="segment",
        object_id=segment.pk,
        before=before,
        after=audit_values(segment, AUDITED_FIELDS),
    )
    logger.info("segment.updated", extra={"segment_id": segment.pk, "actor": actor})
    return segment


@transaction.atomic
def segment_delete(*, segment_id: int, actor: str) -> None:
    """Delete a segment no other segment's rule names."""
    segment = segment_get_or_404(segment_id, for_update=True)
    users = segments_naming(segment.pk)
    if users:
        message = _("Segments %(names)s name this segment in their rules.") % {
            "names": ", ".join(s.name for s in users)
        }
        raise Conflict(ERROR_SEGMENT_REFERENCED, message)
    before = audit_values(segment, AUDITED_FIELDS)
    segment.delete()
    audit_change(
        actor=actor,
        action=AuditAction.DELETE,
        object_type="segment",
        object_id=segment_id,
        before=before,
    )
    logger.info("segment.deleted", extra={"segment_id": segment_id, "actor": actor})


@transaction.atomic
def segments_pin(*, segment_ids: Sequence[int], pinned: bool, actor: str) -> int:
    """Pin the segments to the overview (运营看板), or unpin them; how many changed. Audited
    as one change of each segment that changed (one statement for all of them)."""
    changed_ids = list(
        Segment.objects.filter(pk__in=segment_ids)
        .exclude(pinned=pinned)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    changed = Segment.objects.filter(pk__in=changed_ids).update(
        pinned=pinned, updated_at=timezone.now()
    )
    detail = {"before": {"pinned": not pinned}, "after": {"pinned": pinned}}
    AuditEvent.objects.bulk_create(
        AuditEvent(
            actor=actor,
            action=AuditAction.CHANGE,
            object_type="segment",
            object_id=str(segment_id),
            fields=["pinned"],
            detail=detail,
        )
        for segment_id in changed_ids
    )
    logger.info(
        "segment.pinned" if pinned else "segment.unpinned",
        extra={"segment_ids": sorted(segment_ids), "actor": actor},
    )
    return changed


# The reconciliation of one segment's stored members with `wanted` (a statement selecting
# customer_id), in one statement: a single hashed full join finds who leaves and who comes;
# leavers are deleted by the unique index segment_membership_unique, newcomers inserted in
# customer order (their index entries then land side by side).
_RECONCILE_SQL = """
WITH wanted AS MATERIALIZED ({wanted}),
current AS MATERIALIZED (
    SELECT customer_id FROM segments_segmentmembership WHERE segment_id = %s {scope}
),
diff AS MATERIALIZED (
    SELECT coalesce(w.customer_id, c.customer_id) AS customer_id,
           w.customer_id IS NULL AS is_gone
    FROM wanted w FULL JOIN current c ON c.customer_id = w.customer_id
    WHERE w.customer_id IS NULL OR c.customer_id IS NULL
),
gone AS (
    DELETE FROM segments_segmentmembership m
    WHERE m.segment_id = %s
      AND m.customer_id = ANY(ARRAY(SELECT customer_id FROM diff WHERE is_gone))
    RETURNING m.customer_id
),
added AS (
    INSERT INTO segments_segmentmembership (segment_id, customer_id, rule_version, entered_at)
    SELECT %s, customer_id, %s, now() FROM diff WHERE NOT is_gone ORDER BY customer_id
    RETURNING customer_id
),
events AS (
    INSERT INTO segments_segmentmembershipevent (segment_id, customer_id, kind, rule_version, at)
    SELECT %s, customer_id, 'exited', %s, now() FROM gone
    UNION ALL
    SELECT %s, customer_id, 'entered', %s, now() FROM added WHERE %s
    RETURNING 1
)
SELECT (SELECT count(*) FROM added), (SELECT count(*) FROM gone), (SELECT count(*) FROM events)
"""


def _reconcile(
    segment: Segment,
    wanted_sql: str,
    wanted_params: list[Any],
    *,
    customer_ids: Sequence[int] | None,
    record_entries: bool = True,
) -> tuple[int, int]:
    scope, scope_params = "", []
    if customer_ids is not None:
        scope, scope_params = "AND customer_id = ANY(%s)", [list(customer_ids)]
        # The condition reaches the rule's customer scan (c.id), not only its result.
        wanted_sql = f"SELECT customer_id FROM ({wanted_sql}) s WHERE customer_id = ANY(%s)"  # noqa: S608
        wanted_params = [*wanted_params, list(customer_ids)]
    sql = _RECONCILE_SQL.format(wanted=wanted_sql, scope=scope)
    pk, version = segment.pk, segment.rule_version
    params = [*wanted_params, pk, *scope_params, pk, pk, version, pk, version, pk, version]
    params.append(record_entries)
    # No customer is merged away or deleted while members are written (customer_id has no
    # foreign key): removals wait for this transaction, or it sees them gone.
    customers_removal_lock(exclusive=False)
    # Membership events are a feed read by id: readers stop below these ids until this ends.
    feed_writer_register(Feed.SEGMENT_MEMBERSHIP_EVENTS)
    with connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)  # room for the rule's hashed subplans
        cursor.execute("SET LOCAL jit = off")  # compiling costs more than running it
        cursor.execute(sql, params)
        entered, exited, _events = cursor.fetchone()  # type: ignore[misc]
    return entered, exited


def _relabel(segment: Segment) -> None:
    """Members kept across a change of rule now come from the new rule version. Needed only
    when the rule changed since the last full refresh (the last size snapshot's version)."""
    last_version = (
        segment.size_history.order_by("-at", "-id").values_list("rule_version", flat=True).first()
    )
    if last_version is None or last_version == segment.rule_version:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE segments_segmentmembership SET rule_version = %s "
            "WHERE segment_id = %s AND rule_version <> %s",
            [segment.rule_version, segment.pk, segment.rule_version],
        )


@transaction.atomic
def segment_refresh(
    *, segment_id: int, customer_ids: Sequence[int] | None = None, as_of: datetime | None = None
) -> RefreshOutcome:
    """Materialise a dynamic segment's membership now (all customers, or only `customer_ids`
    after they were recomputed). A full refresh records the size in the size history."""
    segment = segment_get_or_404(segment_id, for_update=True)
    if segment.kind != SegmentKind.DYNAMIC or (
        customer_ids is not None and segment.refreshed_at is None
    ):
        # A segment's first fill covers every customer: its own refresh makes it.
        return RefreshOutcome(size=segment.member_count, entered=0, exited=0)
    members_sql, params = rule_members_sql(segment.rule, as_of=as_of or timezone.now())
    # The first materialisation is the segment's starting list, recorded by its size
    # snapshot and each member's entered_at: the history records changes from then on.
    entered, exited = _reconcile(
        segment,
        members_sql,
        params,
        customer_ids=customer_ids,
        record_entries=segment.refreshed_at is not None,
    )
    if customer_ids is None:
        _relabel(segment)
    segment.member_count = segment.memberships.count()
    segment.refreshed_at = timezone.now()
    segment.refresh_error = ""
    segment.save(update_fields=["member_count", "refreshed_at", "refresh_error"])
    if customer_ids is None:
        _size_record(segment, entered=entered, exited=exited)
    logger.info(
        "segment.refreshed",
        extra={
            "segment_id": segment.pk,
            "size": segment.member_count,
            "entered_count": entered,
            "exited_count": exited,
            "scoped": customer_ids is not None,
        },
    )
    return RefreshOutcome(size=segment.member_count, entered=entered, exited=exited)


def segment_refresh_failed(*, segment_id: int, error: Exception) -> None:
    """Record why a refresh failed; the segment keeps its members."""
    Segment.objects.filter(pk=segment_id).update(
        refresh_error=f"{type(error).__name__}: {error}"[:2000]
    )


def segments_refresh_all(*, customer_ids: Sequence[int] | None = None) -> int:
    """Refresh every dynamic segment, each in its own transaction; a segment whose refresh
    fails keeps its members and records the error. Returns how many were refreshed."""
    refreshed = 0
    for segment_id in Segment.objects.filter(kind=SegmentKind.DYNAMIC).values_list("pk", flat=True):
        try:
            segment_refresh(segment_id=segment_id, customer_ids=customer_ids)
        except Exception as error:
            logger.exception("segment.refresh_failed", extra={"segment_id": segment_id})
            segment_refresh_failed(segment_id=segment_id, error=error)
            continue
        refreshed += 1
    return refreshed


@transaction.atomic
def segment_members_change(
    *,
    segment_id: int,
    add: Sequence[int] = (),
    remove: Sequence[int] = (),
    replace: Sequence[int] | None = None,
    actor: str,
) -> RefreshOutcome:
    """Change a static segment's list: add and remove customers, or replace the whole list.
    Ids must name existing customers (the caller resolves identities). Segments whose rules
    name this one are refreshed after commit."""
    segment = segment_get_or_404(segment_id, for_update=True)
    if segment.kind != SegmentKind.STATIC:
        raise ValidationFailed(
            ERROR_NOT_STATIC, _("Only a static segment's members are set by hand.")
        )
    if replace is not None:
        wanted_sql = "SELECT id AS customer_id FROM crm_customer WHERE id = ANY(%s)"
        outcome = _reconcile(segment, wanted_sql, [sorted(set(replace))], customer_ids=None)
    else:
        wanted_sql = (
            "SELECT id AS customer_id FROM crm_customer WHERE id = ANY(%s) "
            "UNION SELECT customer_id FROM segments_segmentmembership "
            "WHERE segment_id = %s AND customer_id <> ALL(%s)"
        )
        touched = sorted(set(add) | set(remove))
        outcome = _reconcile(
            segment,
            wanted_sql,
            [sorted(set(add) - set(remove)), segment.pk, sorted(set(remove))],
            customer_ids=touched,
        )
    return _list_changed(segment, outcome, actor=actor)


def _size_record(segment: Segment, *, entered: int, exited: int) -> None:
    """Add the segment's size to its history, unless nothing changed since the last point (no
    one entered or left, same size, same rule): the history is a step series of changes, and a
    refresh that finds the same members adds no copy of the previous point."""
    last = segment.size_history.values("size", "rule_version").first()  # newest first
    unchanged = {"size": segment.member_count, "rule_version": segment.rule_version}
    if not entered and not exited and last == unchanged:
        return
    SegmentSizeSnapshot.objects.create(
        segment=segment,
        size=segment.member_count,
        entered=entered,
        exited=exited,
        rule_version=segment.rule_version,
    )


def _list_changed(segment: Segment, outcome: tuple[int, int], *, actor: str) -> RefreshOutcome:
    """After a static segment's list changed: its size, a size snapshot, and a refresh of the
    segments whose rules name it."""
    entered, exited = outcome
    segment.member_count = segment.memberships.count()
    segment.refreshed_at = segment.updated_at = timezone.now()
    segment.save(update_fields=["member_count", "refreshed_at", "updated_at"])
    _size_record(segment, entered=entered, exited=exited)
    if entered or exited:
        segment_refresh_enqueue([s.pk for s in segments_reaching(segment.pk)])
    logger.info(
        "segment.members_changed",
        extra={"segment_id": segment.pk, "actor": actor, "entered_count": entered},
    )
    return RefreshOutcome(size=segment.member_count, entered=entered, exited=exited)


@transaction.atomic
def segment_from_cluster(*, fit_id: int, number: int, name: str, actor: str) -> Segment:
    """A static segment of the customers now in behaviour cluster `number` of the clustering
    customers are scored with: a snapshot, since a refit draws new clusters. Refused while a
    fit or scoring runs (the stored cluster numbers may be changing)."""
    if not xact_try_lock(Lock.PREDICT):
        raise Conflict(
            ERROR_MODELS_BUSY,
            _("The models are being fitted or scored; try again in a few minutes."),
        )
    clustering = model_fit_in_use(ModelName.BEHAVIOUR_CLUSTERS)
    numbers = {c["number"] for c in clustering.parameters.get("clusters", [])} if clustering else ()
    is_scored = clustering is not None and clustering.scored_at is not None
    if clustering is None or clustering.pk != fit_id or not is_scored or number not in numbers:
        raise Conflict(
            ERROR_CLUSTER_NOT_IN_USE,
            _("Only a cluster of the clustering customers are scored with can become a segment."),
        )
    segment = segment_create(
        name=name,
        kind=SegmentKind.STATIC,
        description=_("Behaviour cluster %(number)s of clustering v%(version)s")
        % {"number": number, "version": clustering.version},
        actor=actor,
    )
    # A scan of the predictions (one row per buyer), of customers that still exist.
    wanted_sql = (
        "SELECT p.customer_id FROM segments_customerprediction p "
        "JOIN crm_customer c ON c.id = p.customer_id WHERE p.cluster = %s"
    )
    outcome = _reconcile(segment, wanted_sql, [number], customer_ids=None)
    _list_changed(segment, outcome, actor=actor)
    return segment


def segment_preview(
    *, rule: Any, as_of: datetime | None = None, segment_id: int | None = None
) -> Preview:
    """Size, the count behind each top-level condition and 20 sample customers (the newest)
    of a rule, without saving anything: one scan of the customers, then the sample's rows.
    `segment_id`: the segment the rule is being written for, whose rule must not reach it
    again (checked as saving it would)."""
    rule_check(rule, segment_id=segment_id)
    counts_sql, counts_params = rule_preview_sql(
        rule, as_of=as_of or timezone.now(), sample_size=PREVIEW_SAMPLE_SIZE
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(RULE_SESSION_SQL)  # room for the rule's hashed subplans
        cursor.execute("SET LOCAL jit = off")
        # The scan of every customer and the conditions' subqueries on two cores: the default
        # costs keep this one statement, alone on the server, on one (1.3 s against 1.0 s at 1M).
        cursor.execute("SET LOCAL parallel_setup_cost = 100")
        cursor.execute("SET LOCAL parallel_tuple_cost = 0.01")
        cursor.execute(counts_sql, counts_params)
        size, *condition_counts, sample_ids = cursor.fetchone()  # type: ignore[misc]
        cursor.execute(
            "SELECT c.id, c.display_name, m.lifecycle_state, m.rfm_tier "  # noqa: S608
            f"FROM {FROM_CLAUSE} WHERE c.id = ANY(%s) ORDER BY c.id DESC",
            [sample_ids or []],
        )
        sample = [
            {"id": row[0], "display_name": row[1], "lifecycle_state": row[2], "rfm_tier": row[3]}
            for row in cursor.fetchall()
        ]
    return Preview(size=size, condition_counts=condition_counts, sample=sample)


def segments_refresh_after_run(run: RecomputeRun) -> None:
    """Dynamic segments follow each recomputation: every customer after a full run, only
    the recomputed ones after an incremental run, none after a backfill (recorded apart: the
    live metrics the rules read did not change)."""
    if run.status != RecomputeStatus.SUCCEEDED or run.kind == RecomputeKind.BACKFILL:
        return
    if run.recomputed_customer_ids is None:
        segments_refresh_all()
    elif run.recomputed_customer_ids:
        segments_refresh_all(customer_ids=run.recomputed_customer_ids)
