"""API authentication and authorisation: `Authorization: Api-Key <key>`, and deny by default.

Every API view names its `scope_resource`; safe methods need `<resource>:read`, others
`<resource>:write`. A view may instead name one `scope` that every method needs (the PIPL
export and erasure: `personal_data:read`, `personal_data:erase`). A view without either is
refused to everyone. Staff users logged in to the admin may use the browsable API read-only
views and the docs.
"""

from typing import TYPE_CHECKING, Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from core.client_ip import client_ip
from core.models import ApiKey
from core.services.api_keys import ApiKeyRefused, api_key_authenticate

if TYPE_CHECKING:
    from rest_framework.views import APIView

KEYWORD = "Api-Key"
PERSONAL_DATA_SCOPE = "personal_data:read"
PERSONAL_DATA_ERASE_SCOPE = "personal_data:erase"
# Users without it see only the customers they own (crm.selectors.scoping).
VIEW_ALL_CUSTOMERS_PERMISSION = "crm.view_all_customers"
ERROR_OWNER_SCOPE = "owner_scope_refused"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _sep, raw_key = header.partition(" ")
        if keyword != KEYWORD:
            return None
        try:
            api_key = api_key_authenticate(raw_key.strip(), client_ip=client_ip(request._request))
        except ApiKeyRefused as refusal:  # expired, or not from an allowed address: say which
            raise exceptions.AuthenticationFailed(refusal.message, code=refusal.code) from None
        if api_key is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."))
        return (None, api_key)

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`",
        }


def required_scope(request: Request, view: "APIView") -> str | None:
    scope = getattr(view, "scope", None)
    if scope is not None:
        return str(scope)
    resource = getattr(view, "scope_resource", None)
    if resource is None:
        return None
    access = "read" if request.method in permissions.SAFE_METHODS else "write"
    # A POST that only reads (a lookup or a preview) declares itself read-only.
    if request.method == "POST" and getattr(view, "post_is_read", False):
        access = "read"
    return f"{resource}:{access}"


def _is_staff(request: Request) -> bool:
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


class HasScope(permissions.BasePermission):
    message = _("This API key lacks the scope this endpoint needs.")

    def has_permission(self, request: Request, view: "APIView") -> bool:
        scope = required_scope(request, view)
        if scope is None:
            return False
        if isinstance(request.auth, ApiKey):
            return scope in request.auth.scopes
        return _is_staff(request) and scope.endswith(":read")


def is_owner_scoped(request: Request) -> bool:
    """Whether the caller answers for one owner's customers only: a key bound to a staff
    member, or a user without `crm.view_all_customers` (a 导购's login)."""
    if isinstance(request.auth, ApiKey):
        return request.auth.staff_member_id is not None
    user = getattr(request, "user", None)
    return not (user is not None and user.has_perm(VIEW_ALL_CUSTOMERS_PERMISSION))


class RespectsOwnerScope(permissions.BasePermission):
    """Deny by default for callers scoped to one owner's customers. A view declares
    `customer_scope = "owner"` when it narrows what it reads and writes to the caller's
    customers (crm.api.scoping), or `"reads"` when its reads are narrowed so (or touch no
    customer) but its writes would reach every owner's customers (deleting a tag untags
    everyone): those are refused. Any other view (a segment's size, a campaign's report)
    counts every customer and is refused to them."""

    message = _(
        "This endpoint reaches every owner's customers; a key bound to a staff member may not"
        " use it."
    )
    code = ERROR_OWNER_SCOPE

    def has_permission(self, request: Request, view: "APIView") -> bool:
        declared = getattr(view, "customer_scope", None)
        if declared == "owner":
            return True
        if declared == "reads" and request.method in permissions.SAFE_METHODS:
            return True
        return not is_owner_scoped(request)


class CanReadSchema(permissions.BasePermission):
    """The OpenAPI schema and docs: any valid key, or a staff user of the admin."""

    def has_permission(self, request: Request, view: "APIView") -> bool:
        return isinstance(request.auth, ApiKey) or _is_staff(request)


def may_see_personal_data(request: Request) -> bool:
    if isinstance(request.auth, ApiKey):
        return PERSONAL_DATA_SCOPE in request.auth.scopes
    user = getattr(request, "user", None)
    return bool(user is not None and user.has_perm("crm.view_personal_data"))


def actor_of(request: Request) -> str:
    """Who did it, for merge records and logs: the API key's name and prefix."""
    auth = request.auth
    if isinstance(auth, ApiKey):
        return f"api_key:{auth.name}:{auth.prefix}"
    return f"user:{request.user.pk}" if request.user else "unknown"
