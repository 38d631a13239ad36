"""The OpenAPI schema tells the truth about errors: every operation documents the error
responses the API can give it, each with the one error shape (`ErrorSerializer`, see
`core.api.errors`), so that a client generated from the schema, or schemathesis, can rely on
the statuses and bodies it reads there."""

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """Every error the API answers."""

    code = serializers.CharField(help_text="Stable error code, e.g. invalid_input, not_found.")
    detail = serializers.CharField(help_text="What went wrong, in the request's language.")
    errors = serializers.DictField(  # type: ignore[assignment]  # a field named like .errors
        child=serializers.JSONField(),
        required=False,
        help_text='Field-level detail by dotted path: {"variants.0.name": ["message"]}.',
    )
    retry_after = serializers.IntegerField(
        required=False, help_text="429: seconds to wait (the Retry-After header too)."
    )


# Any operation: bad query parameters or cursor, no or a bad key, a key without the scope, an
# unknown object (or cursor), the rate limit.
_ALWAYS = ("400", "401", "403", "404", "429")
# An operation that writes: a state that does not allow it, or a race lost (retry).
_WRITES = ("409",)
# An operation that takes a body: over API_MAX_BODY_BYTES, or not JSON.
_BODY = ("413", "415")
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class ApiAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        statuses = list(_ALWAYS)
        if self.method in _WRITE_METHODS:
            statuses += _WRITES
            if self.method != "DELETE" and self.get_request_serializer() is not None:
                statuses += _BODY
        for status_code in statuses:
            if status_code not in responses:
                responses[status_code] = self._get_response_for_code(
                    ErrorSerializer, status_code, direction=direction
                )
        return responses
