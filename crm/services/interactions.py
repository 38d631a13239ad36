"""Interaction ingestion: append-only, idempotent by (source, idempotency_key).

One batch is one INSERT .. ON CONFLICT DO NOTHING; only customers with a new interaction are
marked for recomputation, so a re-sent batch writes nothing.

An interaction's `properties` may be revised by its source: a re-send of the same key with a
`source_updated_at` newer than the one stored (or than none) replaces them; an older one is
stale, an equal one or one without a version unchanged. These statements run only for rows
that carry a version and were not inserted. Properties are not scored, so a revision marks
nobody for recomputation."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from django.db import connection, transaction

from core.retry import on_deadlock_retry
from crm.inputs import InteractionIn
from crm.services.identities import customers_resolve
from crm.services.marks import customers_mark_dirty

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InteractionsOutcome:
    created: int
    unchanged: int
    updated: int = 0  # properties replaced by a newer version
    stale: int = 0  # older than the version stored: written nowhere


# Revisions of properties, guarded on the row as it stands once locked: of two concurrent
# revisions the newer stands whatever the order of their commits.
_REVISE_SQL = """
UPDATE crm_interaction x SET properties = i.p, source_updated_at = i.v
FROM unnest(%s::int[], %s::text[], %s::text[], %s::jsonb[], %s::timestamptz[]) AS i(n, s, k, p, v)
WHERE x.source = i.s AND x.idempotency_key = i.k AND x.properties IS DISTINCT FROM i.p
  AND (x.source_updated_at IS NULL OR x.source_updated_at < i.v)
RETURNING i.n
"""
# Then the same properties under a newer version record the version only, and the stale rows
# are counted (this statement's snapshot sees whatever made the revision skip a row).
_VERSIONS_SQL = """
WITH input AS (
    SELECT * FROM unnest(%s::int[], %s::text[], %s::text[], %s::jsonb[], %s::timestamptz[])
        AS i(n, s, k, p, v)
),
recorded AS (
    UPDATE crm_interaction x SET source_updated_at = i.v
    FROM input i
    WHERE x.source = i.s AND x.idempotency_key = i.k AND x.properties = i.p
      AND (x.source_updated_at IS NULL OR x.source_updated_at < i.v)
)
SELECT count(*) FROM input i
JOIN crm_interaction x ON x.source = i.s AND x.idempotency_key = i.k
WHERE x.source_updated_at > i.v
"""


@on_deadlock_retry
@transaction.atomic
def interactions_ingest(
    *, interactions: Sequence[InteractionIn], actor: str
) -> InteractionsOutcome:
    """Record interactions. Each (source, idempotency_key) must appear once in the batch."""
    if not interactions:
        return InteractionsOutcome(created=0, unchanged=0)
    resolution = customers_resolve(
        identity_rows=[i.customer.keys for i in interactions], actor=actor
    )
    properties = [msgspec.json.encode(i.properties).decode() for i in interactions]
    with connection.cursor() as cursor:
        # Served by the unique index interaction_unique_key (source, idempotency_key).
        cursor.execute(
            """
            INSERT INTO crm_interaction (customer_id, kind, occurred_at, properties, source,
                                         idempotency_key, source_updated_at, created_at)
            SELECT customer_id, kind, occurred_at, properties, source, idempotency_key,
                   source_updated_at, now()
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::jsonb[], %s::text[],
                        %s::text[], %s::timestamptz[])
                 AS t(customer_id, kind, occurred_at, properties, source, idempotency_key,
                      source_updated_at)
            ON CONFLICT (source, idempotency_key) DO NOTHING
            RETURNING customer_id, source, idempotency_key
            """,
            [
                resolution.customer_ids,
                [i.kind for i in interactions],
                [i.occurred_at for i in interactions],
                properties,
                [i.source for i in interactions],
                [i.idempotency_key for i in interactions],
                [i.source_updated_at for i in interactions],
            ],
        )
        created = cursor.fetchall()
        created_keys = {(source, key) for _customer_id, source, key in created}
        revisions = [
            n
            for n, i in enumerate(interactions)
            if i.source_updated_at is not None and (i.source, i.idempotency_key) not in created_keys
        ]
        updated = stale = 0

        def columns(positions: list[int]) -> list[list[Any]]:
            return [
                positions,
                [interactions[n].source for n in positions],
                [interactions[n].idempotency_key for n in positions],
                [properties[n] for n in positions],
                [interactions[n].source_updated_at for n in positions],
            ]

        if revisions:
            cursor.execute(_REVISE_SQL, columns(revisions))
            revised = {row[0] for row in cursor.fetchall()}
            updated = len(revised)
            if updated < len(revisions):
                rest = [n for n in revisions if n not in revised]
                cursor.execute(_VERSIONS_SQL, columns(rest))
                stale = cursor.fetchone()[0]
    customers_mark_dirty(customer_id for customer_id, _source, _key in created)
    outcome = InteractionsOutcome(
        created=len(created),
        updated=updated,
        unchanged=len(interactions) - len(created) - updated - stale,
        stale=stale,
    )
    logger.info(
        "interactions.ingest",
        extra={
            "actor": actor,
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "stale_count": outcome.stale,
        },
    )
    return outcome
