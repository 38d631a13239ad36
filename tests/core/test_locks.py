"""Advisory locks: the registry's keys are apart, each lock takes the key it always took (read
back from pg_locks), and the helper's shared, try and session modes behave as PostgreSQL's."""

import threading

import pytest
from django.db import connection, transaction

from core import locks
from core.locks import (
    DIGEST_BITS,
    PREFIXED_ID_BITS,
    Expression,
    Form,
    Lock,
    session_lock,
    xact_lock,
    xact_lock_all,
    xact_try_lock,
)
from crm.personal_data import identity_key

pytestmark = pytest.mark.django_db

BIGINT = 2**63
INT4 = 2**31


def _members(form: Form) -> list[Lock]:
    return [lock for lock in Lock if lock.form is form]


def test_every_name_is_its_own_lock() -> None:
    """An enum member with another's value would be an alias of it: the same key."""
    assert len(Lock.__members__) == len(Lock)


def test_the_fixed_keys_are_distinct_bigints_outside_every_prefixed_family() -> None:
    fixed = [lock.namespace for lock in _members(Form.SINGLE)]
    assert len(set(fixed)) == len(fixed)
    prefixes = {lock.namespace for lock in _members(Form.PREFIXED)}
    for key in fixed:
        assert isinstance(key, int)
        assert 0 <= key < BIGINT
        assert key >> PREFIXED_ID_BITS not in prefixes


def test_the_families_namespaces_are_distinct_within_their_key_space() -> None:
    pairs = [lock.namespace for lock in _members(Form.PAIR)]
    assert len(set(pairs)) == len(pairs)
    assert all(isinstance(n, int) and 0 <= n < INT4 for n in pairs)

    prefixes = [lock.namespace for lock in _members(Form.PREFIXED)]
    assert len(set(prefixes)) == len(prefixes)
    for namespace in prefixes:
        assert isinstance(namespace, int)
        assert 0 <= namespace < 2 ** (64 - 1 - PREFIXED_ID_BITS)  # a positive bigint
        # Above every digest key: the two families never meet.
        assert namespace << PREFIXED_ID_BITS >= 2**DIGEST_BITS

    assert [lock.namespace for lock in _members(Form.DIGEST)] == [0]

    texts = [lock.namespace for lock in _members(Form.TEXT_HASH)]
    assert len(set(texts)) == len(texts)
    assert all(isinstance(text, str) and text for text in texts)


def _held() -> set[tuple[str, int, int, str]]:
    """The advisory locks this connection holds: ("bigint", key, 0, mode) or ("pair",
    namespace, id, mode)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT classid::bigint, objid::bigint, objsubid, mode FROM pg_locks
            WHERE locktype = 'advisory' AND pid = pg_backend_pid()
            """
        )
        held = set()
        for high, low, subid, mode in cursor.fetchall():
            if subid == 1:
                key = (high << 32) | low
                held.add(("bigint", key - 2**64 if key >= BIGINT else key, 0, mode))
            else:
                held.add(("pair", high, low, mode))
    return held


def _scalar(sql: str, params: list[object]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (value,) = cursor.fetchone()  # type: ignore[misc]
    return int(value)


@pytest.mark.parametrize(
    ("lock", "key"),
    [
        (Lock.CUSTOMER_REMOVAL, 0x43524D5F52454D),
        (Lock.RECOMPUTE, 0x5345475F52454300),
        (Lock.PREDICT, 0x5345475F50524544),
        (Lock.RFM_POLICY, 0x5345475F52464D00),
        (Lock.LIFECYCLE_POLICY, 0x5345475F4C494600),
    ],
)
def test_a_single_lock_takes_its_key_shared_or_exclusive(lock: Lock, key: int) -> None:
    xact_lock(lock, shared=True)
    assert _held() == {("bigint", key, 0, "ShareLock")}
    xact_lock(lock)
    assert _held() == {("bigint", key, 0, "ShareLock"), ("bigint", key, 0, "ExclusiveLock")}


@pytest.mark.parametrize(
    ("lock", "namespace"),
    [(Lock.CAMPAIGN_PLANNING, 0x504C), (Lock.CHANNEL_SEND, 0x4353), (Lock.CUSTOMER_BUCKET, 0x4342)],
)
def test_a_pair_lock_is_its_namespace_and_the_id(lock: Lock, namespace: int) -> None:
    xact_lock(lock, 7)
    assert _held() == {("pair", namespace, 7, "ExclusiveLock")}


def test_a_bucket_lock_of_many_customers_takes_each_bucket_once() -> None:
    xact_lock_all(Lock.CUSTOMER_BUCKET, [3, 1, 3, 2])
    assert _held() == {("pair", 0x4342, b, "ExclusiveLock") for b in (1, 2, 3)}
    xact_lock_all(Lock.CUSTOMER_BUCKET, [])
    assert len(_held()) == 3


def test_an_identity_lock_is_the_first_60_bits_of_its_value_hash() -> None:
    hashes = [identity_key(provider="phone", value=f"1380000111{n}").value_hash for n in range(3)]
    xact_lock_all(Lock.IDENTITY_CREATION, [*hashes, hashes[0]])
    assert _held() == {("bigint", int(h[:15], 16), 0, "ExclusiveLock") for h in hashes}


def test_a_consent_lock_hashes_the_text_the_consent_service_always_hashed() -> None:
    xact_lock(Lock.CONSENT_DECISION, "42:wecom")
    key = _scalar("SELECT hashtextextended('consent:' || %s || ':' || %s, 0)", [42, "wecom"])
    assert _held() == {("bigint", key, 0, "ExclusiveLock")}


def test_a_feed_lock_holds_the_feed_and_an_id_computed_by_the_statement() -> None:
    xact_lock(Lock.LIFECYCLE_TRANSITIONS_FEED, Expression("SELECT 5"), shared=True)
    xact_lock(Lock.SEGMENT_MEMBERSHIP_EVENTS_FEED, 6, shared=True)
    assert _held() == {
        ("bigint", (0x4654 << 48) | 5, 0, "ShareLock"),
        ("bigint", (0x4645 << 48) | 6, 0, "ShareLock"),
    }


def test_a_family_needs_its_member_and_a_single_lock_refuses_one() -> None:
    with pytest.raises(AssertionError):
        xact_lock(Lock.CHANNEL_SEND)
    with pytest.raises(AssertionError):
        xact_lock(Lock.RECOMPUTE, 1)
    with pytest.raises(AssertionError):
        xact_lock(Lock.CHANNEL_SEND, Expression("SELECT 1"))
    assert _held() == set()


class _Holder:
    """A lock held by another connection (a thread) until `release`."""

    def __init__(self, lock: Lock, lock_id: int | None, *, shared: bool) -> None:
        self.held, self.released = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold, args=(lock, lock_id, shared))

    def _hold(self, lock: Lock, lock_id: int | None, shared: bool) -> None:
        try:
            with transaction.atomic():
                xact_lock(lock, lock_id, shared=shared)
                self.held.set()
                self.released.wait(30)
        finally:
            connection.close()

    def __enter__(self) -> "_Holder":
        self.thread.start()
        assert self.held.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.released.set()
        self.thread.join(30)


@pytest.fixture
def quick_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(locks, "WAIT_POLL_SECONDS", 0.05)


def test_a_shared_holder_lets_shared_lockers_in_and_keeps_an_exclusive_one_out() -> None:
    with _Holder(Lock.CUSTOMER_REMOVAL, None, shared=True):
        xact_lock(Lock.CUSTOMER_REMOVAL, shared=True)
        with transaction.atomic():
            assert not xact_try_lock(Lock.CUSTOMER_REMOVAL)
    with transaction.atomic():
        assert xact_try_lock(Lock.CUSTOMER_REMOVAL)


def test_a_session_lock_held_elsewhere_is_refused_at_once_or_waited_for(
    quick_polls: None,
) -> None:
    holder = _Holder(Lock.CHANNEL_SEND, 9, shared=False)
    with holder:
        with session_lock(Lock.CHANNEL_SEND, 9) as obtained:
            assert not obtained
        with session_lock(Lock.CHANNEL_SEND, 10) as obtained:
            assert obtained
        waits: list[None] = []

        def on_wait() -> None:
            waits.append(None)
            holder.released.set()

        with session_lock(Lock.CHANNEL_SEND, 9, wait=True, on_wait=on_wait) as obtained:
            assert obtained
            assert ("pair", 0x4353, 9, "ExclusiveLock") in _held()
        assert waits
    assert ("pair", 0x4353, 9, "ExclusiveLock") not in _held()
