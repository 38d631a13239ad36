"""Order reads: the filtered list (items prefetched in one query) and one order."""

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from crm.models import Order, OrderItem


def order_list(
    *,
    customer_id: int | None = None,
    source: str | None = None,
    status: str | None = None,
    paid_since: datetime | None = None,
    paid_until: datetime | None = None,
    updated_since: datetime | None = None,
) -> QuerySet[Order]:
    orders = Order.objects.prefetch_related(
        Prefetch("items", queryset=OrderItem.objects.order_by("line_no"))
    )
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)  # index order_by_customer_paid
    if source:
        orders = orders.filter(source=source)
    if status:
        orders = orders.filter(status=status)
    if paid_since is not None:
        orders = orders.filter(paid_at__gte=paid_since)
    if paid_until is not None:
        orders = orders.filter(paid_at__lt=paid_until)
    if updated_since is not None:
        orders = orders.filter(updated_at__gte=updated_since)
    return orders
