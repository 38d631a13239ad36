"""Celery entry points of the CRM: thin, id-taking, safe to run twice. Published after commit
(crm.enqueue)."""

import logging

from celery import Task, shared_task
from django.conf import settings
from django.utils import timezone

from crm.models import WeComEventStatus
from crm.services import wecom_events
from crm.wecom.registry import SYNC_SCOPES
from crm.wecom.sync import wecom_sync_run
from crm.wecom.tag_push import wecom_tag_pushes_send

logger = logging.getLogger(__name__)

# Seconds before each retry of an event whose handler failed (WeCom busy, a lock timeout):
# 30 s, 2 min, 8 min, 32 min; then it stays failed, shown in the admin.
RETRY_COUNTDOWNS = (30, 120, 480, 1920)


@shared_task(name="crm.wecom_event_process", bind=True, max_retries=len(RETRY_COUNTDOWNS))
def wecom_event_process_task(self: Task, event_id: int) -> str:
    """Apply one stored callback event; retried with backoff while its handler fails."""
    status = wecom_events.wecom_event_process(event_id=event_id)
    retries = self.request.retries or 0
    if status == WeComEventStatus.FAILED and retries < len(RETRY_COUNTDOWNS):
        raise self.retry(countdown=RETRY_COUNTDOWNS[retries])
    return status


@shared_task(name="crm.wecom_events_sweep")
def wecom_events_sweep_task() -> int:
    """Every few minutes: queue again the events whose task was lost."""
    return wecom_events.wecom_events_requeue(now=timezone.now())


@shared_task(name="crm.wecom_sync")
def wecom_sync_task(trigger: str = "schedule", scopes: list[str] | None = None) -> int | None:
    """The nightly full sync with WeCom (and on-demand runs): resumes a run left running.
    Returns at once where WeCom is not configured (no corp id or secret)."""
    if not (settings.WECOM_CORP_ID and settings.WECOM_SECRET):
        logger.info("wecom.sync_not_configured")
        return None
    return wecom_sync_run(scopes=scopes or list(SYNC_SCOPES), trigger=trigger).pk


@shared_task(name="crm.wecom_tag_push", ignore_result=True)
def wecom_tag_push_task() -> dict[str, int]:
    """After a tag change here, and every five minutes (beat): push the tag changes waiting for
    WeCom. Safe to run twice, or two at once."""
    return wecom_tag_pushes_send()
