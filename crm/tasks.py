"""Celery entry points of the CRM: thin wrappers that call one service each."""

import logging

from celery import shared_task
from django.conf import settings

from crm.wecom.registry import SYNC_SCOPES, SYNC_STEPS
from crm.wecom.sync import wecom_sync_run

logger = logging.getLogger(__name__)


@shared_task(name="crm.wecom_sync")
def wecom_sync_task(trigger: str = "schedule", scopes: list[str] | None = None) -> int | None:
    """The nightly full sync with WeCom (and on-demand runs): resumes a run left running.
    Returns at once where WeCom is not configured (no corp id or secret)."""
    if not (settings.WECOM_CORP_ID and settings.WECOM_SECRET):
        logger.info("wecom.sync_not_configured")
        return None
    wanted = scopes or [scope for scope in SYNC_SCOPES if scope in SYNC_STEPS]
    return wecom_sync_run(scopes=wanted, trigger=trigger).pk
