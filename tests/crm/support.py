"""Helpers of the crm tests: two writers of one row, the second made to wait for the first."""

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction


def wait_until_a_session_waits_for_a_lock(timeout: float = 20.0) -> None:
    """Return once another session of this database waits for a lock. The waiting is read
    from pg_stat_activity, not guessed from timing; `timeout` only bounds a failure."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            row = cursor.fetchone()
            if row and row[0]:
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
