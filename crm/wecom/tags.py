"""Tags both ways between WeCom's corp tags and ours. From WeCom: the tags a customer holds
there (the union over their open relations of each staff member's tags) are held here with
source `wecom`, in tag groups mirrored from WeCom (`TagGroup.is_wecom_mirrored`)."""

import logging
from collections.abc import Sequence

from django.db import connection, transaction

logger = logging.getLogger(__name__)


@transaction.atomic
def customer_wecom_tags_apply(*, customer_ids: Sequence[int], actor: str) -> dict[str, int]:
    """Make the customers' `wecom` tag holdings match their open WeCom relations' tags, in
    mirrored groups. Holdings of other sources are left alone (a tag given here and not yet
    pushed stays); a tag of an exclusive group already held another way is not doubled.
    Returns {"tags_given": n, "tags_taken": n}; a second call changes nothing."""
    customers = sorted(set(customer_ids))
    if not customers:
        return {"tags_given": 0, "tags_taken": 0}
    wanted = """
        SELECT DISTINCT f.customer_id, t.id AS tag_id,
               CASE WHEN g.is_exclusive THEN g.id END AS exclusive_group_id
        FROM crm_wecomfollow f
        CROSS JOIN LATERAL unnest(f.wecom_tag_ids) AS w(wecom_tag_id)
        JOIN crm_tag t ON t.wecom_tag_id = w.wecom_tag_id
        JOIN crm_taggroup g ON g.id = t.group_id AND g.is_wecom_mirrored
        WHERE f.customer_id = ANY(%(customers)s::bigint[]) AND f.deleted_at IS NULL
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM crm_customertag ct
            WHERE ct.customer_id = ANY(%(customers)s::bigint[]) AND ct.source = 'wecom'
              AND NOT EXISTS (
                SELECT 1 FROM ({wanted}) AS w
                WHERE w.customer_id = ct.customer_id AND w.tag_id = ct.tag_id
              )
            """,  # noqa: S608 (`wanted` is a constant of this function)
            {"customers": customers},
        )
        taken = cursor.rowcount
        cursor.execute(
            f"""
            INSERT INTO crm_customertag (customer_id, tag_id, exclusive_group_id, source,
                                         tagged_at)
            SELECT customer_id, tag_id, exclusive_group_id, 'wecom', now()
            FROM ({wanted}) AS w
            ORDER BY customer_id, tag_id
            ON CONFLICT DO NOTHING
            """,  # noqa: S608
            {"customers": customers},
        )
        given = cursor.rowcount
    if given or taken:
        logger.info(
            "wecom.tags_applied",
            extra={"actor": actor, "given_count": given, "taken_count": taken},
        )
    return {"tags_given": given, "tags_taken": taken}
