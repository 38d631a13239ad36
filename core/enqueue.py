"""Enqueueing: the one way services queue a Celery task, once the caller's transaction commits,
by the task's stable `name=`. Each app wraps it in a small module of its own (`segments.enqueue`,
`campaigns.enqueue`), one typed function per task, so that services never import a tasks module:
tasks import services, never the reverse.

The task is looked up in the Celery app's registry, so its own options and
`task_always_eager` apply exactly as with `delay`. Celery's autodiscovery imports the tasks
modules only in the worker and beat; every app whose services enqueue imports its tasks
module in `AppConfig.ready()`, so that the web process and the tests hold them as well."""

from typing import Any

from celery import current_app
from celery.app.task import Task
from django.db import transaction


def enqueue_on_commit(task_name: str, *args: Any, **kwargs: Any) -> None:
    """`delay(*args, **kwargs)` of the task named `task_name` once the caller's transaction
    commits (at once outside a transaction), as Celery's `delay_on_commit`: nothing is
    published for a transaction that rolls back. An unknown name fails here, in the caller."""
    task = current_app.tasks[task_name]
    # `publish` is looked up when the callback runs: the tests' `enqueued` fixture replaces it.
    transaction.on_commit(lambda: publish(task, args, kwargs))


def publish(task: Task, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Send the task's message (under `task_always_eager`, run it in this process)."""
    task.apply_async(args, kwargs)
