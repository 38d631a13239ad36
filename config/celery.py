"""The Celery app. Tasks live in each app's `tasks.py` and are discovered automatically by the
worker and beat; the apps whose services enqueue (by task name, `core.enqueue`) also import
their own in `AppConfig.ready()`, so that every process holds them."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("crm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
