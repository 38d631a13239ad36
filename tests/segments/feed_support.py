"""Writers of the feeds that commit out of id order, step by step: a full recomputation whose
first batch (the lower customer ids, so the lower transition ids) stays uncommitted while the
second one commits, and any writer held open in a transaction of its own. Each runs on its own
thread and connection; events, not sleeps, order the steps (the waits only bound a failure)."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection, transaction

from segments.models import RecomputeStatus
from segments.services import recompute
from tests.segments.recompute_support import AS_OF

WAIT_SECONDS = 30  # only reached when something is broken


def _wait(event: threading.Event) -> None:
    assert event.wait(WAIT_SECONDS), "the other side never got there"


class HeldOpen:
    """`work` run on its own thread and connection inside a transaction that stays open until
    `commit()`: `start()` returns once `work` has written."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._work = work
        self._written = threading.Event()
        self._release = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                self._work()
                self._written.set()
                _wait(self._release)
        except BaseException as error:  # reported by commit()
            self._errors.append(error)
            self._written.set()
        finally:
            connection.close()

    def start(self) -> None:
        self._thread.start()
        _wait(self._written)
        assert self._errors == []

    def commit(self) -> None:
        self._release.set()
        self._thread.join()
        assert self._errors == []


class RunWithFirstBatchHeld:
    """A full recomputation (as of AS_OF) over two batches on two connections, as a nightly
    run makes them: the first batch writes its transitions first, then stays uncommitted while
    the second writes and commits. `start()` returns once the second batch has committed;
    `release()` lets the first commit and waits for the end of the run."""

    def __init__(self, *, customer_ids: list[int], monkeypatch: Any, settings: Any) -> None:
        low, high = min(customer_ids), max(customer_ids)
        assert customer_ids == list(range(low, high + 1)), "batches by dense id ranges"
        size = (high - low) // 2 + 1
        monkeypatch.setattr(recompute, "BATCH_SIZE", size)
        settings.RECOMPUTE_WORKERS = 2
        self.first_batch = list(range(low, low + size))
        self.second_batch = list(range(low + size, high + 1))
        self._first_written = threading.Event()
        self._second_committed = threading.Event()
        self._release = threading.Event()
        self._errors: list[BaseException] = []
        self._original = recompute._on_own_connection
        monkeypatch.setattr(recompute, "_on_own_connection", self._on_own_connection)
        self._thread = threading.Thread(target=self._run)

    def _on_own_connection(self, step: recompute.RangeStep, low: int, high: int) -> Any:
        if getattr(step, "func", None) is not recompute._batch:
            return self._original(step, low, high)  # the aggregation runs as it would
        try:
            if low == self.first_batch[0]:
                # The batch's own transaction becomes a savepoint of this one.
                with transaction.atomic():
                    result = step(low, high)
                    self._first_written.set()
                    _wait(self._release)
                return result
            _wait(self._first_written)
            result = step(low, high)
            self._second_committed.set()
            return result
        finally:
            connection.close()

    def _run(self) -> None:
        try:
            run = recompute.recompute_full(trigger="test", as_of=AS_OF)
            assert (run.status, run.error) == (RecomputeStatus.SUCCEEDED, "")
        except BaseException as error:  # reported by release()
            self._errors.append(error)
        finally:
            self._second_committed.set()
            connection.close()

    def start(self) -> None:
        self._thread.start()
        _wait(self._second_committed)
        assert self._errors == []

    def release(self) -> None:
        self._release.set()
        self._thread.join()
        assert self._errors == []
