"""Celery entry points of core: thin wrappers that call one service each, run by beat."""

from celery import shared_task
from django.utils import timezone

from core.services.api_key_usage import api_key_usage_fold
from core.services.audit import audit_prune


@shared_task(name="core.audit_prune", ignore_result=True)
def audit_prune_task() -> int:
    """Nightly: the hourly API key counts still in the cache are written first, then events
    and counts older than AUDIT_RETENTION_DAYS go. Safe to run twice."""
    now = timezone.now()
    api_key_usage_fold(now=now)
    return audit_prune(now=now)


@shared_task(name="core.api_key_usage_fold", ignore_result=True)
def api_key_usage_fold_task() -> int:
    """Every few minutes: the cache's per-hour counts of API key use into ApiKeyUsage
    (absolute counts, so a repeated or overlapping run never counts twice)."""
    return api_key_usage_fold(now=timezone.now())
