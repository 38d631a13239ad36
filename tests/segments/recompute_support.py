"""Builders for recomputation tests: orders placed a number of business days before a date."""

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings

from crm.models import Customer, Order, OrderStatus
from segments.models import CustomerMetrics
from tests.factories import CustomerFactory, OrderFactory

AS_OF = date(2026, 6, 30)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    """A moment of business day `day` (Asia/Shanghai)."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=ZoneInfo(settings.TIME_ZONE))


def order(
    customer: Customer,
    *,
    days_ago: int,
    amount: str | Decimal = "100.00",
    refunded: str | Decimal = "0.00",
    status: str = OrderStatus.PAID,
    as_of: date = AS_OF,
    hour: int = 12,
) -> Order:
    return OrderFactory(
        customer=customer,
        paid_at=at(as_of - timedelta(days=days_ago), hour),
        total_amount=Decimal(amount),
        refunded_amount=Decimal(refunded),
        status=status,
    )


def buyer(*, recency: int, orders: int, spend: int, as_of: date = AS_OF) -> Customer:
    """A customer whose last paid order is `recency` days old, with `orders` paid orders on
    consecutive earlier days and `spend` in all (the earlier orders 10.00 each)."""
    customer = CustomerFactory()
    order(customer, days_ago=recency, amount=Decimal(spend - 10 * (orders - 1)), as_of=as_of)
    for extra in range(1, orders):
        order(customer, days_ago=recency + extra, amount="10.00", as_of=as_of)
    return customer


def metrics(customer: Customer) -> CustomerMetrics:
    return CustomerMetrics.objects.get(customer=customer)
