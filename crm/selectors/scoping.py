"""Staff scoping (数据分级授权): which customers a caller may see. Reads only.

A user holding `crm.view_all_customers` (品牌管理员, 运营, 数据分析; superusers hold every
permission) sees every customer; any other user sees the customers whose `owner` is the staff
member bound to them (导购 / 客户经理), and none when no staff member is bound. An API key
bound to a staff member (`ApiKey.staff_member_id`) answers for that owner's customers alone;
an unbound key for every customer.

Customer-keyed rows (orders, interactions, consents, deliveries, memberships, metrics…) are
scoped through their customer: `customer_id IN (SELECT id FROM crm_customer WHERE owner_id =
…)`, served by the index on crm_customer.owner_id, so a table without a foreign key to the
customer (the deliveries ledger) is scoped the same way, and a list's page still costs one
query."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db.models import Model, Q, QuerySet

from core.models import ApiKey
from crm.models import Customer, StaffMember

VIEW_ALL_CUSTOMERS_PERMISSION = "crm.view_all_customers"

ModelT = TypeVar("ModelT", bound=Model)


@dataclass(frozen=True)
class CustomerScope:
    """Every customer (`sees_all`), or the customers of one owner (`owner_id`; None: none)."""

    sees_all: bool
    owner_id: int | None = None

    @property
    def sees_none(self) -> bool:
        return not self.sees_all and self.owner_id is None


ALL_CUSTOMERS = CustomerScope(sees_all=True)
NO_CUSTOMERS = CustomerScope(sees_all=False)


def customer_scope_of_user(user: Any) -> CustomerScope:
    """The scope of an admin user (or of the session user of the browsable API)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_CUSTOMERS
    if user.has_perm(VIEW_ALL_CUSTOMERS_PERMISSION):
        return ALL_CUSTOMERS
    cached = getattr(user, "_crm_owner_id", None)
    if cached is None:
        # One query per request at most: the user object lives as long as the request.
        staff_id = StaffMember.objects.filter(user_id=user.pk).values_list("pk", flat=True).first()
        cached = user._crm_owner_id = (staff_id,)
    return CustomerScope(sees_all=False, owner_id=cached[0])


def customer_scope_of_api_key(api_key: ApiKey) -> CustomerScope:
    if api_key.staff_member_id is None:
        return ALL_CUSTOMERS
    return CustomerScope(sees_all=False, owner_id=api_key.staff_member_id)


def _owned_customer_ids(owner_id: int) -> QuerySet[Customer, Any]:
    return Customer.objects.filter(owner_id=owner_id).values("pk")


def scope_by_owner(
    queryset: QuerySet[ModelT], scope: CustomerScope, *, customer_field: str = "customer_id"
) -> QuerySet[ModelT]:
    """`queryset` narrowed to the rows of the customers `scope` may see. `customer_field`
    names the column holding the customer's id; "" when the rows are customers."""
    if scope.sees_all:
        return queryset
    if scope.owner_id is None:
        return queryset.none()
    if not customer_field:
        return queryset.filter(owner_id=scope.owner_id)
    return queryset.filter(**{f"{customer_field}__in": _owned_customer_ids(scope.owner_id)})


def owned_condition(scope: CustomerScope, *, customer_path: str) -> Q:
    """A condition on rows joined to their customer through `customer_path` (e.g.
    "customer", "memberships__customer"): true of the rows `scope` may see. For annotations
    (a count of a tag's holders), where an empty queryset cannot stand."""
    if scope.sees_all:
        return Q()
    # No customer has owner 0 (ids start at 1): a scope seeing nobody counts nothing.
    return Q(**{f"{customer_path}__owner_id": scope.owner_id or 0})


def customers_visible_to_user(user: Any) -> QuerySet[Customer]:
    return scope_by_owner(Customer.objects.all(), customer_scope_of_user(user), customer_field="")


def customer_ids_outside_scope(customer_ids: Iterable[int], scope: CustomerScope) -> list[int]:
    """The ids among `customer_ids` of existing customers `scope` may not see, sorted (one
    query; none when the scope sees all)."""
    ids = set(customer_ids)
    if scope.sees_all or not ids:
        return []
    outside = Customer.objects.filter(pk__in=ids)
    if scope.owner_id is not None:
        outside = outside.filter(~Q(owner_id=scope.owner_id) | Q(owner_id__isnull=True))
    return sorted(outside.values_list("pk", flat=True))


def customer_is_visible(customer_id: int, scope: CustomerScope) -> bool:
    """Whether `scope` may see this customer (an unknown id: False unless it sees all)."""
    if scope.sees_all:
        return True
    if scope.owner_id is None:
        return False
    return Customer.objects.filter(pk=customer_id, owner_id=scope.owner_id).exists()
