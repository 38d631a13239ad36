"""Identity resolution: the customers that rows of identities name, creating a customer for
identities not yet known and merging the customers one row names (`customers_resolve`), and
the customers named by ids and identities together (`customers_named`).

Resolution is set-based: one lookup query per batch, advisory locks only on identities not yet
known (so that parallel requests naming the same new identity create one customer), one insert
for new customers and one for new identities."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import msgspec
from django.db import connection, transaction
from django.utils.translation import gettext as _

from core.errors import ValidationFailed
from core.locks import Lock, xact_lock_all
from crm.models import Gender
from crm.personal_data import IdentityKey, encrypt, mask
from crm.selectors.customers import customer_ids_by_identities, customer_ids_missing
from crm.services.merges import customers_merge

ERROR_UNKNOWN_CUSTOMERS = "unknown_customers"


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
