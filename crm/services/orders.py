"""Order ingestion: bulk upsert idempotent by (source, external_id).

One batch is one transaction of a fixed number of statements whatever its size: customers are
resolved from the rows' identities in one pass, orders are upserted by one INSERT .. ON CONFLICT
that writes only rows whose content changed, the items of written orders are replaced by one
DELETE and one INSERT, and the customers concerned are marked for recomputation. A re-sent
unchanged batch therefore writes no order, no item and marks nobody.
"""

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.db import IntegrityError, connection, transaction
from django.db.backends.utils import CursorWrapper

from crm.inputs import OrderIn
from crm.services.customers import (
    customers_mark_dirty,
    customers_resolve,
)
from crm.services.retry import on_deadlock_retry

logger = logging.getLogger(__name__)


@dataclass
class OrdersOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    customer_ids: list[int] = field(default_factory=list)  # of each row, in row order


_encode = msgspec.json.Encoder(decimal_format="string").encode


def order_content_hash(order: OrderIn) -> str:
    """Digest of an order as sent (customer identities and items included), so that an
    unchanged re-send writes nothing and naming another customer moves the order."""
    return hashlib.md5(_encode(order), usedforsecurity=False).hexdigest()


# The batch travels as one JSON parameter unpacked by json_to_recordset: PostgreSQL parses it in
# C, where binding a dozen arrays of a thousand values costs Python milliseconds per batch.
_INPUT = """
    SELECT * FROM json_to_recordset(%s::json) AS t(
        c bigint, s text, e text, st text, ta numeric, ra numeric, cu text, pa timestamptz,
        ch text, so text, h text)
"""

# New orders first, by the cheapest path: served by the unique index order_unique_external.
_INSERT_SQL = f"""
INSERT INTO crm_order (customer_id, source, external_id, status, total_amount, refunded_amount,
                       currency, paid_at, channel, store, content_hash, created_at, updated_at)
SELECT c, s, e, st, ta, ra, cu, pa, ch, so, h, now(), now() FROM ({_INPUT}) AS input
ON CONFLICT (source, external_id) DO NOTHING
RETURNING id, source, external_id, customer_id
"""  # noqa: S608 - composed of constants only

# Then the orders that exist already, where their content changed. `previous` reads the
# snapshot before the update, so it names the customer an order belonged to.
_UPDATE_SQL = f"""
WITH input AS ({_INPUT}),
previous AS (
    SELECT o.id, o.customer_id
    FROM crm_order o JOIN input i ON o.source = i.s AND o.external_id = i.e
)
UPDATE crm_order o SET
    customer_id = i.c, status = i.st, total_amount = i.ta, refunded_amount = i.ra,
    currency = i.cu, paid_at = i.pa, channel = i.ch, store = i.so, content_hash = i.h,
    updated_at = now()
FROM input i, previous p
WHERE o.source = i.s AND o.external_id = i.e AND p.id = o.id AND o.content_hash <> i.h
RETURNING o.id, o.source, o.external_id, o.customer_id, p.customer_id
"""  # noqa: S608 - composed of constants only

_ITEMS_DELETE_SQL = "DELETE FROM crm_orderitem WHERE order_id = ANY(%s::bigint[])"
_ITEMS_INSERT_SQL = """
INSERT INTO crm_orderitem (order_id, customer_id, line_no, sku, name, category, quantity,
                           unit_price)
SELECT o, c, l, s, n, ca, q, p FROM json_to_recordset(%s::json) AS t(
    o bigint, c bigint, l smallint, s text, n text, ca text, q integer, p numeric)
"""


def orders_bulk_upsert(*, orders: Sequence[OrderIn], actor: str) -> OrdersOutcome:
    """Create or update orders. Each (source, external_id) must appear once in `orders`.

    Customers are resolved (and created) in a first short transaction, so that the locks on
    new identities are not held while the orders are written: concurrent batches naming the
    same new customer wait for each other only that long. A failure after it leaves customers
    without these orders, which a re-send completes."""
    if not orders:
        return OrdersOutcome()
    for attempt in (1, 2):
        customer_ids = _customers_of(orders, actor=actor)
        try:
            return _orders_write(orders, customer_ids, actor=actor)
        except IntegrityError:
            # A concurrent merge removed a customer between the two transactions (the foreign
            # key fails at commit); resolving again finds the survivor.
            if attempt == 2 or connection.in_atomic_block:
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
        }
        for o, customer_id in zip(orders, customer_ids, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, [_encode(rows).decode()])
        inserted = cursor.fetchall()
        updated = []
        if len(inserted) < len(rows):
            new_keys = {(source, external_id) for _id, source, external_id, _c in inserted}
            existing = [r for r in rows if (r["s"], r["e"]) not in new_keys]
            cursor.execute(_UPDATE_SQL, [_encode(existing).decode()])
            updated = cursor.fetchall()
        written = [(*row, True, None) for row in inserted] + [
            (order_id, source, external_id, customer_id, False, previous)
            for order_id, source, external_id, customer_id, previous in updated
        ]
        if written:
            _items_replace(cursor, {(o.source, o.external_id): o for o in orders}, written)

    outcome = OrdersOutcome(customer_ids=customer_ids)
    touched: set[int] = set()
    for _id, _source, _external_id, customer_id, inserted, previous_customer_id in written:
        touched.add(customer_id)
        if previous_customer_id is not None:
            touched.add(previous_customer_id)
        if inserted:
            outcome.created += 1
        else:
            outcome.updated += 1
    outcome.unchanged = len(orders) - len(written)
    customers_mark_dirty(touched)
    logger.info(
        "orders.bulk_upsert",
        extra={
            "actor": actor,
            "created_count": outcome.created,
            "updated_count": outcome.updated,
            "unchanged_count": outcome.unchanged,
        },
    )
    return outcome


def _items_replace(
    cursor: CursorWrapper, by_key: dict[tuple[str, str], OrderIn], written: list[Any]
) -> None:
    """Replace the items of the orders just written (those of unchanged orders stay)."""
    updated_ids = [row[0] for row in written if not row[4]]
    if updated_ids:
        cursor.execute(_ITEMS_DELETE_SQL, [updated_ids])
    items = [
        {
            "o": order_id,
            "c": customer_id,
            "l": line_no,
            "s": item.sku,
            "n": item.name,
            "ca": item.category,
            "q": item.quantity,
            "p": item.unit_price,
        }
        for order_id, source, external_id, customer_id, _inserted, _previous in written
        for line_no, item in enumerate(by_key[(source, external_id)].items, start=1)
    ]
    if items:
        cursor.execute(_ITEMS_INSERT_SQL, [_encode(items).decode()])
