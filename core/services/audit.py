"""Audit trail writes: one append-only `AuditEvent` per audited action. Callers pass ids and
field names, never personal values. `audit_record` writes in the caller's transaction, so an
action rolled back leaves no entry.

Changes (`audit_change`) carry `detail = {"before": {...}, "after": {...}}` with only the fields
that changed, as JSON values; a secret (a webhook's signing secret, a key's digest) is written
as SECRET_CHANGED, never its value. The table refuses UPDATE, TRUNCATE and DELETE in the
database itself (core migration 0004); `audit_prune` alone deletes, by declaring itself in its
transaction."""

import json
import logging
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction

from core.models import ApiKeyUsage, AuditAction, AuditEvent

logger = logging.getLogger(__name__)

SECRET_CHANGED = "changed"  # noqa: S105 - the word written instead of a secret
# Rows deleted per statement (and transaction) by the prune: small enough that each
# transaction holds its locks for well under a second, large enough that a year of events
# goes in a few hundred statements.
PRUNE_BATCH = 5_000


def audit_record(
    *,
    actor: str,
    action: AuditAction | str,
    object_type: str = "",
    object_id: object = "",
    customer_id: int | None = None,
    fields: Iterable[str] = (),
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor,
        action=str(action),
        object_type=object_type,
        object_id="" if object_id is None else str(object_id),
        customer_id=customer_id,
        fields=sorted(set(fields)),
        detail=detail or {},
    )


def json_safe(value: Any) -> Any:
    """`value` as JSON would carry it (dates as ISO texts, decimals as texts, models as ids)."""
    return json.loads(json.dumps(value, cls=_Encoder))


class _Encoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, models.Model):
            return o.pk
        if isinstance(o, set | frozenset):
            return sorted(o)
        return super().default(o)


def audit_values(obj: models.Model, fields: Iterable[str]) -> dict[str, Any]:
    """The named fields of `obj` (a foreign key by its id) as JSON values: a snapshot to
    compare before and after a change."""
    values: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        values[name] = getattr(obj, field.attname if field.concrete else name)  # type: ignore[union-attr]
    return dict(json_safe(values))


def audit_diff(
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    secret_fields: Collection[str] = (),
) -> dict[str, dict[str, Any]]:
    """{"before": ..., "after": ...} holding only the fields whose values differ; a missing
    field reads as None. Secrets are written as SECRET_CHANGED."""
    old, new = json_safe(dict(before)), json_safe(dict(after))
    changed = sorted(name for name in {*old, *new} if old.get(name) != new.get(name))
    return {
        "before": {
            name: SECRET_CHANGED if name in secret_fields else old[name]
            for name in changed
            if name in old
        },
        "after": {
            name: SECRET_CHANGED if name in secret_fields else new[name]
            for name in changed
            if name in new
        },
    }


def audit_change(
    *,
    actor: str,
    action: AuditAction | str,
    object_type: str,
    object_id: object,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    secret_fields: Collection[str] = (),
    operation: str = "",
) -> AuditEvent:
    """One create, change or delete of a policy, segment, campaign, rule or key: who, and the
    fields before -> after. `operation` names a change that is a step of its own (launch,
    pause, revoke)."""
    detail: dict[str, Any] = audit_diff(before or {}, after or {}, secret_fields=secret_fields)
    if operation:
        detail["operation"] = operation
    return audit_record(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        fields=[*detail["before"], *detail["after"]],
        detail=detail,
    )


def audit_retention() -> timedelta:
    return timedelta(days=settings.AUDIT_RETENTION_DAYS)


def audit_prune(*, now: datetime) -> int:
    """Delete the events (and hourly API key counts) older than AUDIT_RETENTION_DAYS before
    `now`, PRUNE_BATCH rows per transaction, in the order of their ids; how many events went.
    Safe to run twice and beside the writers: new events are never old enough."""
    cutoff = now - audit_retention()
    deleted = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            # The trigger of core migration 0004 lets this transaction's DELETE through; the
            # setting is reset before the transaction ends, even inside a caller's.
            cursor.execute("SELECT set_config('crm.audit_prune', 'on', true)")
            cursor.execute(
                """
                DELETE FROM core_auditevent WHERE id = ANY(ARRAY(
                    SELECT id FROM core_auditevent WHERE occurred_at < %s ORDER BY id LIMIT %s
                ))
                """,
                [cutoff, PRUNE_BATCH],
            )
            batch = cursor.rowcount
            cursor.execute("SELECT set_config('crm.audit_prune', 'off', true)")
        deleted += batch
        if batch < PRUNE_BATCH:
            break
    usage_deleted, _ = ApiKeyUsage.objects.filter(hour__lt=cutoff).delete()
    logger.info(
        "audit.pruned",
        extra={"events": deleted, "api_key_usage": usage_deleted, "cutoff": cutoff.isoformat()},
    )
    return deleted


# The sensitive personal data (敏感个人信息) a customer's page or answer shows unmasked.
SENSITIVE_FIELDS = ("birthday", "identities")


def personal_data_view_record(
    *, actor: str, customer_ids: Collection[int], fields: Iterable[str] = SENSITIVE_FIELDS
) -> AuditEvent | None:
    """One `view_personal_data` event for one page or answer that showed the sensitive data of
    these customers unmasked: for one customer its id, for a list the ids in the detail. One
    INSERT; nothing when no customer was shown."""
    ids = sorted(set(customer_ids))
    if not ids:
        return None
    if len(ids) == 1:
        return audit_record(
            actor=actor,
            action=AuditAction.VIEW_PERSONAL_DATA,
            object_type="customer",
            object_id=ids[0],
            customer_id=ids[0],
            fields=fields,
        )
    return audit_record(
        actor=actor,
        action=AuditAction.VIEW_PERSONAL_DATA,
        object_type="customer",
        fields=fields,
        detail={"customer_ids": ids},
    )
