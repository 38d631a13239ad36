"""The session-level PostgreSQL advisory lock that keeps long jobs of one kind from
interleaving (recomputation, model fitting). PostgreSQL releases it itself if the process
dies, so a crashed job never leaves it held."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection

WAIT_POLL_SECONDS = 1.0


@contextmanager
def session_lock(key: int, *, wait: bool, on_wait: Callable[[], None] | None) -> Iterator[bool]:
    """Hold advisory lock `key` for the block; yields whether it was obtained. With `wait`, polls
    until it is (calling `on_wait` each time it has to wait), else gives up at once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        obtained = cursor.fetchone()[0]  # type: ignore[index]
        while not obtained and wait:
            if on_wait is not None:
                on_wait()
            time.sleep(WAIT_POLL_SECONDS)
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            obtained = cursor.fetchone()[0]  # type: ignore[index]
    try:
        yield obtained
    finally:
        if obtained:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
