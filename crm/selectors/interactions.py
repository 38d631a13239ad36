"""Interaction reads: selectors only, no writes."""

from django.db.models import QuerySet

from crm.models import Interaction


def customer_interaction_list(*, customer_id: int) -> QuerySet[Interaction]:
    """A customer's interactions, the latest first. Served by index interaction_by_customer
    (customer, kind, occurred_at): one customer's rows are found by its first column, then
    sorted; slice the result to bound it."""
    return Interaction.objects.filter(customer_id=customer_id).order_by("-occurred_at", "-id")
