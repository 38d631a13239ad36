"""The feeds read by id cursor (lifecycle transitions, segment membership events): how far a
reader may go without skipping a row that a writer still in flight will commit later.

An id is drawn from the table's sequence when a row is inserted, but the row becomes visible
only when its transaction commits. Writers run at the same time (a full recomputation writes
transitions from RECOMPUTE_WORKERS batch transactions at once; segments refresh on several
workers), so a transaction holding low ids can commit after one holding higher ids. A reader
that moved its cursor to the highest id it saw would never see the lower ones.

So a reader reads only up to the feed's *end*: an id at or below which every row that will
ever be visible already is.

- Each writer transaction, before it inserts feed rows, registers the highest id the feed's
  sequence has handed out so far, `L` (every id it draws afterwards is greater), as a shared
  transaction-level advisory lock whose key holds the feed and `L`. PostgreSQL releases it
  when the transaction ends, after its commit is visible to everyone (locks are released
  after the transaction leaves the proc array), or after it rolled back.
- A reader, in this order and in separate statements: (1) reads the highest id handed out,
  `V`; (2) reads the registrations other transactions hold (pg_locks); (3) with a snapshot
  taken after both, reads rows with id <= end = min(V, every registered L).

Why nothing is skipped: take an id i <= end that the reader's snapshot does not show. As
i <= V, i was drawn before (1), by a writer that registered before drawing it, so before (2).
Had that writer still held its lock at (2), its L < i would make end < i. So it had ended
before (2): committed, and then its rows are in the snapshot of (3), or rolled back, and then
i never appears. Writers pay one statement per transaction and wait for nobody; a reader waits
for nobody either: rows above the end are served by a later poll, once the writers below them
have ended. A registration never blocks anything (shared locks on one key do not conflict).

What this relies on:
- every writer of a feed calls `feed_writer_register` in the transaction that inserts its rows,
  before the insert (the services of this app do);
- the feed's sequence draws one id at a time (CACHE 1, the default: ids cached by a session
  would be drawn below V later);
- the reader computes the end before the snapshot of its read: READ COMMITTED (the project's
  level), where each statement takes a new snapshot, and on the primary (a standby's pg_locks
  does not show the primary's locks);
- the reader's own transaction's registrations are left out: its own rows are visible to it.

A key is the feed's 16-bit namespace followed by L in 48 bits (2.8e14 ids): a prefixed key of
the registry `core.locks.Lock`, which keeps it apart from the other locks' keys. In pg_locks a
one-bigint advisory key shows as classid (its high 32 bits) and objid (its low 32 bits) with
objsubid 1.

Not chosen: a lock serialising id drawing and commit (a recomputation batch inserts its
transitions in the same statement that scores the batch, so the batches would run one at a
time), and writing a run's transitions from one transaction at its end (a second pass over
every change, and the sweeps and segment refreshes would still need the same care)."""

import enum

from django.db import connection

from core.locks import PREFIXED_ID_BITS, Expression, Lock, xact_lock


class Feed(enum.Enum):
    """A feed: its writers' advisory lock and the sequence its ids come from."""

    LIFECYCLE_TRANSITIONS = (
        Lock.LIFECYCLE_TRANSITIONS_FEED,
        "segments_lifecycletransition_id_seq",
    )
    SEGMENT_MEMBERSHIP_EVENTS = (
        Lock.SEGMENT_MEMBERSHIP_EVENTS_FEED,
        "segments_segmentmembershipevent_id_seq",
    )

    def __init__(self, lock: Lock, sequence: str) -> None:
        self.lock = lock
        self.sequence = sequence


def _handed_out_sql(feed: Feed) -> str:
    """The highest id the feed's sequence has handed out (0 before the first)."""
    return (
        "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END "  # noqa: S608
        f"FROM {feed.sequence}"
    )


def feed_writer_register(feed: Feed) -> None:
    """Register the caller's transaction as a writer of `feed` until it ends: call it inside
    the transaction, before inserting the feed's rows."""
    assert connection.in_atomic_block, "a registration lasts as long as its transaction"
    xact_lock(feed.lock, Expression(_handed_out_sql(feed)), shared=True)


# The smallest L registered by other transactions of this database (the key's low 48 bits),
# and the isolation level (the rows must be read with a snapshot taken after this).
_REGISTERED_SQL = f"""
    SELECT (
        SELECT min(((l.classid::bigint & 65535) << 32) | l.objid::bigint)
        FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND (l.classid::bigint >> {PREFIXED_ID_BITS - 32}) = %s
          AND l.pid IS DISTINCT FROM pg_backend_pid()
    ), current_setting('transaction_isolation')
"""  # noqa: S608 - constants only


def feed_end(feed: Feed) -> int:
    """The id a reader of `feed` may read up to (inclusive) and move its cursor to: every row
    at or below it that will ever be visible is visible to the reader's next statement."""
    with connection.cursor() as cursor:
        cursor.execute(_handed_out_sql(feed))  # first: see the module's docstring
        (handed_out,) = cursor.fetchone()  # type: ignore[misc]
        cursor.execute(_REGISTERED_SQL, [feed.lock.namespace])
        registered, isolation = cursor.fetchone()  # type: ignore[misc]
    if isolation != "read committed":
        # The transaction's snapshot may predate the registrations just read.
        raise RuntimeError(f"a feed is read under READ COMMITTED, not {isolation}")
    return int(handed_out if registered is None else min(handed_out, registered))
