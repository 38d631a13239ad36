"""Interaction ingestion: append-only, idempotent by (source, idempotency_key).

One batch is one INSERT .. ON CONFLICT DO NOTHING; only customers with a new interaction are
marked for recomputation, so a re-sent batch writes nothing."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec
from django.db import connection, transaction

from crm.inputs import InteractionIn
from crm.services.customers import customers_mark_dirty, customers_resolve
from crm.services.retry import on_deadlock_retry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InteractionsOutcome:
    created: int
    unchanged: int


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
    with connection.cursor() as cursor:
        # Served by the unique index interaction_unique_key (source, idempotency_key).
        cursor.execute(
            """
            INSERT INTO crm_interaction (customer_id, kind, occurred_at, properties, source,
                                         idempotency_key, created_at)
            SELECT customer_id, kind, occurred_at, properties, source, idempotency_key, now()
            FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::jsonb[], %s::text[],
                        %s::text[])
                 AS t(customer_id, kind, occurred_at, properties, source, idempotency_key)
            ON CONFLICT (source, idempotency_key) DO NOTHING
            RETURNING customer_id
            """,
            [
                resolution.customer_ids,
                [i.kind for i in interactions],
                [i.occurred_at for i in interactions],
                [msgspec.json.encode(i.properties).decode() for i in interactions],
                [i.source for i in interactions],
                [i.idempotency_key for i in interactions],
            ],
        )
        created_for = [row[0] for row in cursor.fetchall()]
    customers_mark_dirty(created_for)
    outcome = InteractionsOutcome(
        created=len(created_for), unchanged=len(interactions) - len(created_for)
    )
    logger.info(
        "interactions.ingest",
        extra={"actor": actor, "created_count": outcome.created},
    )
    return outcome
