"""The Celery app. Tasks live in each app's `tasks.py` and are discovered automatically by the
worker and beat; the apps whose services enqueue (by task name, `core.enqueue`) also import
their own in `AppConfig.ready()`, so that every process holds them.

The handlers Celery sets up for the worker's and beat's logs (its own, in place of Django's)
get the redaction of config.logging, as Django's handlers do."""

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from config.logging import redact_handlers_of

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_celery_logs(logger: logging.Logger, **kwargs: Any) -> None:
    redact_handlers_of(logger)
