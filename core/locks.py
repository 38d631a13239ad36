"""PostgreSQL advisory locks: the registry of every key the product's locks use (`Lock`), and
the one helper that takes them (`xact_lock`, `xact_lock_all`, `xact_try_lock`, `session_lock`).

PostgreSQL names an advisory lock by one bigint or by two integers, two key spaces that never
meet (pg_locks tells them apart by objsubid: 1 for a bigint, 2 for two integers). Each member of
`Lock` says how its keys are formed (`Form`), so that no two uses pick one key by accident; a
new lock is added here, with a line on what it serialises:

- SINGLE: one lock, the bigint fixed here.
- PAIR: a family of locks (namespace, id) in two integers: the namespace fixed here, the id the
  thing locked (a campaign, a call, a bucket of customers).
- PREFIXED: a family of one-bigint keys: the namespace in the 16 high bits, the id in the 48 low
  (`PREFIXED_ID_BITS`); segments.feeds reads the ids back from pg_locks.
- DIGEST: a family of one-bigint keys: the first 60 bits of the id, a hex digest (the namespace
  is the 4 high bits, 0).
- TEXT_HASH: a family of one-bigint keys: PostgreSQL's hashtextextended of the namespace (a
  text) followed by the id.

The fixed keys and the namespaces are apart (tests/core/test_locks.py checks it). The hashed
families spread over most of the bigint space, so one of their keys may equal another lock's by
chance, about once in 2**60 keys: the two lockers then wait for each other a moment (or the
deadlock detector ends one); it never lets two holders of one lock in at once.

A transaction-level lock is released by PostgreSQL when the transaction ends (commit or
rollback); a session-level one at the end of its block, or by PostgreSQL if the connection
dies, so a crashed job never leaves one held."""

import enum
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import connection

PREFIXED_ID_BITS = 48
DIGEST_BITS = 60
WAIT_POLL_SECONDS = 1.0


class Form(enum.Enum):
    """How a lock's key is formed (see the module's docstring)."""

    SINGLE = "single"
    PAIR = "pair"
    PREFIXED = "prefixed"
    DIGEST = "digest"
    TEXT_HASH = "text_hash"


class Lock(enum.Enum):
    """Every advisory lock of the product: (form, the fixed key or the family's namespace)."""

    # crm. Customer rows are removed by merges and deletions, which hold it exclusively;
    # writers of rows that point at customers without a foreign key hold it shared
    # (crm.services.removals).
    CUSTOMER_REMOVAL = (Form.SINGLE, 0x43524D5F52454D)  # "CRM_REM"
    # crm. An identity about to be created, by its value hash: parallel requests naming one
    # new identity create one customer (crm.services.identities).
    IDENTITY_CREATION = (Form.DIGEST, 0)
    # crm. Decisions about one (customer, channel), id "<customer id>:<channel>": a re-sent
    # event is kept once (crm.services.consents).
    CONSENT_DECISION = (Form.TEXT_HASH, "consent:")
    # crm. One mirror of WeCom's corp tags at a time: the nightly sync and the tag callbacks
    # (transaction; crm.wecom.tags).
    WECOM_CORP_TAGS = (Form.SINGLE, 0x43524D5F57544147)  # "CRM_WTAG"
    # crm. One process walking a WeCom full sync at a time: a second start (the command while
    # the nightly task runs) leaves the running one alone (session; crm.wecom.sync).
    WECOM_SYNC = (Form.SINGLE, 0x43524D5F5753594E)  # "CRM_WSYN"

    # segments. One recomputation at a time (session; segments.services.recompute).
    RECOMPUTE = (Form.SINGLE, 0x5345475F52454300)  # "SEG_REC\0"
    # segments. One computation of the retention pre-aggregate at a time (transaction;
    # segments.services.retention).
    RETENTION = (Form.SINGLE, 0x5345475F52455400)  # "SEG_RET\0"
    # segments. One model fit or scoring at a time (session; segments.services.predictions).
    PREDICT = (Form.SINGLE, 0x5345475F50524544)  # "SEG_PRED"
    # segments. Writers of a policy queue, each reading the version the previous one made
    # active (segments.services.policies).
    RFM_POLICY = (Form.SINGLE, 0x5345475F52464D00)  # "SEG_RFM\0"
    LIFECYCLE_POLICY = (Form.SINGLE, 0x5345475F4C494600)  # "SEG_LIF\0"
    # segments. A writer of a feed registers the highest id handed out (segments.feeds).
    LIFECYCLE_TRANSITIONS_FEED = (Form.PREFIXED, 0x4654)  # "FT"
    SEGMENT_MEMBERSHIP_EVENTS_FEED = (Form.PREFIXED, 0x4645)  # "FE"

    # campaigns. A campaign being planned, by id: a second copy of the task stops (session;
    # campaigns.services.campaigns).
    CAMPAIGN_PLANNING = (Form.PAIR, 0x504C)  # "PL"
    # campaigns. A channel call being made, by id: one worker runs it at a time (session;
    # campaigns.services.dispatch).
    CHANNEL_SEND = (Form.PAIR, 0x4353)  # "CS"
    # campaigns. A bucket of customer ids (id // CUSTOMER_BUCKET) whose sends are being
    # counted against the frequency caps (campaigns.services.reservation).
    CUSTOMER_BUCKET = (Form.PAIR, 0x4342)  # "CB"

    def __init__(self, form: Form, namespace: int | str) -> None:
        self.form = form
        self.namespace = namespace


@dataclass(frozen=True)
class Expression:
    """An id computed by the locking statement itself: SQL of this codebase, never input."""

    sql: str


LockId = int | str | Expression

# Per form of a family: the arguments of a pg_*advisory* function with the member's id as
# `{id}` (SQL), the parameters before it, and the PostgreSQL type of the id as passed.
_FAMILY_ARGUMENTS = {
    Form.PAIR: ("%s, {id}", True, "int"),
    Form.PREFIXED: (f"(%s::bigint << {PREFIXED_ID_BITS}) | {{id}}", True, "bigint"),
    Form.DIGEST: ("{id}", False, "bigint"),
    Form.TEXT_HASH: ("hashtextextended({id}, 0)", False, "text"),
}


def _id_value(lock: Lock, lock_id: int | str) -> int | str:
    """A member's id as the statement takes it."""
    if lock.form is Form.DIGEST:
        assert isinstance(lock_id, str), "a digest key's id is a hex digest"
        return int(lock_id[: DIGEST_BITS // 4], 16)
    if lock.form is Form.TEXT_HASH:
        return f"{lock.namespace}{lock_id}"
    return lock_id


def _arguments(lock: Lock, lock_id: LockId | None) -> tuple[str, list[Any]]:
    """The arguments of a pg_*advisory* function naming `lock` (a family's member `lock_id`),
    with their parameters."""
    if lock.form is Form.SINGLE:
        assert lock_id is None, f"{lock.name} is a single lock"
        return "%s", [lock.namespace]
    assert lock_id is not None, f"{lock.name} is a family: name the member"
    template, is_namespaced, _type = _FAMILY_ARGUMENTS[lock.form]
    params: list[Any] = [lock.namespace] if is_namespaced else []
    if isinstance(lock_id, Expression):
        assert lock.form is Form.PREFIXED, "only a prefixed key takes an expression"
        return template.format(id=f"({lock_id.sql})"), params
    return template.format(id="%s"), [*params, _id_value(lock, lock_id)]


def xact_lock(lock: Lock, lock_id: LockId | None = None, *, shared: bool = False) -> None:
    """Wait for the lock (a family's member `lock_id`) and hold it until the transaction
    ends; `shared` ones exclude only an exclusive one, not each other."""
    assert connection.in_atomic_block, "a transaction-level lock lasts for a transaction"
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    arguments, params = _arguments(lock, lock_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}({arguments})", params)


def xact_lock_all(lock: Lock, lock_ids: Iterable[int | str]) -> None:
    """Wait for the exclusive locks of these members of a family and hold them until the
    transaction ends: one statement takes them in ascending order of their ids as passed (a
    digest's key, a text), so that two callers never deadlock on each other."""
    assert connection.in_atomic_block, "a transaction-level lock lasts for a transaction"
    assert lock.form is not Form.SINGLE, f"{lock.name} is a single lock: use xact_lock"
    ids = sorted({_id_value(lock, lock_id) for lock_id in lock_ids})
    if not ids:
        return
    template, is_namespaced, array_type = _FAMILY_ARGUMENTS[lock.form]
    params: list[Any] = [lock.namespace] if is_namespaced else []
    with connection.cursor() as cursor:
        # The sorted subquery feeds the aggregate in its order.
        cursor.execute(
            f"SELECT count(pg_advisory_xact_lock({template.format(id='k')}))"  # noqa: S608
            f" FROM (SELECT k FROM unnest(%s::{array_type}[]) AS k ORDER BY 1) AS keys",
            [*params, ids],
        )


def xact_try_lock(lock: Lock, lock_id: LockId | None = None) -> bool:
    """Take the exclusive lock until the transaction ends if no one holds it; whether it was
    taken (never waits)."""
    assert connection.in_atomic_block, "a transaction-level lock lasts for a transaction"
    arguments, params = _arguments(lock, lock_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_xact_lock({arguments})", params)
        (is_taken,) = cursor.fetchone()  # type: ignore[misc]
    return bool(is_taken)


@contextmanager
def session_lock(
    lock: Lock,
    lock_id: LockId | None = None,
    *,
    wait: bool = False,
    on_wait: Callable[[], None] | None = None,
) -> Iterator[bool]:
    """Hold the exclusive session-level lock for the block; yields whether it was obtained.
    Without `wait`, gives up at once if someone holds it; with it, polls until it is free
    (every WAIT_POLL_SECONDS, calling `on_wait` each time it has to wait)."""
    arguments, params = _arguments(lock, lock_id)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({arguments})", params)
        (obtained,) = cursor.fetchone()  # type: ignore[misc]
        while not obtained and wait:
            if on_wait is not None:
                on_wait()
            time.sleep(WAIT_POLL_SECONDS)
            cursor.execute(f"SELECT pg_try_advisory_lock({arguments})", params)
            (obtained,) = cursor.fetchone()  # type: ignore[misc]
    try:
        yield bool(obtained)
    finally:
        if obtained:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT pg_advisory_unlock({arguments})", params)
