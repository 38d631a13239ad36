"""First touch through WeCom: the channel QR code (渠道活码) and staff member that brought a
customer in, recorded once from their first relation's `state` (渠道参数); the code's tags are
given and its source channel set on a customer who has none."""

import logging
from datetime import datetime

from django.db import connection, transaction

from crm.models import ContactWay, Customer, TagSource
from crm.services.tags import tags_assign

logger = logging.getLogger(__name__)


@transaction.atomic
def acquisition_record(
    *, customer_id: int, state: str, staff_member_id: int | None, acquired_at: datetime, actor: str
) -> bool:
    """Record how the customer came (unless a first touch is recorded already: it is kept) and
    apply the contact way's tags and channel. Returns whether anything was recorded."""
    contact_way = (
        ContactWay.objects.filter(state=state).prefetch_related("auto_tags__group").first()
        if state
        else None
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO crm_customeracquisition
                (customer_id, contact_way_id, state, staff_member_id, acquired_at)
            VALUES (%s, %s, %s, %s, %s)
            ON CONFLICT (customer_id) DO NOTHING
            """,
            [
                customer_id,
                contact_way.pk if contact_way else None,
                state,
                staff_member_id,
                acquired_at,
            ],
        )
        if cursor.rowcount == 0:
            return False
    if contact_way is not None:
        tags = list(contact_way.auto_tags.all())
        if tags:
            tags_assign(customer_ids=[customer_id], tags=tags, source=TagSource.RULE, actor=actor)
        if contact_way.source_channel:
            Customer.objects.filter(pk=customer_id, source_channel="").update(
                source_channel=contact_way.source_channel
            )
    logger.info(
        "wecom.acquisition_recorded",
        extra={"customer_id": customer_id, "contact_way_id": contact_way and contact_way.pk},
    )
    return True
