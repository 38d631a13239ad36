"""Consent per channel: every reported change is kept as an event; the current state is the
latest event by its own time, so events that arrive out of order never resurrect an old
decision. At the same instant, opting out wins (the safe side)."""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import OperationalError, connection, transaction
from django.utils.translation import gettext as _
from psycopg.errors import LockNotAvailable

from core.errors import Conflict
from core.locks import Lock, xact_lock
from crm.models import Consent, ConsentStatus
from crm.personal_data import IdentityKey
from crm.services.identities import customers_resolve

logger = logging.getLogger(__name__)

ERROR_CONSENT_BUSY = "consent_busy"
# How long an opt-out waits for a channel call in flight to its customer (a webhook post
# answers within WEBHOOK_TIMEOUT_SECONDS, a WeCom call within 10 s) before it is refused.
OPT_OUT_WAIT_SECONDS = 30


@dataclass(frozen=True)
class ConsentOutcome:
    consent: Consent  # the current state after this event
    is_recorded: bool  # False when the same event had been reported before
    is_applied: bool  # False when a later decision already stands


@transaction.atomic
def consent_record(
    *,
    customer_id: int | None = None,
    identities: list[IdentityKey] | None = None,
    channel: str,
    status: str,
    source: str,
    occurred_at: datetime,
    actor: str,
) -> ConsentOutcome:
    """Record a consent decision of a customer (by id, or by identities: an unknown person is
    created, so that an opt-out is honoured when they are first seen elsewhere)."""
    if customer_id is None:
        assert identities, "customer_id or identities is required"
        customer_id = customers_resolve(identity_rows=[identities], actor=actor).customer_ids[0]
    # Serialise decisions about one (customer, channel) so a re-sent event is kept once.
    xact_lock(Lock.CONSENT_DECISION, f"{customer_id}:{channel}")
    with connection.cursor() as cursor:
        if status == ConsentStatus.OPTED_OUT:
            # Held until the commit, hence until the answer: a channel call about to reach
            # this customer holds the row FOR KEY SHARE from its last consent read until its
            # post returns (campaigns' dispatch), so an opt-out either is read by that call
            # or is answered after its post, never between the two.
            # The wait is bounded (a receiver that answers byte by byte must not hold an
            # opt-out for good): past it, the opt-out is refused, not recorded, and retried.
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)", [f"{OPT_OUT_WAIT_SECONDS}s"]
            )
            try:
                cursor.execute("SELECT 1 FROM crm_customer WHERE id = %s FOR UPDATE", [customer_id])
            except OperationalError as error:
                if not isinstance(error.__cause__, LockNotAvailable):
                    raise
                message = _("A message to this customer is being sent; retry in a few seconds.")
                raise Conflict(ERROR_CONSENT_BUSY, message) from error
            cursor.execute("SELECT set_config('lock_timeout', '0', true)")
        cursor.execute(
            """
            INSERT INTO crm_consentevent (customer_id, channel, status, source, occurred_at,
                                          recorded_at)
            SELECT %(customer)s, %(channel)s, %(status)s, %(source)s, %(at)s, now()
            WHERE NOT EXISTS (
                SELECT 1 FROM crm_consentevent  -- index consent_event_by_customer
                WHERE customer_id = %(customer)s AND channel = %(channel)s
                  AND status = %(status)s AND source = %(source)s AND occurred_at = %(at)s
            )
            """,
            {
                "customer": customer_id,
                "channel": channel,
                "status": status,
                "source": source,
                "at": occurred_at,
            },
        )
        is_recorded = cursor.rowcount == 1
        cursor.execute(
            """
            INSERT INTO crm_consent (customer_id, channel, status, source, changed_at)
            VALUES (%(customer)s, %(channel)s, %(status)s, %(source)s, %(at)s)
            ON CONFLICT (customer_id, channel) DO UPDATE SET
                status = EXCLUDED.status, source = EXCLUDED.source,
                changed_at = EXCLUDED.changed_at
            WHERE (crm_consent.changed_at, crm_consent.status = 'opted_out')
                < (EXCLUDED.changed_at, EXCLUDED.status = 'opted_out')
            """,
            {
                "customer": customer_id,
                "channel": channel,
                "status": status,
                "source": source,
                "at": occurred_at,
            },
        )
        is_applied = cursor.rowcount == 1
    logger.info(
        "consent.recorded",
        extra={
            "actor": actor,
            "customer_id": customer_id,
            "channel": channel,
            "status": status,
            "is_applied": is_applied,
        },
    )
    consent = Consent.objects.get(customer_id=customer_id, channel=channel)
    return ConsentOutcome(consent=consent, is_recorded=is_recorded, is_applied=is_applied)
