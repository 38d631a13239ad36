"""Customer services: resolve identities to customers (creating and merging as needed), upsert
profiles, merge duplicates, and mark customers for recomputation.

Resolution is set-based: one lookup query per batch, advisory locks only on identities not yet
known (so that parallel requests naming the same new identity create one customer), one insert
for new customers and one for new identities."""

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import msgspec
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.errors import NotFound, ValidationFailed
from core.locks import Lock, xact_lock, xact_lock_all
from crm.models import Customer, CustomerMerge, Gender, StaffMember
from crm.personal_data import IdentityKey, encrypt, mask
from crm.selectors.customers import customer_ids_by_identities, customer_ids_missing

logger = logging.getLogger(__name__)

ERROR_CUSTOMER_NOT_FOUND = "customer_not_found"
ERROR_UNKNOWN_CUSTOMERS = "unknown_customers"

# Profile fields an integration may set. `owner` is a WeCom userid.
PROFILE_FIELDS = (
    "display_name",
    "gender",
    "birthday",
    "province",
    "city",
    "source_channel",
    "first_seen_at",
    "owner",
    "member_level",
    "member_points",
)
ProfileValue = str | int | date | datetime | None


@dataclass(frozen=True)
class Resolution:
    customer_ids: list[int]
    created: set[int] = field(default_factory=set)
    survivors: set[int] = field(default_factory=set)  # absorbed another customer


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


_encode = msgspec.json.Encoder().encode


def _identities_lookup(keys: Sequence[tuple[str, str, str]]) -> dict[tuple[str, str, str], int]:
    """Customer ids of the known identities among `keys`. The keys travel as one JSON
    parameter, parsed by PostgreSQL in C, and come back as positions, not values."""
    if not keys:
        return {}
    with connection.cursor() as cursor:
        # Served by the unique index identity_unique (provider, namespace, value_hash).
        cursor.execute(
            """
            SELECT k.position, i.customer_id
            FROM json_to_recordset(%s::json) AS k(position int, p text, n text, h text)
            JOIN crm_identity i ON i.provider = k.p AND i.namespace = k.n AND i.value_hash = k.h
            """,
            [
                _encode(
                    [{"position": n, "p": p, "n": ns, "h": h} for n, (p, ns, h) in enumerate(keys)]
                ).decode()
            ],
        )
        return {keys[position]: customer_id for position, customer_id in cursor.fetchall()}


def _identities_lock(keys: Iterable[tuple[str, str, str]]) -> None:
    """Transaction-scoped advisory locks on identities about to be created, by value hash,
    taken in sorted order so that two batches never deadlock on each other."""
    xact_lock_all(Lock.IDENTITY_CREATION, (value_hash for _, _, value_hash in keys))


def _customers_create(first_seen: Sequence[datetime | None]) -> list[int]:
    """Create one blank customer per entry of `first_seen` (None: now), in one statement;
    their ids in the same order."""
    if not first_seen:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH new AS (
                SELECT nextval(pg_get_serial_sequence('crm_customer', 'id')) AS id, k.position,
                       coalesce(k.t, now()) AS first_seen_at
                FROM json_to_recordset(%s::json) AS k(position int, t timestamptz)
            ),
            created AS (
                INSERT INTO crm_customer (id, display_name, gender, province, city,
                                          source_channel, first_seen_at, member_level,
                                          member_points, created_at, updated_at)
                SELECT id, '', %s, '', '', '', first_seen_at, 0, 0, now(), now() FROM new
            )
            SELECT id FROM new ORDER BY position
            """,
            [
                _encode([{"position": n, "t": t} for n, t in enumerate(first_seen)]).decode(),
                Gender.UNKNOWN.value,
            ],
        )
        return [row[0] for row in cursor.fetchall()]


def _identities_create(rows: Sequence[tuple[int, IdentityKey]]) -> None:
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_identity (customer_id, provider, namespace, value_hash,
                                      value_encrypted, value_masked, is_sensitive, created_at)
            SELECT c, p, n, h, e, m, s, now()
            FROM json_to_recordset(%s::json) AS t(c bigint, p text, n text, h text, e text,
                                                   m text, s boolean)
            """,
            [
                _encode(
                    [
                        {
                            "c": customer_id,
                            "p": key.provider,
                            "n": key.namespace,
                            "h": key.value_hash,
                            "e": encrypt(key.value),
                            "m": mask(key.provider, key.value),
                            "s": key.is_sensitive,
                        }
                        for customer_id, key in rows
                    ]
                ).decode()
            ],
        )


def _earliest(seen_at: Iterable[datetime | None]) -> datetime | None:
    return min((t for t in seen_at if t is not None), default=None)


def _customers_resolve_single(
    identity_rows: Sequence[Sequence[IdentityKey]], seen_at: Sequence[datetime | None]
) -> Resolution:
    """customers_resolve when every row names one identity (the usual order or event batch):
    nothing can merge, so each unknown identity simply becomes a new customer."""
    keys: dict[tuple[str, str, str], IdentityKey] = {}
    seen_of_key: dict[tuple[str, str, str], list[datetime | None]] = {}
    for row, seen in zip(identity_rows, seen_at, strict=True):
        keys[row[0].unique_key] = row[0]
        seen_of_key.setdefault(row[0].unique_key, []).append(seen)
    known = _identities_lookup(list(keys))
    missing = [k for k in keys if k not in known]
    if missing:
        _identities_lock(missing)
        known.update(_identities_lookup(missing))  # another transaction may have won the race
        missing = [k for k in missing if k not in known]
    created_ids = _customers_create([_earliest(seen_of_key[k]) for k in missing])
    known.update(zip(missing, created_ids, strict=True))
    _identities_create([(known[k], keys[k]) for k in missing])
    return Resolution(
        customer_ids=[known[row[0].unique_key] for row in identity_rows],
        created=set(created_ids),
    )


def customers_resolve(
    *,
    identity_rows: Sequence[Sequence[IdentityKey]],
    actor: str,
    seen_at: Sequence[datetime | None] | None = None,
) -> Resolution:
    """The customer of each row of identities, in row order.

    Rows that share an identity are one person; a row whose identities belong to several
    customers merges them (lowest id survives); a row of unknown identities creates a customer.
    `seen_at` (per row, optional: an order's paid time, say) gives new customers their
    first_seen_at; for known customers, seeing them earlier than first thought (a backfill of
    old orders) is reconciled by the recomputation sweep from their orders, set-based, rather
    than here on every batch. Must run inside a transaction (the advisory locks last until it
    ends).
    """
    assert connection.in_atomic_block, "customers_resolve must run in a transaction"
    seen_at = seen_at if seen_at is not None else [None] * len(identity_rows)
    if all(len(row) == 1 for row in identity_rows):
        return _customers_resolve_single(identity_rows, seen_at)
    return _customers_resolve_general(identity_rows, seen_at, actor)


def _customers_resolve_general(
    identity_rows: Sequence[Sequence[IdentityKey]], seen_at: Sequence[datetime | None], actor: str
) -> Resolution:
    key_index: dict[tuple[str, str, str], int] = {}
    keys: list[IdentityKey] = []
    for row in identity_rows:
        for key in row:
            if key.unique_key not in key_index:
                key_index[key.unique_key] = len(keys)
                keys.append(key)

    known = _identities_lookup(list(key_index))
    missing = [k for k in key_index if k not in known]
    if missing:
        _identities_lock(missing)
        known.update(_identities_lookup(missing))  # another transaction may have won the race

    # Rows sharing an identity, or naming one customer, form one component.
    components = _UnionFind(len(keys))
    for row in identity_rows:
        first = key_index[row[0].unique_key]
        for key in row[1:]:
            components.union(first, key_index[key.unique_key])
    customer_key: dict[int, int] = {}
    for unique_key, customer_id in known.items():
        index = key_index[unique_key]
        if customer_id in customer_key:
            components.union(customer_key[customer_id], index)
        else:
            customer_key[customer_id] = index

    customers_of_root: dict[int, set[int]] = {}
    for unique_key, index in key_index.items():
        root = components.find(index)
        bucket = customers_of_root.setdefault(root, set())
        if unique_key in known:
            bucket.add(known[unique_key])

    survivors: set[int] = set()
    customer_of_root: dict[int, int] = {}
    new_roots = [root for root, ids in customers_of_root.items() if not ids]
    for root, ids in customers_of_root.items():
        if len(ids) > 1:
            survivor = customers_merge(
                customer_ids=ids, actor=actor, reason="identities of one upsert"
            )
            survivors.add(survivor)
            customer_of_root[root] = survivor
        elif ids:
            customer_of_root[root] = next(iter(ids))
    seen_of_root: dict[int, list[datetime | None]] = {}
    for row, seen in zip(identity_rows, seen_at, strict=True):
        seen_of_root.setdefault(components.find(key_index[row[0].unique_key]), []).append(seen)
    created_ids = _customers_create([_earliest(seen_of_root[root]) for root in new_roots])
    customer_of_root.update(zip(new_roots, created_ids, strict=True))

    _identities_create(
        [
            (customer_of_root[components.find(key_index[key.unique_key])], key)
            for key in keys
            if key.unique_key not in known
        ]
    )
    customer_ids = [
        customer_of_root[components.find(key_index[row[0].unique_key])] for row in identity_rows
    ]
    return Resolution(customer_ids=customer_ids, created=set(created_ids), survivors=survivors)


def staff_members_ensure(userids: Iterable[str]) -> dict[str, int]:
    """Ids of staff members by WeCom userid, creating the unknown ones."""
    wanted = sorted({u for u in userids if u})
    if not wanted:
        return {}
    StaffMember.objects.bulk_create(
        [StaffMember(wecom_userid=u) for u in wanted], ignore_conflicts=True
    )
    return dict(
        StaffMember.objects.filter(wecom_userid__in=wanted).values_list("wecom_userid", "id")
    )


def _profile_apply(
    customer: Customer, profile: Mapping[str, Any], owner_ids: Mapping[str, int]
) -> list[str]:
    """Set the given profile fields; return the names of the fields that changed."""
    changed: list[str] = []
    for name, value in profile.items():
        if name == "owner":
            attribute, new = "owner_id", owner_ids.get(value) if value else None
        else:
            attribute, new = name, value
        if getattr(customer, attribute) != new:
            setattr(customer, attribute, new)
            changed.append(attribute)
    return changed


@dataclass(frozen=True)
class CustomerInput:
    identities: Sequence[IdentityKey]
    profile: Mapping[str, Any]
    # The source system's update time of this profile (None: unknown, always applied).
    source_updated_at: datetime | None = None


@dataclass
class BulkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # customers whose rows were all older than the profile version stored
    customer_ids: list[int] = field(default_factory=list)


def _profile_version_verdict(
    customer: Customer, version: datetime | None
) -> Literal["apply", "unchanged", "stale"]:
    """Whether a row of this profile version is applied: not when the version applied last
    is newer (stale) or the same (unchanged); always when either is unknown."""
    applied = customer.profile_source_updated_at
    if version is None or applied is None or version > applied:
        return "apply"
    return "stale" if version < applied else "unchanged"


@transaction.atomic
def customers_bulk_upsert(*, rows: Sequence[CustomerInput], actor: str) -> BulkOutcome:
    """Create or update customers named by identities. Profile fields absent from a row are
    left as they are. Rows naming the same person are applied in order.

    A row whose `source_updated_at` is older than the version of the profile applied last
    sets no profile field (stale), one equal to it neither (unchanged); its identities are
    still linked (they are facts, not versioned values). The customers are locked, in id
    order, for the comparison: of two concurrent versions the newer stands."""
    resolution = customers_resolve(identity_rows=[r.identities for r in rows], actor=actor)
    owner_ids = staff_members_ensure(r.profile.get("owner") or "" for r in rows)
    customers = {
        customer.pk: customer
        # NO KEY: a profile write must not wait for the KEY SHARE locks a campaign's call holds
        # on its customers while it posts (campaigns.services.dispatch.consent_hold).
        for customer in Customer.objects.select_for_update(no_key=True)
        .filter(pk__in=set(resolution.customer_ids))
        .order_by("pk")
    }
    changed_fields: set[str] = set()
    changed_ids: set[int] = set()
    versioned_ids: set[int] = set()  # a newer profile version to record
    stale_ids: set[int] = set()
    for row, customer_id in zip(rows, resolution.customer_ids, strict=True):
        customer = customers[customer_id]
        verdict = _profile_version_verdict(customer, row.source_updated_at)
        if verdict == "stale":
            stale_ids.add(customer_id)
        if verdict != "apply":
            continue
        changed = _profile_apply(customer, row.profile, owner_ids)
        if changed:
            changed_fields.update(changed)
            changed_ids.add(customer_id)
        if row.source_updated_at is not None:
            customer.profile_source_updated_at = row.source_updated_at
            versioned_ids.add(customer_id)
    now = timezone.now()
    for customer_id in changed_ids | resolution.created:
        customers[customer_id].updated_at = now
    if changed_ids or versioned_ids:
        fields = [*changed_fields, "updated_at"]
        if versioned_ids:
            fields.append("profile_source_updated_at")
        Customer.objects.bulk_update(
            [customers[i] for i in changed_ids | versioned_ids], fields, batch_size=1000
        )
    outcome = BulkOutcome(customer_ids=resolution.customer_ids)
    for customer_id in set(resolution.customer_ids):
        if customer_id in resolution.created:
            outcome.created += 1
        elif customer_id in changed_ids or customer_id in resolution.survivors:
            outcome.updated += 1
        elif customer_id in stale_ids:
            outcome.stale += 1
        else:
            outcome.unchanged += 1
    logger.info(
        "customers.bulk_upsert",
        extra={
            "actor": actor,
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "stale_count": outcome.stale,
        },
    )
    return outcome


def customer_upsert(
    *, identities: Sequence[IdentityKey], profile: Mapping[str, Any], actor: str
) -> tuple[Customer, bool]:
    """Create or update the one customer these identities name. Returns (customer, created)."""
    outcome = customers_bulk_upsert(rows=[CustomerInput(identities, profile)], actor=actor)
    return Customer.objects.get(pk=outcome.customer_ids[0]), outcome.created == 1


@transaction.atomic
def customer_update(*, customer_id: int, profile: Mapping[str, Any], actor: str) -> Customer:
    # NO KEY, as in customers_bulk_upsert: never behind a campaign's call in flight.
    customer = Customer.objects.select_for_update(no_key=True).filter(pk=customer_id).first()
    if customer is None:
        raise NotFound(ERROR_CUSTOMER_NOT_FOUND, _("No such customer."))
    owner_ids = staff_members_ensure([profile.get("owner") or ""])
    changed = _profile_apply(customer, profile, owner_ids)
    if changed:
        customer.updated_at = timezone.now()
        customer.save(update_fields=[*changed, "updated_at"])
        logger.info("customer.updated", extra={"actor": actor, "customer_id": customer_id})
    return customer


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


def customers_pull_first_seen(*, first_paid: Sequence[tuple[int, datetime]]) -> int:
    """Move first_seen_at back to each customer's earliest paid order where an older order
    arrived later (a backfill): `first_paid` pairs customer ids with those times, as the
    recomputation sweep computes them anyway (ingestion leaves it to the sweep, where it
    would cost a query per batch). Returns how many customers changed."""
    if not first_paid:
        return 0
    ids = [customer_id for customer_id, _at in first_paid]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_customer c SET first_seen_at = k.first_paid_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS k(id, first_paid_at)
            WHERE c.id = k.id AND k.first_paid_at < c.first_seen_at
              AND c.id = ANY(%s)  -- probes of the primary key, not a merge along all of it
            """,
            [ids, [at for _id, at in first_paid], ids],
        )
        return cursor.rowcount


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


# Customer rows are removed only by merges (and by operators deleting customers). Writers of
# rows that point at customers without a foreign-key constraint (orders) hold this lock shared
# while they check that their customers exist and write; removals hold it exclusively. One
# lock, never a row lock: taking row locks on a batch's customers cost as much as the foreign
# key did. Merges are rare and short, so the writers they hold up wait milliseconds.
def customers_removal_lock(*, exclusive: bool) -> None:
    """Take the customer-removal lock until the end of the current transaction."""
    xact_lock(Lock.CUSTOMER_REMOVAL, shared=not exclusive)


@transaction.atomic
def customers_delete(*, customer_ids: Collection[int], actor: str) -> int:
    """Delete customers with everything they own; returns how many were deleted."""
    customers_removal_lock(exclusive=True)
    deleted = Customer.objects.filter(pk__in=list(customer_ids))
    count = deleted.count()
    deleted.delete()
    logger.info("customers.deleted", extra={"actor": actor, "deleted_count": count})
    return count


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
    customers_mark_dirty([survivor_id])
    return survivor_id


@transaction.atomic
def customers_named(
    *,
    customer_ids: Sequence[int],
    identities: Sequence[IdentityKey],
    create_missing: bool,
    actor: str,
) -> tuple[list[int], int]:
    """The customers named by ids and by identities (each naming one customer), as
    (customer ids, how many identities named nobody). Unknown customer ids are refused;
    unknown identities create customers when `create_missing`, else are counted and skipped."""
    ids = list(customer_ids)
    missing = customer_ids_missing(ids)
    if missing:
        message = _("Unknown customer ids: %(ids)s.") % {"ids": ", ".join(map(str, missing))}
        raise ValidationFailed(ERROR_UNKNOWN_CUSTOMERS, message, detail={"customer_ids": [message]})
    if not identities:
        return ids, 0
    if create_missing:
        resolution = customers_resolve(identity_rows=[[k] for k in identities], actor=actor)
        return ids + resolution.customer_ids, 0
    known = customer_ids_by_identities(list(identities))
    found = [known[k.unique_key] for k in identities if k.unique_key in known]
    return ids + found, len(identities) - len(found)
