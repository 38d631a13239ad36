"""Order ingestion: bulk upsert idempotent by (source, external_id).

One batch is one transaction of a fixed number of statements whatever its size: customers are
resolved from the rows' identities in one pass (in a short transaction of its own), new orders
and their items are inserted by one statement, orders whose content changed are updated and
their items replaced, and the customers concerned are marked for recomputation. A re-sent
unchanged batch therefore writes no order, no item and marks nobody.

Versions arrive out of order (shops and pipelines resend, webhooks overtake each other), so
an update is guarded in its WHERE clause, evaluated by PostgreSQL on the row as it stands once
locked (so the newer of two concurrent versions wins whatever the order of their commits):

- both the stored and the incoming version carry `source_updated_at`: only a newer one is
  applied; an older one is stale and written nowhere (not its items either, no customer is
  marked), an equal one is unchanged;
- either lacks it: the other fields update as before, but the refunded amount never decreases
  (up to the new total) and the status never moves back: partially refunded never returns to
  paid, refunded or cancelled never return to paid or partially refunded.
"""

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.db import connection, transaction
from django.utils.translation import gettext

from core.errors import Conflict
from core.retry import on_deadlock_retry
from crm.inputs import OrderIn
from crm.models import PURCHASE_STATUSES
from crm.services.identities import customers_resolve
from crm.services.marks import customers_mark_dirty
from crm.services.removals import customers_removal_lock

logger = logging.getLogger(__name__)


@dataclass
class OrdersOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0  # older than the version stored: written nowhere
    customer_ids: list[int] = field(default_factory=list)  # of each row, in row order


_encode = msgspec.json.Encoder(decimal_format="string").encode

# Called after the commit of each batch that wrote orders, with the ids of the customers whose
# orders changed. Other apps subscribe from their AppConfig.ready (campaign attribution does);
# this module knows nothing of them.
_ORDERS_CHANGED_SUBSCRIBERS: list[Callable[[list[int]], None]] = []


def orders_changed_subscribe(callback: Callable[[list[int]], None]) -> None:
    if callback not in _ORDERS_CHANGED_SUBSCRIBERS:
        _ORDERS_CHANGED_SUBSCRIBERS.append(callback)


def _orders_changed_after_commit(customer_ids: set[int]) -> None:
    if not customer_ids or not _ORDERS_CHANGED_SUBSCRIBERS:
        return
    ids = sorted(customer_ids)
    for callback in _ORDERS_CHANGED_SUBSCRIBERS:
        transaction.on_commit(functools.partial(callback, ids))


_VERSION_FIELD = b',"source_updated_at":'


def order_content_hash(order: OrderIn) -> str:
    """Digest of an order as sent (customer identities and items included), so that an
    unchanged re-send writes nothing and naming another customer moves the order.

    The version (`source_updated_at`, the struct's last field) is not content: it is cut off
    the encoding, which leaves the digest of an order exactly what it was before versions
    existed. The cut is unambiguous: inside a JSON string every quote is escaped."""
    encoded = _encode(order)
    content = encoded[: encoded.rfind(_VERSION_FIELD)] + b"}"
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


# The batch travels as one JSON parameter unpacked by json_to_recordset: PostgreSQL parses it in
# C, where binding a dozen arrays of a thousand values costs Python milliseconds per batch.
RESOLVE_ATTEMPTS = 3

_CUSTOMERS_COUNT_SQL = "SELECT count(*) FROM crm_customer WHERE id = ANY(%s::bigint[])"


class CustomerGone(Conflict):
    """A customer resolved for the batch was merged away before its orders were written
    (answered 409 if it keeps happening: the caller sends the batch again)."""

    def __init__(self) -> None:
        super().__init__(
            "conflict_retry", gettext("Customers of this batch were merged meanwhile; retry.")
        )


_INPUT = """
    SELECT * FROM json_to_recordset(%(orders)s::json) AS t(
        n int, c bigint, s text, e text, st text, ta numeric, ra numeric, cu text,
        pa timestamptz, ch text, so text, h text, v timestamptz)
"""
_ITEMS_INPUT = """
    SELECT * FROM json_to_recordset(%(items)s::json) AS t(
        n int, l smallint, s text, nm text, ca text, q integer, p numeric)
"""

# What an order's items copy into purchased_at (see OrderItem), in RETURNING of crm_order.
_PURCHASED_AT = "CASE WHEN status IN ({}) THEN paid_at END".format(
    ", ".join(f"'{status}'" for status in PURCHASE_STATUSES)
)

# New orders first, with their items, in one statement: the insert is served by the unique
# index order_unique_external, and `n` (the row's position in the batch) ties each item to the
# id of its order without a round trip.
_INSERT_SQL = f"""
WITH input AS ({_INPUT}),
inserted AS (
    INSERT INTO crm_order (customer_id, source, external_id, status, total_amount,
                           refunded_amount, currency, paid_at, channel, store, content_hash,
                           source_updated_at, created_at, updated_at)
    SELECT c, s, e, st, ta, ra, cu, pa, ch, so, h, v, now(), now() FROM input
    ON CONFLICT (source, external_id) DO NOTHING
    RETURNING id, source, external_id, customer_id, {_PURCHASED_AT} AS purchased_at
),
written AS (
    SELECT i.n, ins.id, ins.customer_id, ins.purchased_at
    FROM inserted ins JOIN input i ON i.s = ins.source AND i.e = ins.external_id
),
items AS (
    INSERT INTO crm_orderitem (order_id, customer_id, line_no, sku, name, category, quantity,
                               unit_price, purchased_at)
    SELECT w.id, w.customer_id, it.l, it.s, it.nm, it.ca, it.q, it.p, w.purchased_at
    FROM written w JOIN ({_ITEMS_INPUT}) AS it ON it.n = w.n
)
SELECT n, customer_id FROM written
"""  # noqa: S608 - composed of constants only

# How far an order's status has gone, for updates that carry no version on one side: the
# status never moves to a lower rank (refunded and cancelled are both final).
_STATUS_RANK = "CASE {} WHEN 'paid' THEN 0 WHEN 'partially_refunded' THEN 1 ELSE 2 END"
# Both sides carry a version (the WHERE clause lets only a newer incoming one through).
_VERSIONED = "(i.v IS NOT NULL AND o.source_updated_at IS NOT NULL)"

# Then the orders that exist already, where their content changed and the incoming version is
# not older than the stored one. `previous` reads the snapshot before the update, so it names
# the customer an order belonged to. Every guard reads `o`, the row as it stands once locked:
# a concurrent batch that committed a newer version meanwhile makes this one skip the row.
_UPDATE_SQL = f"""
WITH input AS ({_INPUT}),
previous AS (
    SELECT o.id, o.customer_id
    FROM crm_order o JOIN input i ON o.source = i.s AND o.external_id = i.e
)
UPDATE crm_order o SET
    customer_id = i.c,
    status = CASE
        WHEN NOT {_VERSIONED}
             AND {_STATUS_RANK.format("i.st")} < {_STATUS_RANK.format("o.status")}
        THEN o.status ELSE i.st END,
    total_amount = i.ta,
    refunded_amount = CASE
        WHEN {_VERSIONED} THEN i.ra ELSE least(greatest(o.refunded_amount, i.ra), i.ta) END,
    currency = i.cu, paid_at = i.pa, channel = i.ch, store = i.so, content_hash = i.h,
    source_updated_at = coalesce(i.v, o.source_updated_at),
    updated_at = now()
FROM input i, previous p
WHERE o.source = i.s AND o.external_id = i.e AND p.id = o.id AND o.content_hash <> i.h
  AND (NOT {_VERSIONED} OR o.source_updated_at < i.v)
RETURNING i.n, o.id, o.customer_id, p.customer_id, {_PURCHASED_AT}
"""  # noqa: S608 - composed of constants only

# Last, for the rows of the batch that carry a version and were neither inserted nor updated:
# the same content under a newer version records that version only (so that an older version
# arriving later is known as stale; nothing else is written, nobody marked), and the positions
# of the stale rows are answered. This statement's snapshot is taken after the update's, so it
# sees any version whose commit made the update skip a row. (The UPDATE in WITH runs to
# completion though nothing reads it; the SELECT sees the rows as they were before it.)
_VERSIONS_SQL = f"""
WITH input AS ({_INPUT}),
recorded AS (
    UPDATE crm_order o SET source_updated_at = i.v
    FROM input i
    WHERE o.source = i.s AND o.external_id = i.e AND o.content_hash = i.h
      AND (o.source_updated_at IS NULL OR o.source_updated_at < i.v)
)
SELECT i.n FROM input i JOIN crm_order o ON o.source = i.s AND o.external_id = i.e
WHERE o.source_updated_at > i.v
"""  # noqa: S608 - composed of constants only

# Updated orders get their items anew (the old ones are deleted first, in a statement of
# their own so that the new lines never meet the old ones in the unique index).
_ITEMS_DELETE_SQL = "DELETE FROM crm_orderitem WHERE order_id = ANY(%s::bigint[])"
_ITEMS_REPLACE_SQL = f"""
INSERT INTO crm_orderitem (order_id, customer_id, line_no, sku, name, category, quantity,
                           unit_price, purchased_at)
SELECT w.id, w.c, it.l, it.s, it.nm, it.ca, it.q, it.p, w.pu
FROM json_to_recordset(%(written)s::json) AS w(n int, id bigint, c bigint, pu timestamptz)
JOIN ({_ITEMS_INPUT}) AS it ON it.n = w.n
"""  # noqa: S608 - composed of constants only


def orders_bulk_upsert(*, orders: Sequence[OrderIn], actor: str) -> OrdersOutcome:
    """Create or update orders. Each (source, external_id) must appear once in `orders`.

    Customers are resolved (and created) in a first short transaction, so that the locks on
    new identities are not held while the orders are written: concurrent batches naming the
    same new customer wait for each other only that long. A failure after it leaves customers
    without these orders, which a re-send completes."""
    if not orders:
        return OrdersOutcome()
    for attempt in range(1, RESOLVE_ATTEMPTS + 1):
        customer_ids = _customers_of(orders, actor=actor)
        try:
            return _orders_write(orders, customer_ids, actor=actor)
        except CustomerGone:
            # A concurrent merge removed a customer between the two transactions; resolving
            # again finds the survivor.
            if attempt == RESOLVE_ATTEMPTS:
                raise
            logger.warning("orders.bulk_upsert.retry_after_merge", extra={"actor": actor})
    raise AssertionError("unreachable")


@on_deadlock_retry
@transaction.atomic
def _customers_of(orders: Sequence[OrderIn], *, actor: str) -> list[int]:
    return customers_resolve(
        identity_rows=[o.customer.keys for o in orders],
        actor=actor,
        seen_at=[o.paid_at for o in orders],
    ).customer_ids


@on_deadlock_retry
@transaction.atomic
def _orders_write(
    orders: Sequence[OrderIn], customer_ids: list[int], *, actor: str
) -> OrdersOutcome:
    rows = [
        {
            "n": position,
            "c": customer_id,
            "s": o.source,
            "e": o.external_id,
            "st": o.status,
            "ta": o.total_amount,
            "ra": o.refunded_amount,
            "cu": o.currency,
            "pa": o.paid_at,
            "ch": o.channel,
            "so": o.store,
            "h": order_content_hash(o),
            "v": o.source_updated_at,
        }
        for position, (o, customer_id) in enumerate(zip(orders, customer_ids, strict=True))
    ]
    items = _encode(
        [
            {
                "n": position,
                "l": line_no,
                "s": item.sku,
                "nm": item.name,
                "ca": item.category,
                "q": item.quantity,
                "p": item.unit_price,
            }
            for position, o in enumerate(orders)
            for line_no, item in enumerate(o.items, start=1)
        ]
    ).decode()
    with connection.cursor() as cursor:
        # What a foreign key would check, for the whole batch at once: every customer exists,
        # and none can be removed before this transaction ends.
        customers_removal_lock(exclusive=False)
        distinct_ids = sorted(set(customer_ids))
        cursor.execute(_CUSTOMERS_COUNT_SQL, [distinct_ids])
        row = cursor.fetchone()
        if row is None or row[0] != len(distinct_ids):
            raise CustomerGone
        cursor.execute(_INSERT_SQL, {"orders": _encode(rows).decode(), "items": items})
        inserted = cursor.fetchall()  # (position, customer_id)
        # (position, order_id, customer_id, previous customer_id, purchased_at)
        updated = []
        existing: list[dict[str, Any]] = []
        if len(inserted) < len(rows):
            new_positions = {position for position, _customer_id in inserted}
            existing = [r for r in rows if r["n"] not in new_positions]
            cursor.execute(_UPDATE_SQL, {"orders": _encode(existing).decode()})
            updated = cursor.fetchall()
        stale = 0
        updated_positions = {row[0] for row in updated}
        versioned = [r for r in existing if r["v"] is not None and r["n"] not in updated_positions]
        if versioned:
            cursor.execute(_VERSIONS_SQL, {"orders": _encode(versioned).decode()})
            stale = len(cursor.fetchall())
        if updated:
            cursor.execute(_ITEMS_DELETE_SQL, [[row[1] for row in updated]])
            written = [
                {"n": n, "id": order_id, "c": c, "pu": purchased_at}
                for n, order_id, c, _previous, purchased_at in updated
            ]
            cursor.execute(
                _ITEMS_REPLACE_SQL, {"written": _encode(written).decode(), "items": items}
            )

    touched = {customer_id for _position, customer_id in inserted}
    for _position, _order_id, customer_id, previous_customer_id, _purchased_at in updated:
        touched.add(customer_id)
        if previous_customer_id is not None:  # None: detached when its customer was erased
            touched.add(previous_customer_id)
    customers_mark_dirty(touched)
    _orders_changed_after_commit(touched)
    outcome = OrdersOutcome(
        created=len(inserted),
        updated=len(updated),
        unchanged=len(orders) - len(inserted) - len(updated) - stale,
        stale=stale,
        customer_ids=customer_ids,
    )
    logger.info(
        "orders.bulk_upsert",
        extra={
            "actor": actor,
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "unchanged_count": outcome.unchanged,
            "stale_count": outcome.stale,
        },
    )
    return outcome
