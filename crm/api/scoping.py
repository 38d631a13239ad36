"""Staff scoping in the integration API: the one place each view asks which customers the
caller may see (see crm.selectors.scoping). A key bound to a staff member, or a 导购's login on
the browsable API, reads and writes that owner's customers only; another owner's customer is
answered as unknown (404), never as forbidden, so that its existence is not told either.

Views that apply the scope declare `customer_scope = "owner"` (core.api.auth.RespectsOwnerScope
refuses scoped callers every other view that touches customers)."""

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.utils.translation import gettext
from rest_framework.request import Request

from core.errors import DomainError, NotFound
from core.models import ApiKey
from crm.models import Customer, StaffMember
from crm.personal_data import IdentityKey
from crm.selectors.customers import customer_ids_by_identities
from crm.selectors.scoping import (
    CustomerScope,
    customer_ids_outside_scope,
    customer_is_visible,
    customer_scope_of_api_key,
    customer_scope_of_user,
    scope_by_owner,
)
from crm.services.customers import ERROR_CUSTOMER_NOT_FOUND

# A bulk row naming (by its identities) a customer of another owner, refused on its own.
ERROR_CUSTOMER_OUT_OF_SCOPE = "customer_out_of_scope"
# A bulk row or a profile giving a customer to another owner than the key's.
ERROR_OWNER_OUT_OF_SCOPE = "owner_out_of_scope"


class OwnerScopeRefused(DomainError):
    status_code = 403


def request_customer_scope(request: Request) -> CustomerScope:
    """The customers the caller may see: an API key's binding, else the session user's."""
    cached = getattr(request, "_customer_scope", None)
    if cached is not None:
        return cached
    auth = request.auth
    scope = (
        customer_scope_of_api_key(auth)
        if isinstance(auth, ApiKey)
        else customer_scope_of_user(getattr(request, "user", None))
    )
    request._customer_scope = scope  # type: ignore[attr-defined]
    return scope


class OwnerScopedMixin:
    """For list and detail views of customers or customer-keyed rows: the filtered queryset
    narrowed to the caller's customers (`customer_field` names the rows' customer id column,
    "" for customers themselves). A detail view's row of another owner is a 404."""

    customer_scope = "owner"
    customer_field = "customer_id"

    def filter_queryset(self, queryset: Any) -> Any:
        queryset = super().filter_queryset(queryset)  # type: ignore[misc]
        return scope_by_owner(
            queryset,
            request_customer_scope(self.request),  # type: ignore[attr-defined]
            customer_field=self.customer_field,
        )


def customer_in_scope_or_404(request: Request, customer_id: int) -> None:
    """Refuse (404, as an unknown customer) a customer the caller may not see."""
    if not customer_is_visible(customer_id, request_customer_scope(request)):
        raise NotFound(ERROR_CUSTOMER_NOT_FOUND, gettext("No such customer."))


def customer_visible(request: Request, customer: Customer) -> bool:
    scope = request_customer_scope(request)
    return scope.sees_all or (scope.owner_id is not None and customer.owner_id == scope.owner_id)


def refs_in_scope_or_404(
    request: Request, *, customer_ids: Sequence[int], identities: Sequence[IdentityKey]
) -> None:
    """Refuse, before anything is written, a request naming (by id or by an identity) a
    customer of another owner; identities that name nobody are left to the service."""
    scope = request_customer_scope(request)
    if scope.sees_all:
        return
    named = list(customer_ids) + list(customer_ids_by_identities(list(identities)).values())
    if customer_ids_outside_scope(named, scope):
        raise NotFound(
            ERROR_CUSTOMER_OUT_OF_SCOPE,
            gettext("A named customer is not among this key's customers."),
        )


def rows_outside_scope(request: Request, rows: Sequence[Sequence[IdentityKey]]) -> set[int]:
    """Positions of the rows (each a list of identities) naming a customer the caller may not
    see (two queries for the whole batch)."""
    scope = request_customer_scope(request)
    if scope.sees_all:
        return set()
    keys = [key for row in rows for key in row]
    known = customer_ids_by_identities(keys)
    outside = set(customer_ids_outside_scope(known.values(), scope))
    return {
        position
        for position, row in enumerate(rows)
        if any(known.get(key.unique_key) in outside for key in row)
    }


RowT = TypeVar("RowT")


def rows_refuse_outside_scope(
    request: Request,
    valid: list[tuple[int, RowT]],
    rejected: list[dict[str, Any]],
    *,
    keys_of: Callable[[RowT], Sequence[IdentityKey]],
) -> tuple[list[tuple[int, RowT]], list[dict[str, Any]]]:
    """A bulk batch's valid rows without those naming (by `keys_of(row)`) another owner's
    customer, which join the rejected ones, by index. Rows naming nobody known yet stay."""
    if request_customer_scope(request).sees_all:
        return valid, rejected
    outside = rows_outside_scope(request, [keys_of(row) for _, row in valid])
    if not outside:
        return valid, rejected
    refused = [
        row_out_of_scope(index) for position, (index, _) in enumerate(valid) if position in outside
    ]
    kept = [pair for position, pair in enumerate(valid) if position not in outside]
    return kept, sorted([*rejected, *refused], key=lambda row: row["index"])


def row_out_of_scope(index: int, *, field: str = "identities") -> dict[str, Any]:
    """A bulk response's rejected row for a customer of another owner."""
    return {
        "index": index,
        "code": ERROR_CUSTOMER_OUT_OF_SCOPE,
        "errors": {field: [gettext("This customer is not among this key's customers.")]},
    }


def scope_owner_userid(request: Request) -> str | None:
    """The WeCom userid of the owner a scoped caller answers for (None: unscoped)."""
    scope = request_customer_scope(request)
    if scope.sees_all or scope.owner_id is None:
        return None
    return (
        StaffMember.objects.filter(pk=scope.owner_id).values_list("wecom_userid", flat=True).first()
    )
