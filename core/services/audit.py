"""Audit trail writes: one append-only `AuditEvent` per audited action. Callers pass ids and
field names, never personal values. `audit_record` writes in the caller's transaction, so an
action rolled back leaves no entry."""

from collections.abc import Iterable
from typing import Any

from core.models import AuditAction, AuditEvent


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
