"""Helpers of the crm tests: two writers of one row, the second made to wait for the first,
and what a bulk write answers (as versions of one row arrive in turn, say)."""

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from tests.support import locked_waiters


def wait_until_a_session_waits_for_a_lock(timeout: float = 20.0) -> None:
    """Return once another session of this database waits for a lock. The waiting is read
    from pg_stat_activity, not guessed from timing; `timeout` only bounds a failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if locked_waiters():
            return
        time.sleep(0.02)
    raise AssertionError("the second writer never waited for the first")


def second_waits_for_first(first: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """Run `first` in a transaction held open until `second` (in its own thread and
    connection) waits for one of its locks; then commit `first` and let `second` finish.
    Returns their results. Needs a transactional test (each thread has its own connection)."""
    proceed = threading.Event()
    done = threading.Event()
    results: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run(name: str, work: Callable[[], Any], hold: bool) -> None:
        try:
            with transaction.atomic():
                results[name] = work()
                if hold:
                    done.set()
                    assert proceed.wait(30), "never released"
        except BaseException as error:
            errors.append(error)
            done.set()
        finally:
            connection.close()

    holder = threading.Thread(target=run, args=("first", first, True))
    holder.start()
    assert done.wait(30), "the first writer never finished its work"
    waiter = threading.Thread(target=run, args=("second", second, False))
    waiter.start()
    try:
        if not errors:
            wait_until_a_session_waits_for_a_lock()
    finally:
        proceed.set()
        holder.join(30)
        waiter.join(30)
    assert errors == []
    return results["first"], results["second"]


def bulk_answer(
    *,
    created: int = 0,
    updated: int = 0,
    unchanged: int = 0,
    stale: int = 0,
    rejected: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The body a bulk write answers: how many rows it created, updated, found unchanged or
    stale (none unless given), and the rows it rejected (none unless given)."""
    return {
        "created": created,
        "updated": updated,
        "unchanged": unchanged,
        "stale": stale,
        "rejected": rejected or [],
    }


def arrival_outcome(*, step: int, version: int, newest_so_far: int) -> dict[str, Any]:
    """The answer of a bulk write of one row, the `step`-th of versions arriving in turn: the
    first creates it, a version newer than every one so far updates it, an older one is stale."""
    if step == 0:
        return bulk_answer(created=1)
    if version > newest_so_far:
        return bulk_answer(updated=1)
    return bulk_answer(stale=1)
