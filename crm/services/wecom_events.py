"""WeCom's callback events: stored raw as they arrive (`wecom_event_store`, append-only, once
per message however often WeCom delivers it), then applied by a task after commit
(`wecom_event_process`) through the handler crm.wecom.registry holds for the event, and swept
up when their task was lost (`wecom_events_requeue`)."""

import hashlib
import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from wechatpy.exceptions import WeChatClientException

from crm import enqueue
from crm.models import WeComEvent, WeComEventStatus
from crm.personal_data import decrypt, encrypt, hash_identity
from crm.wecom.callbacks import ParsedEvent, xml_parse
from crm.wecom.registry import HANDLERS, CallbackEvent

logger = logging.getLogger(__name__)

# Attempts of one event before it stays failed (the task's retries and the sweep's together).
MAX_ATTEMPTS = 5
# An event still pending this long after it arrived lost its task (a worker died before
# acknowledging it, or the broker dropped it): the sweep queues it again. Well above the
# time a queued task waits on a busy worker, so that the sweep seldom doubles a live one (a
# double is harmless: the second finds the event done or locked).
STALE_AFTER = timedelta(minutes=10)
# Events queued again per sweep: a backlog drains over several sweeps, each quick.
SWEEP_BATCH = 1000

OUTCOMES = frozenset({WeComEventStatus.APPLIED, WeComEventStatus.IGNORED})
# What `wecom_event_process` answers besides the outcomes stored.
SKIPPED = "skipped"  # gone (erased), already done, or being processed by another worker
ERROR_BAD_OUTCOME = "bad_outcome"

_INSERT_SQL = """
    INSERT INTO crm_wecomevent (received_at, message_hash, event, change_type, event_at,
        message_encrypted, subject_hash, status, attempts, error_code)
    VALUES (%(received_at)s, %(message_hash)s, %(event)s, %(change_type)s, %(event_at)s,
        %(message_encrypted)s, %(subject_hash)s, 'pending', 0, '')
    ON CONFLICT (message_hash) DO NOTHING
    RETURNING id
"""


def message_hash(message: str) -> str:
    """SHA-256 of the decrypted message: WeCom's retry of an event carries the same bytes."""
    return hashlib.sha256(message.encode()).hexdigest()


def subject_hash(external_userid: str) -> str:
    """The keyed hash of the external contact an event names, as its `wecom` identity holds
    it (namespace: the corp id), so that erasure finds the person's events; "" for none."""
    if not external_userid:
        return ""
    return hash_identity("wecom", settings.WECOM_CORP_ID, external_userid)


def wecom_event_store(*, parsed: ParsedEvent, received_at: datetime) -> int | None:
    """Store one decrypted event (one statement) and queue its processing after commit.
    Returns the new event's id, or None when the same message was stored before (nothing is
    written or queued again: the first delivery's task applies it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            {
                "received_at": received_at,
                "message_hash": message_hash(parsed.message),
                "event": parsed.event,
                "change_type": parsed.change_type,
                "event_at": parsed.event_at,
                "message_encrypted": encrypt(parsed.message),
                "subject_hash": subject_hash(parsed.external_userid),
            },
        )
        row = cursor.fetchone()
    if row is None:
        logger.info(
            "wecom.event_duplicate",
            extra={"event": parsed.event, "change_type": parsed.change_type},
        )
        return None
    event_id = int(row[0])
    enqueue.wecom_event_process(event_id=event_id)
    logger.info(
        "wecom.event_stored",
        extra={"event_id": event_id, "event": parsed.event, "change_type": parsed.change_type},
    )
    return event_id


class BadOutcome(Exception):
    """A handler answered something else than "applied" or "ignored"."""


def _callback_event(event: WeComEvent) -> CallbackEvent:
    # Checked when it arrived; only its fields are read again.
    fields = xml_parse(decrypt(event.message_encrypted))
    return CallbackEvent(
        event=event.event,
        change_type=event.change_type,
        event_at=event.event_at,
        fields=fields,
        event_id=event.pk,
    )


def _error_code(error: Exception) -> str:
    """What is recorded of a handler's failure: WeCom's errcode, or the exception's type (its
    message may quote personal data)."""
    if isinstance(error, BadOutcome):
        return ERROR_BAD_OUTCOME
    if isinstance(error, WeChatClientException):
        return f"wecom_{error.errcode}"[:64]
    return type(error).__name__[:64]


def wecom_event_process(*, event_id: int) -> str:
    """Apply one stored event through its handler, once: the event's row is locked (an event
    another worker holds is skipped, not waited for) and its outcome is written in the same
    transaction as the handler's writes. Answers the status written ("applied", "ignored" when
    no handler is registered or the handler ignored it, "failed") or SKIPPED for an event that
    is gone, done, or locked. A failing handler's writes are rolled back; its error code and
    the attempt are recorded."""
    with transaction.atomic():
        event = (
            WeComEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, status__in=[WeComEventStatus.PENDING, WeComEventStatus.FAILED])
            .first()
        )
        if event is None:
            return SKIPPED
        handler = HANDLERS.get((event.event, event.change_type))
        error_code = ""
        if handler is None:
            status = WeComEventStatus.IGNORED
        else:
            try:
                with transaction.atomic():
                    outcome = handler(_callback_event(event))
                    if outcome not in OUTCOMES:
                        raise BadOutcome(ERROR_BAD_OUTCOME)
                status = WeComEventStatus(outcome)
            except Exception as error:
                status = WeComEventStatus.FAILED
                error_code = _error_code(error)
                logger.warning(
                    "wecom.event_failed",
                    extra={"event_id": event.pk, "error_code": error_code},
                    exc_info=not isinstance(error, WeChatClientException | BadOutcome),
                )
        event.status = status
        event.attempts += 1
        event.processed_at = timezone.now()
        event.error_code = error_code
        event.save(update_fields=["status", "attempts", "processed_at", "error_code"])
    logger.info(
        "wecom.event_processed",
        extra={"event_id": event_id, "status": str(status), "attempts": event.attempts},
    )
    return str(status)


def wecom_events_requeue(*, now: datetime) -> int:
    """Queue again the events whose task was lost: pending STALE_AFTER after they arrived, or
    failed with attempts left STALE_AFTER after their last attempt (a retry lost). Oldest
    first, at most SWEEP_BATCH. Returns how many were queued."""
    stale = now - STALE_AFTER
    event_ids = list(
        WeComEvent.objects.filter(
            Q(status=WeComEventStatus.PENDING, received_at__lt=stale)
            | Q(
                status=WeComEventStatus.FAILED,
                attempts__lt=MAX_ATTEMPTS,
                processed_at__lt=stale,
            )
        )
        .order_by("received_at")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for event_id in event_ids:
        enqueue.wecom_event_process(event_id=event_id)
    if event_ids:
        logger.warning("wecom.events_requeued", extra={"count": len(event_ids)})
    return len(event_ids)
