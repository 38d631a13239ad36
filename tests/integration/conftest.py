"""A real Celery worker, on the configured broker (Redis in CI, the file broker on a bare
machine), against the test database. Each test uses its own queue so that no other worker on
the machine takes its tasks: the worker consumes that queue and publishes the tasks it queues
itself (a pipeline step queuing the next) to it too.

`celery_worker` is one worker with the defaults; `start_celery_worker(env=..., pool=...,
concurrency=...)` starts more (a second one after the first was killed takes over the same
queue). Tasks the test process itself publishes without naming a queue (what a service
enqueues, after its commit) go to the shared default queue unless the test asks for
`publish_to_test_queue`."""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from pathlib import Path

import pytest
from kombu import Exchange, Queue

from config.celery import app
from tests.support import subprocess_database_url

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20

# The worker's entry point: `celery -A config worker`, with the test's queue as the default
# queue of the tasks it publishes, which no command-line option of `celery worker` sets.
WORKER_PROGRAM = """
import os, sys
from config.celery import app
app.conf.task_default_queue = os.environ["CRM_TEST_QUEUE"]
app.worker_main(["worker", *sys.argv[1:]])
"""


class Worker:
    def __init__(self, queue: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.queue = queue
        self.process = process
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (it leads its own process
        group), as a machine losing power would: nothing is acknowledged or cleaned up."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """A warm shutdown (its pool processes exit with it), or a kill when it hangs."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def celery_queue() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start_celery_worker(
    transactional_db: None, tmp_path: Path, celery_queue: str
) -> Iterator[Callable[..., Worker]]:
    """`start_celery_worker(env={...}, pool="prefork", concurrency=1)`: a new worker on the
    test's queue, with `env` added to its environment; every worker is stopped at the end."""
    started: list[Worker] = []

    def start(
        *, env: Mapping[str, str] | None = None, pool: str = "prefork", concurrency: int = 1
    ) -> Worker:
        name = f"{celery_queue}-{len(started) + 1}"
        log_path = tmp_path / f"{name}.log"
        worker_env = {
            **os.environ,
            "DATABASE_URL": subprocess_database_url(),
            "CELERY_BROKER_URL": app.conf.broker_url,
            "CRM_TEST_QUEUE": celery_queue,
            **(env or {}),
        }
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    WORKER_PROGRAM,
                    "-Q",
                    celery_queue,
                    f"--concurrency={concurrency}",
                    f"--pool={pool}",
                    "--loglevel=INFO",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"{name}@%h",
                ],
                cwd=ROOT,
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, to kill with its pool
            )
        worker = Worker(celery_queue, process, log_path)
        started.append(worker)
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while "ready." not in worker.log():
            if process.poll() is not None or time.monotonic() > deadline:
                worker.kill()
                pytest.fail(f"worker did not start:\n{worker.log()}")
            time.sleep(0.2)
        return worker

    yield start
    for worker in started:
        worker.stop()
    _queue_delete(celery_queue)


def _queue_delete(name: str) -> None:
    """Drop the test's queue, its binding and whatever a killed worker left in it: no worker
    will ever consume it again. Declared first (as Celery creates it), so that every broker
    knows what to delete."""
    with app.connection_for_write() as broker:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(broker.default_channel)
        queue.declare()
        queue.delete()


@pytest.fixture
def celery_worker(start_celery_worker: Callable[..., Worker]) -> Worker:
    return start_celery_worker()


@pytest.fixture
def publish_to_test_queue(celery_queue: str) -> Iterator[str]:
    """Tasks published by this process without a queue go to the test's queue meanwhile."""
    default = app.conf.task_default_queue
    app.conf.task_default_queue = celery_queue
    try:
        yield celery_queue
    finally:
        app.conf.task_default_queue = default


def wait_for(condition, timeout: float = 30, worker: Worker | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time" + (f":\n{worker.log()}" if worker else ""))
        time.sleep(0.2)
