"""Staff scoping in the admin (数据分级授权): a user without `crm.view_all_customers` (a 导购)
sees, on every page showing customers or rows of a customer, only the customers of the staff
member bound to them (crm.selectors.scoping). The scope is applied in `get_queryset`, which
the admin reads for everything: the change list and its counts (EstimatedCountPaginator's
included), the search, the filters' counts, the change page (another owner's customer is
"not found": the admin sends the user back to its index), the actions, the autocompletes and
the exports built on the list.

Pages that count every customer (a segment's size and portrait, a campaign's dry run and
report, recomputation figures) are for users who see every customer."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from crm.selectors.scoping import (
    VIEW_ALL_CUSTOMERS_PERMISSION,
    customer_scope_of_user,
    scope_by_owner,
)


def sees_all_customers(request: HttpRequest) -> bool:
    return request.user.has_perm(VIEW_ALL_CUSTOMERS_PERMISSION)


class CustomerScopedAdmin(admin.ModelAdmin):
    """Rows of the customers the user may see. `customer_field` names the column holding the
    rows' customer id ("" when the rows are customers)."""

    customer_field = "customer_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return scope_by_owner(
            super().get_queryset(request),
            customer_scope_of_user(request.user),
            customer_field=self.customer_field,
        )


class AllCustomersAdmin(admin.ModelAdmin):
    """A page whose figures count every customer: only for users who see them all."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return sees_all_customers(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_customers(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return sees_all_customers(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_customers(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return sees_all_customers(request) and super().has_delete_permission(request, obj)
