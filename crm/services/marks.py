"""Dirty marks: the customers whose scores the recomputation sweep must compute again
(segments.services.recompute reads and clears them)."""

from collections.abc import Iterable

from django.db import connection


def customers_mark_dirty(customer_ids: Iterable[int]) -> None:
    """Mark customers for score recomputation, in the caller's transaction (never lost): one
    inserted row for all of them, touching nothing another batch may hold (see DirtyMark)."""
    ids = sorted(set(customer_ids))
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO crm_dirtymark (customer_ids, marked_at) VALUES (%s::bigint[], now())",
                [ids],
            )
