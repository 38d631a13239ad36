"""Full sync with WeCom (the first import and the nightly reconciliation): one WeComSyncRun
walks the scopes asked for, in SYNC_SCOPES order, through each scope's step. A step reads WeCom
page by page and writes through the same services as the callbacks, so a second run writes
nothing; it saves its cursor after each page it applied (`SyncContext.cursor_save`, committed
with that page's writes), so a run stopped halfway resumes from there, and counts the changes
it made (`SyncContext.count`). One run at a time: starting one while a process walks another
returns that one untouched (`is_walked_elsewhere`); a run left running by a process that died
is resumed by the next start."""

import logging
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.locks import Lock, session_lock
from crm.models import WeComSyncRun, WeComSyncStatus
from crm.wecom.client import wecom_client
from crm.wecom.registry import SYNC_SCOPES, SYNC_STEPS, SyncContext

logger = logging.getLogger(__name__)

ERROR_SYNC_FAILED = "wecom_sync_failed"


def _run_start(scopes: Sequence[str], trigger: str) -> WeComSyncRun:
    running = WeComSyncRun.objects.filter(status=WeComSyncStatus.RUNNING).first()
    if running is not None:
        return running
    try:
        with transaction.atomic():
            return WeComSyncRun.objects.create(scopes=list(scopes), trigger=trigger)
    except IntegrityError:  # another process started one meanwhile: resume that one
        return WeComSyncRun.objects.get(status=WeComSyncStatus.RUNNING)


def wecom_sync_run(*, scopes: Sequence[str], trigger: str) -> WeComSyncRun:
    """Run (or resume) a full sync of `scopes` to its end; returns the finished run, or the
    running one untouched when another process is walking it."""
    with session_lock(Lock.WECOM_SYNC) as obtained:
        if not obtained:
            running = WeComSyncRun.objects.filter(status=WeComSyncStatus.RUNNING).first()
            if running is not None:
                logger.info("wecom.sync_busy", extra={"sync_run_id": running.pk})
                return running
            # The other process finished between the lock and the read: this one waits its turn.
            with session_lock(Lock.WECOM_SYNC, wait=True):
                return _walk(scopes, trigger)
        return _walk(scopes, trigger)


def is_walked_elsewhere(run: WeComSyncRun) -> bool:
    """Whether `wecom_sync_run` returned a run another process is walking."""
    return run.status == WeComSyncStatus.RUNNING


def _walk(scopes: Sequence[str], trigger: str) -> WeComSyncRun:
    wanted = [s for s in SYNC_SCOPES if s in scopes]
    run = _run_start(wanted, trigger)
    context = SyncContext(run, wecom_client())
    logger.info("wecom.sync_started", extra={"sync_run_id": run.pk, "scopes": run.scopes})
    try:
        for scope in [s for s in SYNC_SCOPES if s in run.scopes]:
            if context.cursor(scope).get("done"):
                continue
            SYNC_STEPS[scope](context)
            context.cursor_save(scope, {"done": True})
    except Exception as error:
        WeComSyncRun.objects.filter(pk=run.pk).update(
            status=WeComSyncStatus.FAILED,
            error=f"{type(error).__name__}: {getattr(error, 'errcode', '')}"[:255],
            finished_at=timezone.now(),
        )
        logger.exception("wecom.sync_failed", extra={"sync_run_id": run.pk})
        raise
    WeComSyncRun.objects.filter(pk=run.pk).update(
        status=WeComSyncStatus.FINISHED, finished_at=timezone.now()
    )
    run.refresh_from_db()
    logger.info("wecom.sync_finished", extra={"sync_run_id": run.pk, "changes": run.changes})
    return run
