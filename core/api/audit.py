"""The audit trail over the API (scope `audit:read`): a list, newest first, by cursor, with
filters by actor, action, customer and time. There is no way to write it: every other method
answers 405 `method_not_allowed`."""

from typing import Any

import django_filters
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, generics, permissions, serializers
from rest_framework.request import Request

from core.api.auth import ERROR_OWNER_SCOPE, RespectsOwnerScope
from core.api.filters import SelectorFilterSet
from core.api.pagination import IdCursorPagination
from core.models import ApiKey, AuditAction, AuditEvent
from core.selectors import audit_event_list


class AuditEventOutSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "customer_id",
            "fields",
            "detail",
        ]


class AuditEventFilter(SelectorFilterSet):
    actor = django_filters.CharFilter(
        method="noop",
        help_text=_("An actor's code: user:7, api_key:<name>:<prefix>, schedule, command."),
    )
    action = django_filters.ChoiceFilter(choices=AuditAction.choices, method="noop")
    customer_id = django_filters.NumberFilter(method="noop")
    occurred_after = django_filters.IsoDateTimeFilter(
        method="noop", help_text=_("Events at or after this time.")
    )
    occurred_before = django_filters.IsoDateTimeFilter(
        method="noop", help_text=_("Events before this time.")
    )

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def select(self, data: dict[str, Any]) -> Any:
        customer_id = data.get("customer_id")
        return audit_event_list(
            actor=data.get("actor") or None,
            action=data.get("action") or None,
            customer_id=None if customer_id is None else int(customer_id),
            occurred_after=data.get("occurred_after"),
            occurred_before=data.get("occurred_before"),
        )


# A user of the admin reads the trail over the browsable API with the 审计 role's permission.
VIEW_PERMISSION = "core.view_auditevent"


class AuditEventListView(generics.ListAPIView):
    """`GET`: audit events, newest first."""

    scope_resource = "audit"
    # The trail names customers by id only: the 审计 role, which sees no customer, reads it
    # (with `core.view_auditevent`); a key bound to one staff member never does (below).
    customer_scope = "reads"
    serializer_class = AuditEventOutSerializer
    filterset_class = AuditEventFilter
    pagination_class = IdCursorPagination
    queryset = AuditEvent.objects.all()

    def check_permissions(self, request: Request) -> None:
        # The trail is never written here: a caller who is known (authenticated) learns so
        # from a 405, not from a 403 about a scope (`audit:write`) that does not exist.
        is_known = request.auth is not None or bool(request.user and request.user.is_authenticated)
        if request.method not in permissions.SAFE_METHODS and is_known:
            raise exceptions.MethodNotAllowed(request.method or "")
        super().check_permissions(request)
        if isinstance(request.auth, ApiKey):
            if request.auth.staff_member_id is not None:
                self.permission_denied(
                    request, message=str(RespectsOwnerScope.message), code=ERROR_OWNER_SCOPE
                )
        elif not request.user.has_perm(VIEW_PERMISSION):
            self.permission_denied(request)
