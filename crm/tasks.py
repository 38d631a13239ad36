"""Celery entry points of the CRM: thin wrappers that take ids and call one service."""

import logging

from celery import shared_task

from crm.models import Customer
from crm.services.merges import customers_merge

logger = logging.getLogger(__name__)


@shared_task(name="crm.customers_merge")
def customers_merge_task(customer_ids: list[int], actor: str, reason: str) -> int | None:
    """Merge customers an operator found to be one person. Safe to run twice: a second run
    finds the merged customers gone and follows their merge records to the survivor."""
    if Customer.objects.filter(pk__in=customer_ids).count() < 1:
        logger.info("customers_merge.nothing_left", extra={"customer_ids": customer_ids})
        return None
    return customers_merge(customer_ids=customer_ids, actor=actor, reason=reason)
