"""Celery entry points of the console: thin wrappers that call one function each."""

from celery import shared_task

from console.overview import overview_refresh


@shared_task(name="console.overview_refresh", ignore_result=True)
def overview_refresh_task() -> None:
    """The overview's figures computed ahead (every few minutes, by beat). A run that waited
    past its interval in the queue expires (the schedule's `expire_seconds`): the next one
    comes soon."""
    overview_refresh()
