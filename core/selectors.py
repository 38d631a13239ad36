"""core selectors: reads only. The audit trail as the API lists it."""

from datetime import datetime

from django.db.models import QuerySet

from core.models import AuditEvent


def audit_event_list(
    *,
    actor: str | None = None,
    action: str | None = None,
    customer_id: int | None = None,
    occurred_after: datetime | None = None,
    occurred_before: datetime | None = None,
) -> QuerySet[AuditEvent]:
    """Events matching every filter given. An actor filter is the actor's code; a user's
    code (`user:7`) also finds what the user did in the admin (`admin:user:7`). Served by
    the indexes audit_actor_time, audit_customer_time and the one on occurred_at."""
    events = AuditEvent.objects.all()
    if actor:
        codes = [actor]
        if actor.startswith("user:"):
            codes.append(f"admin:{actor}")
        events = events.filter(actor__in=codes)
    if action:
        events = events.filter(action=action)
    if customer_id is not None:
        events = events.filter(customer_id=customer_id)
    if occurred_after is not None:
        events = events.filter(occurred_at__gte=occurred_after)
    if occurred_before is not None:
        events = events.filter(occurred_at__lt=occurred_before)
    return events
