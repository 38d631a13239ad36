"""Merging customers that turn out to be one person: everything the others own moves to the
survivor, statement by statement (each naming the winner where both hold a row that must stay
unique), plus the steps other apps subscribe; each merge is recorded."""

import logging
from collections.abc import Callable, Collection
from datetime import date, datetime

from django.db import connection, transaction

from core.models import AuditAction
from core.services.audit import audit_record
from crm.models import Customer, CustomerMerge
from crm.services.marks import customers_mark_dirty
from crm.services.removals import customers_removal_lock

logger = logging.getLogger(__name__)

# Each statement moves the merged customer's (%(loser)s) rows to the survivor (%(survivor)s).
# Where both hold a row that must stay unique, the deterministic winner is named in a comment.
_MERGE_STATEMENTS: tuple[tuple[str, str], ...] = (
    (
        "identities",
        "UPDATE crm_identity SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    # Items before their orders: they are found through the loser's orders.
    (
        "order_items",
        """
        UPDATE crm_orderitem i SET customer_id = %(survivor)s
        FROM crm_order o WHERE o.customer_id = %(loser)s AND i.order_id = o.id
        """,
    ),
    ("orders", "UPDATE crm_order SET customer_id = %(survivor)s WHERE customer_id = %(loser)s"),
    (
        "interactions",
        "UPDATE crm_interaction SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    # Exclusive tag groups: the most recently tagged value wins.
    (
        "-",
        """
        DELETE FROM crm_customertag ct USING crm_customertag other
        WHERE ct.customer_id IN (%(survivor)s, %(loser)s)
          AND other.customer_id IN (%(survivor)s, %(loser)s)
          AND ct.customer_id <> other.customer_id
          AND ct.exclusive_group_id = other.exclusive_group_id
          AND ct.tag_id <> other.tag_id
          AND (ct.tagged_at, ct.id) < (other.tagged_at, other.id)
        """,
    ),
    # The same tag on both: the survivor's row (and its time and source) stays.
    (
        "-",
        """
        DELETE FROM crm_customertag l USING crm_customertag s
        WHERE l.customer_id = %(loser)s AND s.customer_id = %(survivor)s AND l.tag_id = s.tag_id
        """,
    ),
    ("tags", "UPDATE crm_customertag SET customer_id = %(survivor)s WHERE customer_id = %(loser)s"),
    # Both in a group now: the stay that began first stays open.
    (
        "-",
        """
        DELETE FROM crm_groupmembership m USING crm_groupmembership o
        WHERE m.customer_id IN (%(survivor)s, %(loser)s)
          AND o.customer_id IN (%(survivor)s, %(loser)s)
          AND m.customer_id <> o.customer_id
          AND m.group_id = o.group_id AND m.left_at IS NULL AND o.left_at IS NULL
          AND (m.joined_at, m.id) > (o.joined_at, o.id)
        """,
    ),
    (
        "group_memberships",
        "UPDATE crm_groupmembership SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    # Consent per channel: the latest decision wins; at the same instant, opting out wins.
    (
        "-",
        """
        DELETE FROM crm_consent c USING crm_consent o
        WHERE c.customer_id IN (%(survivor)s, %(loser)s)
          AND o.customer_id IN (%(survivor)s, %(loser)s)
          AND c.customer_id <> o.customer_id AND c.channel = o.channel
          AND (c.changed_at, c.status = 'opted_out', c.id)
              < (o.changed_at, o.status = 'opted_out', o.id)
        """,
    ),
    ("consents", "UPDATE crm_consent SET customer_id = %(survivor)s WHERE customer_id = %(loser)s"),
    (
        "consent_events",
        "UPDATE crm_consentevent SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    # WeCom relations with one staff member on both: the one observed last stays.
    (
        "-",
        """
        DELETE FROM crm_wecomfollow f USING crm_wecomfollow o
        WHERE f.customer_id IN (%(survivor)s, %(loser)s)
          AND o.customer_id IN (%(survivor)s, %(loser)s)
          AND f.customer_id <> o.customer_id AND f.staff_member_id = o.staff_member_id
          AND (f.observed_at, f.id) < (o.observed_at, o.id)
        """,
    ),
    (
        "wecom_follows",
        "UPDATE crm_wecomfollow SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    # First touch through WeCom: the earlier acquisition stays.
    (
        "-",
        """
        DELETE FROM crm_customeracquisition a USING crm_customeracquisition o
        WHERE a.customer_id IN (%(survivor)s, %(loser)s)
          AND o.customer_id IN (%(survivor)s, %(loser)s)
          AND a.customer_id <> o.customer_id
          AND (a.acquired_at, a.customer_id) > (o.acquired_at, o.customer_id)
        """,
    ),
    (
        "acquisitions",
        """
        UPDATE crm_customeracquisition SET customer_id = %(survivor)s
        WHERE customer_id = %(loser)s
        """,
    ),
    # Tag changes waiting for WeCom, one per (customer, tag): the survivor's stays.
    (
        "-",
        """
        DELETE FROM crm_wecomtagpush l USING crm_wecomtagpush s
        WHERE l.customer_id = %(loser)s AND s.customer_id = %(survivor)s
          AND l.tag_id = s.tag_id AND l.status = 'pending' AND s.status = 'pending'
        """,
    ),
    (
        "wecom_tag_pushes",
        "UPDATE crm_wecomtagpush SET customer_id = %(survivor)s WHERE customer_id = %(loser)s",
    ),
    (
        "earlier_merges",
        "UPDATE crm_customermerge SET survivor_id = %(survivor)s WHERE survivor_id = %(loser)s",
    ),
    # Profile: the survivor's values stay; blanks are filled from the merged customer.
    (
        "-",
        """
        UPDATE crm_customer s SET
            display_name = COALESCE(NULLIF(s.display_name, ''), l.display_name),
            gender = CASE WHEN s.gender = 'unknown' THEN l.gender ELSE s.gender END,
            birthday = COALESCE(s.birthday, l.birthday),
            province = COALESCE(NULLIF(s.province, ''), l.province),
            city = COALESCE(NULLIF(s.city, ''), l.city),
            source_channel = COALESCE(NULLIF(s.source_channel, ''), l.source_channel),
            first_seen_at = LEAST(s.first_seen_at, l.first_seen_at),
            owner_id = COALESCE(s.owner_id, l.owner_id),
            member_level = GREATEST(s.member_level, l.member_level),
            member_points = GREATEST(s.member_points, l.member_points),
            updated_at = now()
        FROM crm_customer l
        WHERE s.id = %(survivor)s AND l.id = %(loser)s
        """,
    ),
)

_MERGED_PROFILE_FIELDS = (
    "display_name",
    "gender",
    "birthday",
    "province",
    "city",
    "source_channel",
    "first_seen_at",
    "owner_id",
    "member_level",
    "member_points",
    "created_at",
)


# Steps other apps add to a merge (campaigns move their deliveries): called in the merge's
# transaction with (survivor id, merged id) before the merged customer is deleted, each
# answering counts of what it moved for the merge record. Subscribed from AppConfig.ready.
_MERGE_SUBSCRIBERS: list[Callable[[int, int], dict[str, int]]] = []


def customers_merge_subscribe(step: Callable[[int, int], dict[str, int]]) -> None:
    if step not in _MERGE_SUBSCRIBERS:
        _MERGE_SUBSCRIBERS.append(step)


@transaction.atomic
def customers_merge(*, customer_ids: Collection[int], actor: str, reason: str) -> int:
    """Merge customers that are one person into the one with the lowest id; return its id.

    Customers are locked in id order. Everything the others own moves to the survivor, each
    merge is recorded with the counts of what moved, and the others are deleted.
    """
    customers_removal_lock(exclusive=True)
    wanted = set(customer_ids)
    while True:
        locked = list(
            Customer.objects.select_for_update()
            .filter(pk__in=wanted)
            .order_by("pk")
            .values(*_MERGED_PROFILE_FIELDS, "pk")
        )
        gone = wanted - {c["pk"] for c in locked}
        if not gone:
            break
        # A concurrent merge removed some of them: follow it to its survivor.
        survivors = dict(
            CustomerMerge.objects.filter(merged_customer_id__in=gone).values_list(
                "merged_customer_id", "survivor_id"
            )
        )
        wanted = (wanted - gone) | set(survivors.values())
    survivor, *losers = locked
    survivor_id = survivor["pk"]
    with connection.cursor() as cursor:
        for loser in losers:
            moved: dict[str, int] = {}
            params = {"survivor": survivor_id, "loser": loser["pk"]}
            for name, statement in _MERGE_STATEMENTS:
                cursor.execute(statement, params)
                if name != "-":
                    moved[name] = cursor.rowcount
            for step in _MERGE_SUBSCRIBERS:
                moved.update(step(survivor_id, loser["pk"]))
            CustomerMerge.objects.create(
                survivor_id=survivor_id,
                merged_customer_id=loser["pk"],
                actor=actor,
                reason=reason,
                moved=moved,
                merged_profile={
                    k: (v.isoformat() if isinstance(v, date | datetime) else v)
                    for k, v in loser.items()
                    if k != "pk"
                },
            )
            Customer.objects.filter(pk=loser["pk"]).delete()
            logger.info(
                "customers.merged",
                extra={"actor": actor, "survivor_id": survivor_id, "merged_id": loser["pk"]},
            )
    if losers:
        audit_record(
            actor=actor,
            action=AuditAction.MERGE,
            object_type="customer",
            object_id=survivor_id,
            customer_id=survivor_id,
            detail={"survivor_id": survivor_id, "absorbed_ids": [c["pk"] for c in losers]},
        )
    customers_mark_dirty([survivor_id])
    return survivor_id
